"""BCC: compile bpf/drop_packet.c with BTF offsets, attach stage by stage,
read and clear the flow map, update filters, detach."""
import ctypes
import errno
import logging
import os
import socket

from ..kernel import headers, tracefs
from ..kernel.btf import BTF
from . import hooks as hookplan
from .flows import Flow, address_from_key
from .stages import BPF_DIR, PROGRAM, STAGES

log = logging.getLogger(__name__)

DEFAULT_MAX_FLOWS = 16384

# -D name -> (struct sk_buff member, its size in bytes): what dp_parse reads.
SKB_MEMBERS = {
    "DP_SKB_HEAD": ("head", 8),
    "DP_SKB_DATA": ("data", 8),
    "DP_SKB_NETWORK_HEADER": ("network_header", 2),
    "DP_SKB_PROTOCOL": ("protocol", 2),
}


class ActivationError(Exception):
    def __init__(self, errno_value, message):
        super().__init__(message)
        self.errno = errno_value


def skb_cflags(btf):
    """-D flags with the running kernel's sk_buff offsets; checks the sizes."""
    flags = []
    for macro, (member, size) in SKB_MEMBERS.items():
        found = btf.struct_member("sk_buff", member)
        if found.size != size:
            raise ActivationError(errno.EOPNOTSUPP, "sk_buff.%s is %d bytes, expected %d"
                                  % (member, found.size, size))
        flags.append("-D%s=%d" % (macro, found.offset))
    return flags


def compile_flags(max_flows=DEFAULT_MAX_FLOWS, btf=None):
    btf = btf or BTF.from_file()
    return ["-I%s" % BPF_DIR, "-DDP_MAX_FLOWS=%d" % max_flows] + skb_cflags(btf)


def _import_bcc():
    try:
        from bcc import BPF  # Debian's python3-bpfcc; never PyPI's "bcc"
    except ImportError as e:
        raise ActivationError(errno.EOPNOTSUPP, "BCC is not importable (%s): run mount.sh" % e)
    return BPF


class BccSession:
    """One activation: compiled program, attached hooks, maps."""

    def __init__(self, filters, max_flows=DEFAULT_MAX_FLOWS):
        BPF = _import_bcc()
        tracefs.ensure_mounted()
        kernel = tracefs.KernelHooks()
        _description, source = headers.header_tree()
        if source:
            os.environ["BCC_KERNEL_SOURCE"] = source
        try:
            self.bpf = BPF(src_file=str(PROGRAM).encode(), cflags=compile_flags(max_flows))
        except Exception as e:
            raise ActivationError(errno.EIO, "BPF compile failed: %s" % e)
        try:
            self.hooks = hookplan.plan(lambda c: kernel.why_unavailable(c) or self._attach(c))
            if not any(h.chosen for h in self.hooks):
                raise ActivationError(errno.EOPNOTSUPP, "no stage could attach: " + "; ".join(
                    "%s: %s" % (h.stage, h.describe()) for h in self.hooks))
            self.set_filters(filters)
        except BaseException:
            self.close()
            raise

    def _attach(self, candidate):
        try:
            if candidate.kind == hookplan.KPROBE:
                self.bpf.attach_kprobe(event=candidate.target, fn_name=candidate.function)
            else:
                self.bpf.attach_raw_tracepoint(tp=candidate.target.split(":")[1],
                                               fn_name=candidate.function)
        except Exception as e:  # BCC raises plain Exception on attach failure
            log.warning("attach %s failed: %s", candidate.describe(), e)
            return "attach failed: %s" % e
        return None

    def set_filters(self, filters):
        table = self.bpf["dp_config"]
        config = table.Leaf()
        for field, address in (("saddr", filters.source_addr), ("daddr", filters.dest_addr)):
            if address is not None:
                setattr(config, "dp_%s_family" % field,
                        socket.AF_INET6 if address.version == 6 else socket.AF_INET)
                ctypes.memmove(getattr(config, "dp_" + field), address.packed, len(address.packed))
        config.dp_sport = -1 if filters.source_port is None else filters.source_port
        config.dp_dport = -1 if filters.dest_port is None else filters.dest_port
        config.dp_active = int(filters.any_set)
        table[ctypes.c_int(0)] = config

    def read_flows(self):
        """{Flow: [count per stage]}, summed over CPUs."""
        flows = {}
        for key, per_cpu in self.bpf["dp_flows"].items():
            counts = [0] * len(STAGES)
            for cpu_value in per_cpu:
                for i in range(len(STAGES)):
                    counts[i] += cpu_value.dp_packets[i]
            v6 = key.dp_family == socket.AF_INET6
            flow = Flow(key.dp_protocol, address_from_key(v6, key.dp_saddr), key.dp_sport,
                        address_from_key(v6, key.dp_daddr), key.dp_dport)
            flows[flow] = counts
        return flows

    def clear(self):
        self.bpf["dp_flows"].clear()

    def close(self):
        bpf, self.bpf = getattr(self, "bpf", None), None
        if bpf is not None:
            bpf.cleanup()  # detaches every probe and closes program and map fds


def generated_source(max_flows=DEFAULT_MAX_FLOWS):
    """What BCC compiles: the flags and the C, for `procfs_fuse bpf-source`."""
    return "// cflags: %s\n%s" % (" ".join(compile_flags(max_flows)), PROGRAM.read_text())
