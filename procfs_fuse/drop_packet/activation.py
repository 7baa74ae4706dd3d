"""Activation: compile bpf/drop_packet.c for the running kernel (BTF offsets,
event-record offsets, bytecode patch), attach the hook plan, detach it.

The one place that knows every attach kind both ways (attach and detach) and
what an empty program on each looks like (the benchmark's floor).
"""
import ctypes
import errno
import logging
import os
import struct
from dataclasses import dataclass

from ..kernel import bpfsys, bytecode, cgroup, headers, tracefs
from ..kernel.btf import BTF
from . import hooks as hookplan
from . import reasons
from .errors import ErrnoError
from .flows import DEFAULT_MAX_FLOWS
from .stages import BPF_DIR, CGROUP_SKB, PROGRAM, RECORDS, TRACEPOINT

log = logging.getLogger(__name__)

MIN_MAX_DROPS = 4096


def max_drops_for(max_flows):
    """The drops table's capacity: room for a drop site per (flow, hop) entry,
    so a flood of dropped flows keeps its reasons (4096 at least: one flow can
    drop at many sites)."""
    return max(MIN_MAX_DROPS, max_flows)

# -D name -> (the members that lead to it: (struct, member) each, offsets
# added up; its size in bytes): the kernel memory the programs read.
KERNEL_OFFSETS = {
    "DP_SKB_HEAD": ((("sk_buff", "head"),), 8),
    "DP_SKB_DATA": ((("sk_buff", "data"),), 8),
    "DP_SKB_NETWORK_HEADER": ((("sk_buff", "network_header"),), 2),
    "DP_SKB_PROTOCOL": ((("sk_buff", "protocol"),), 2),
    "DP_SKB_DEV": ((("sk_buff", "dev"),), 8),
    "DP_SKB_SK": ((("sk_buff", "sk"),), 8),
    "DP_DEV_IFINDEX": ((("net_device", "ifindex"),), 4),
    "DP_DEV_NET": ((("net_device", "nd_net"),), 8),  # possible_net_t: the struct net pointer
    "DP_DEV_NAME": ((("net_device", "name"),), 16),
    "DP_NET_INUM": ((("net", "ns"), ("ns_common", "inum")), 4),
    "DP_SK_NET": ((("sock", "__sk_common"), ("sock_common", "skc_net")), 8),
}
# Members read together, in one copy where the kernel memory is copied: the
# window's -D name -> its members' -D names. (net_device's ifindex and nd_net
# are 1 KB apart on 6.1: read one by one.)
WINDOWS = {
    "DP_SKB_WINDOW": ("DP_SKB_HEAD", "DP_SKB_DATA", "DP_SKB_NETWORK_HEADER", "DP_SKB_PROTOCOL"),
}
BPF_CGROUP_INET_INGRESS = 0  # enum bpf_attach_type
MAX_WINDOW = 128  # bytes read at once onto the program's stack


def kernel_offsets(btf):
    """{-D name: offset} of KERNEL_OFFSETS in the running kernel; checks the sizes."""
    offsets = {}
    for macro, (path, size) in KERNEL_OFFSETS.items():
        found = [btf.struct_member(struct_name, member) for struct_name, member in path]
        if found[-1].size != size:
            raise ErrnoError(errno.EOPNOTSUPP, "%s.%s is %d bytes, expected %d" % (
                path[-1][0], path[-1][1], found[-1].size, size))
        offsets[macro] = sum(member.offset for member in found)
    return offsets


def kernel_cflags(btf):
    """-D flags with the running kernel's struct offsets and the windows that
    span the members read together."""
    offsets = kernel_offsets(btf)
    flags = ["-D%s=%d" % pair for pair in offsets.items()]
    for window, macros in WINDOWS.items():
        # 8-aligned, as the structs are: a stack copy of the window keeps each
        # member naturally aligned, which older verifiers demand of stack loads
        spans = [(offsets[m], offsets[m] + KERNEL_OFFSETS[m][1]) for m in macros]
        start, end = min(a for a, _ in spans) & ~7, max(b for _, b in spans)
        length = (end - start + 7) & ~7
        if length > MAX_WINDOW:
            raise ErrnoError(errno.EOPNOTSUPP, "%s members %d bytes apart" % (window, end - start))
        flags += ["-D%s_START=%d" % (window, start), "-D%s_LEN=%d" % (window, length)]
    return flags


def record_formats():
    """{event: its tracefs format text, or None} of every event a stub reads the record of."""
    return {event: tracefs.event_format(event) for event in RECORDS}


def record_cflags(formats, records=RECORDS):
    """-D flags with record field offsets; formats: {event: format text or None}.
    An event that is missing or lacks a needed field gets none: its stub is not compiled."""
    flags = []
    for event, record in records.items():
        fields = tracefs.parse_fields(formats.get(event) or "")
        if not all(name in fields for name in record.needed):
            continue
        for name in record.needed + record.optional:
            flags.append("-D%s_%s=%d" % (record.prefix, name.upper(), fields.get(name, (-1, 0))[0]))
    return flags


def compile_flags(max_flows=DEFAULT_MAX_FLOWS, btf=None, formats=None, direct_read=False):
    """direct_read: the kernel takes bpf_rdonly_cast (bytecode.rdonly_cast_id)."""
    btf = btf or BTF.from_file()
    formats = record_formats() if formats is None else formats
    direct = ["-DDP_DIRECT_READ", "-DDP_KFUNC_PLACEHOLDER=%d" % bytecode.KFUNC_PLACEHOLDER] if direct_read else []
    return (["-I%s" % BPF_DIR, "-DDP_MAX_FLOWS=%d" % max_flows, "-DDP_MAX_DROPS=%d" % max_drops_for(max_flows),
             "-DDP_MAP_VALUE_PLACEHOLDER=%d" % bytecode.MAP_VALUE_PLACEHOLDER]
            + kernel_cflags(btf) + record_cflags(formats) + direct)


def _cgroup_ingress_link(bpf, function):
    """A BPF link of function (a cgroup_skb program) on the cgroup v2 root's
    ingress; closing its fd detaches it, so it never outlives the daemon
    (an attachment by BPF_PROG_ATTACH would, after kill -9)."""
    from bcc import BPF
    program = bpf.load_func(function, BPF.CGROUP_SKB)
    root = os.open(cgroup.ensure_v2_root(), os.O_RDONLY | os.O_DIRECTORY)
    try:
        attr = ctypes.create_string_buffer(bpfsys.ATTR_SIZE)
        # prog_fd, target_fd, attach_type (BPF_CGROUP_INET_INGRESS), flags: links are always multi
        struct.pack_into("<IIII", attr, 0, program.fd, root, BPF_CGROUP_INET_INGRESS, 0)
        link = bpfsys.bpf(bpfsys.BPF_LINK_CREATE, attr)
    finally:
        os.close(root)
    return lambda: os.close(link)


@dataclass(frozen=True)
class AttachKind:
    """How a candidate's stub is attached (returning how to undo it), and the
    C of an empty stub of that kind."""
    attach: object   # (bpf, target bytes, function bytes) -> undo()
    context: str     # the stub's argument type
    passes: int = 0  # what an empty stub returns (a cgroup_skb program: 1, pass)
    target: object = lambda candidate: candidate.target  # what BCC names the attach point by


def _kprobe(bpf, event, function):
    bpf.attach_kprobe(event=event, fn_name=function)
    return lambda: bpf.detach_kprobe(event=event)


def _tracepoint(bpf, event, function):
    bpf.attach_tracepoint(tp=event, fn_name=function)
    return lambda: bpf.detach_tracepoint(tp=event)


def _raw_tracepoint(bpf, event, function):
    bpf.attach_raw_tracepoint(tp=event, fn_name=function)
    return lambda: bpf.detach_raw_tracepoint(tp=event)


ATTACH_KINDS = {
    "kprobe": AttachKind(_kprobe, "struct pt_regs *"),
    "tracepoint": AttachKind(_tracepoint, "void *"),  # a stub that reads the event record
    # cheaper: no event record is copied; BCC names it by the event alone
    "raw_tracepoint": AttachKind(_raw_tracepoint, "struct bpf_raw_tracepoint_args *",
                                 target=lambda c: c.target.split(":")[1]),
    "cgroup_skb": AttachKind(lambda bpf, _ingress, function: _cgroup_ingress_link(bpf, function),
                             "struct __sk_buff *", passes=1),
}


def attach_kind(candidate):
    if candidate.kind == TRACEPOINT:
        return ATTACH_KINDS["tracepoint" if candidate.record else "raw_tracepoint"]
    return ATTACH_KINDS[candidate.kind]


def attach(bpf, candidate, function=None):
    """Attaches function (default: the candidate's stub) the way the candidate
    says; returns the call that detaches it."""
    kind = attach_kind(candidate)
    return kind.attach(bpf, kind.target(candidate).encode(), (function or candidate.function).encode())


def empty_program(name, candidate, body=""):
    """C of a program that does nothing (but body), attachable where candidate's stub is."""
    kind = attach_kind(candidate)
    return "int %s(%sctx) { %s return %d; }" % (name, kind.context, body, kind.passes)


class Attachments:
    """Functions of one loaded program and where they go, attached and
    detached as a set without compiling again (the benchmark's windows)."""

    def __init__(self, bpf, pairs=()):
        self.bpf, self.pairs, self._detach = bpf, list(pairs), []  # pairs: [(Candidate, function name)]

    def add(self, candidate, function=None):
        """Attaches function (default: the candidate's stub) where candidate
        says, unless it is there already (one program serving several stages)."""
        pair = (candidate, function or candidate.function)
        if pair not in self.pairs:
            self._detach.append(attach(self.bpf, candidate, function))
            self.pairs.append(pair)

    def attach_all(self):
        for candidate, function in self.pairs:
            self._detach.append(attach(self.bpf, candidate, function))

    def detach_all(self):
        while self._detach:
            self._detach.pop()()


def import_bcc():
    try:
        from bcc import BPF  # Debian's python3-bpfcc; never PyPI's "bcc"
    except ImportError as e:
        raise ErrnoError(errno.EOPNOTSUPP, "BCC is not importable (%s): run mount.sh" % e)
    return BPF


def try_attach(attachments, candidate):
    """None if attached, else why not: a failed attach moves on to the next candidate."""
    try:
        attachments.add(candidate)
    except Exception as e:  # BCC raises plain Exception on attach failure
        log.warning("attach %s failed: %s", candidate.describe(), e)
        return "attach failed: %s" % e
    return None


def why_not_here(candidate, why_no_direct_read):
    """What our program cannot do on this kernel (why_no_direct_read: from
    bytecode.rdonly_cast_id): a cgroup_skb program may not copy kernel memory, so
    it reads the sk_buff only by bpf_rdonly_cast."""
    if candidate.kind == CGROUP_SKB and why_no_direct_read:
        return "cannot read the sk_buff: %s" % why_no_direct_read
    return None


class Activation:
    """The program compiled for this kernel, then attached by the hook plan.
    close() detaches everything and frees the program and its maps."""

    def __init__(self, max_flows=DEFAULT_MAX_FLOWS, extra_cflags=()):
        BPF = import_bcc()
        tracefs.ensure_mounted()
        headers.point_bcc_at_headers()
        btf = BTF.from_file()
        formats = record_formats()
        self.reason_names = reasons.reason_names(formats.get("skb:kfree_skb"), btf)
        self.bpf, self.hooks, self.attached = None, None, None
        rdonly_cast, why_not = bytecode.rdonly_cast_id(btf)
        self._why_no_direct_read = why_not
        if why_not:
            log.info("headers are read with bpf_probe_read_kernel: %s", why_not)
        try:
            self.bpf = BPF(src_file=str(PROGRAM).encode(), cflags=compile_flags(
                max_flows, btf=btf, formats=formats, direct_read=bool(rdonly_cast)) + list(extra_cflags))
        except Exception as e:
            raise ErrnoError(errno.EIO, "BPF compile failed: %s" % e)
        try:
            bytecode.patch_module(self.bpf, rdonly_cast, self.bpf[b"dp_config"].map_fd)
        except BaseException:
            self.close()
            raise

    def attach(self):
        """Attaches the plan's first working candidate of each stage; fails
        (having detached all) when no stage attaches at all."""
        kernel = tracefs.KernelHooks()
        self.attached = Attachments(self.bpf)
        self.hooks = hookplan.plan(lambda c: kernel.why_unavailable(c) or self._why_not_here(c)
                                   or try_attach(self.attached, c))
        if not any(h.chosen for h in self.hooks):
            self.close()
            raise ErrnoError(errno.EOPNOTSUPP, "no stage could attach: " + "; ".join(
                "%s: %s" % (h.stage, h.describe()) for h in self.hooks))

    def _why_not_here(self, candidate):
        return why_not_here(candidate, self._why_no_direct_read)

    def close(self):
        bpf, self.bpf = self.bpf, None
        try:
            if self.attached is not None:
                self.attached.detach_all()  # cgroup links first: BCC does not know them
        finally:
            if bpf is not None:
                bpf.cleanup()  # detaches every probe and closes program and map fds


def generated_source(max_flows=DEFAULT_MAX_FLOWS):
    """What BCC compiles, with the flags an activation here would use: for
    `procfs_fuse bpf-source`."""
    btf = BTF.from_file()
    rdonly_cast, _why_not = bytecode.rdonly_cast_id(btf)
    flags = compile_flags(max_flows, btf=btf, direct_read=bool(rdonly_cast))
    return "// cflags: %s\n%s" % (" ".join(flags), PROGRAM.read_text())
