"""BCC: compile bpf/drop_packet.c with BTF offsets, attach stage by stage,
read and clear the flow map, update filters, detach."""
import ctypes
import errno
import logging
import os
import socket
import sys
from operator import add

from ..kernel import headers, kfunc, tracefs
from ..kernel.btf import BTF
from ..kernel.ksyms import KernelSymbols
from . import hooks as hookplan
from . import reasons
from .flows import DEFAULT_MAX_FLOWS, Drop, Flow, Snapshot, TableUse, address_from_key
from .stages import BPF_DIR, PROGRAM, STAGES

log = logging.getLogger(__name__)

DEFAULT_MAX_DROPS = 4096

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


RAW_BATCH = 4096  # entries per BPF_MAP_LOOKUP_BATCH call in _raw_entries

MAX_SKB_WINDOW = 128  # bytes dp_parse reads from an sk_buff at once, on its stack


def skb_cflags(btf):
    """-D flags with the running kernel's sk_buff offsets and the window that
    spans them; checks the sizes."""
    flags, spans = [], []
    for macro, (member, size) in SKB_MEMBERS.items():
        found = btf.struct_member("sk_buff", member)
        if found.size != size:
            raise ActivationError(errno.EOPNOTSUPP, "sk_buff.%s is %d bytes, expected %d"
                                  % (member, found.size, size))
        flags.append("-D%s=%d" % (macro, found.offset))
        spans.append((found.offset, found.offset + size))
    # 8-aligned, as sk_buff is: a stack copy of the window keeps each member
    # naturally aligned, which older verifiers demand of stack loads
    start, end = min(a for a, _ in spans) & ~7, max(b for _, b in spans)
    length = (end - start + 7) & ~7
    if length > MAX_SKB_WINDOW:
        raise ActivationError(errno.EOPNOTSUPP, "sk_buff members %d bytes apart" % (end - start))
    return flags + ["-DDP_SKB_WINDOW_START=%d" % start, "-DDP_SKB_WINDOW_LEN=%d" % length]


# Tracepoints whose stubs read the event record: macro prefix, fields the stub
# needs, fields it can do without (-1). Offsets come from the tracefs format.
RECORD_FIELDS = {
    "skb:kfree_skb": ("DP_KFREE_SKB", ("skbaddr", "location"), ("reason",)),
    "tcp:tcp_retransmit_skb": ("DP_RETRANS", ("sport", "dport", "saddr", "daddr"),
                               ("family", "saddr_v6", "daddr_v6")),
}


def record_cflags(formats):
    """-D flags with record field offsets; formats: {event: format text or None}.
    An event that is missing or lacks a needed field gets none: its stub is not compiled."""
    flags = []
    for event, (prefix, needed, optional) in RECORD_FIELDS.items():
        fields = tracefs.parse_fields(formats.get(event) or "")
        if not all(name in fields for name in needed):
            continue
        for name in needed + optional:
            flags.append("-D%s_%s=%d" % (prefix, name.upper(), fields.get(name, (-1, 0))[0]))
    return flags


def compile_flags(max_flows=DEFAULT_MAX_FLOWS, max_drops=DEFAULT_MAX_DROPS, btf=None, formats=None,
                  direct_read=False):
    """direct_read: the kernel takes bpf_rdonly_cast (kfunc.rdonly_cast_id)."""
    btf = btf or BTF.from_file()
    if formats is None:
        formats = {event: tracefs.event_format(event) for event in RECORD_FIELDS}
    direct = ["-DDP_DIRECT_READ", "-DDP_KFUNC_PLACEHOLDER=%d" % kfunc.PLACEHOLDER] if direct_read else []
    return (["-I%s" % BPF_DIR, "-DDP_MAX_FLOWS=%d" % max_flows, "-DDP_MAX_DROPS=%d" % max_drops]
            + skb_cflags(btf) + record_cflags(formats) + direct)


def flow_from_key(key):
    """The Flow of a dp_flow_key, or None for an unattributed packet (family 0)."""
    if key.dp_family not in (socket.AF_INET, socket.AF_INET6):
        return None
    v6 = key.dp_family == socket.AF_INET6
    return Flow(key.dp_protocol, address_from_key(v6, key.dp_saddr), key.dp_sport,
                address_from_key(v6, key.dp_daddr), key.dp_dport)


def filter_mask_and_value(filters, mask, value):
    """Fills two zeroed dp_flow_keys so that a flow passes the filters when its
    key, masked with mask, equals value (dp_wanted compares them word by word)."""
    families = set()
    for field, address in (("dp_saddr", filters.source_addr), ("dp_daddr", filters.dest_addr)):
        if address is not None:
            ctypes.memset(getattr(mask, field), 0xff, ctypes.sizeof(getattr(mask, field)))
            ctypes.memmove(getattr(value, field), address.packed, len(address.packed))
            families.add(socket.AF_INET6 if address.version == 6 else socket.AF_INET)
    if families:
        mask.dp_family = 0xff
        # an IPv4 and an IPv6 address: no flow has both; family 0 is never a parsed flow's
        value.dp_family = families.pop() if len(families) == 1 else 0
    for field, port in (("dp_sport", filters.source_port), ("dp_dport", filters.dest_port)):
        if port is not None:
            setattr(mask, field, 0xffff)
            setattr(value, field, port)


# Key fields that bytes 8..23 of an IPv4 header without options show as
# they are: (field, its bytes in an IPv4 key, where they start in those
# header bytes). Ports are in host order in the key, and 0 there for
# protocols without ports.
IPV4_HEADER_FIELDS = (("dp_protocol", 1, 1), ("dp_saddr", 4, 4), ("dp_daddr", 4, 8),
                      ("dp_sport", 2, 12), ("dp_dport", 2, 14))
PORT_FIELDS = ("dp_sport", "dp_dport")


def ipv4_mask_and_value(mask, value):
    """dp_config's dp_ipv4_mask and dp_ipv4_value (16 bytes each) for the key
    filter (mask, value) of filter_mask_and_value: an IPv4 packet whose header
    bytes 8..23, masked, differ from the value is one the key filter leaves
    out. A port filter of 0 stays with the key alone: a packet without ports
    has port 0 in its key, whatever its header holds there."""
    key_type = type(mask)
    mask, value = bytes(mask), bytes(value)
    header_mask, header_value = bytearray(16), bytearray(16)
    shown = set()  # key bytes the header shows
    for name, size, at in IPV4_HEADER_FIELDS:
        offset = getattr(key_type, name).offset
        shown.update(range(offset, offset + size))
        field_mask, field_value = mask[offset:offset + size], value[offset:offset + size]
        if name in PORT_FIELDS:
            if not any(field_value):
                continue
            field_mask, field_value = (int.from_bytes(f, sys.byteorder).to_bytes(2, "big")
                                       for f in (field_mask, field_value))
        header_mask[at:at + size], header_value[at:at + size] = field_mask, field_value
    ipv4_key = bytes(key_type(dp_family=socket.AF_INET))  # the bytes every IPv4 key has outside those
    if any(k & m != v for i, (k, m, v) in enumerate(zip(ipv4_key, mask, value)) if i not in shown):
        return bytes(16), b"\x01" + bytes(15)  # no IPv4 flow passes: a value bit outside the mask
    return bytes(header_mask), bytes(header_value)


def attach(bpf, candidate, function=None):
    """Attaches function (default: the candidate's stub) the way the candidate says."""
    function = (function or candidate.function).encode()
    if candidate.kind == hookplan.KPROBE:
        bpf.attach_kprobe(event=candidate.target.encode(), fn_name=function)
    elif candidate.record:
        bpf.attach_tracepoint(tp=candidate.target.encode(), fn_name=function)
    else:
        bpf.attach_raw_tracepoint(tp=candidate.target.split(":")[1].encode(), fn_name=function)


def _import_bcc():
    try:
        from bcc import BPF  # Debian's python3-bpfcc; never PyPI's "bcc"
    except ImportError as e:
        raise ActivationError(errno.EOPNOTSUPP, "BCC is not importable (%s): run mount.sh" % e)
    return BPF


class BccSession:
    """One activation: compiled program, attached hooks, maps."""

    def __init__(self, filters, max_flows=DEFAULT_MAX_FLOWS, extra_cflags=()):
        self.max_flows = max_flows
        self._generation = 0  # the last one written to dp_config (see set_filters)
        BPF = _import_bcc()
        tracefs.ensure_mounted()
        kernel = tracefs.KernelHooks()
        headers.point_bcc_at_headers()
        btf = BTF.from_file()
        formats = {event: tracefs.event_format(event) for event in RECORD_FIELDS}
        self._reason_names = reasons.reason_names(formats["skb:kfree_skb"], btf)
        self._symbols = KernelSymbols()
        self._symbols.current()  # 120,000 symbols read now, not by the first `cat`
        self._flows_by_key = {}
        self._sites_by_key, self._sites_symbolized_by = {}, None  # see _drop_sites
        rdonly_cast, why_not = kfunc.rdonly_cast_id(btf)
        if why_not:
            log.info("headers are read with bpf_probe_read_kernel: %s", why_not)
        try:
            self.bpf = BPF(src_file=str(PROGRAM).encode(),
                           cflags=compile_flags(max_flows, btf=btf, formats=formats, direct_read=bool(rdonly_cast))
                           + list(extra_cflags))
        except Exception as e:
            raise ActivationError(errno.EIO, "BPF compile failed: %s" % e)
        if rdonly_cast:
            kfunc.patch_module(self.bpf, rdonly_cast)
        try:
            self.set_filters(filters)  # before attaching: no packet is counted unfiltered
            self.hooks = hookplan.plan(lambda c: kernel.why_unavailable(c) or self._attach(c))
            if not any(h.chosen for h in self.hooks):
                raise ActivationError(errno.EOPNOTSUPP, "no stage could attach: " + "; ".join(
                    "%s: %s" % (h.stage, h.describe()) for h in self.hooks))
        except BaseException:
            self.close()
            raise

    def _attach(self, candidate):
        try:
            attach(self.bpf, candidate)
        except Exception as e:  # BCC raises plain Exception on attach failure
            log.warning("attach %s failed: %s", candidate.describe(), e)
            return "attach failed: %s" % e
        return None

    def set_filters(self, filters):
        """dp_config's filter, in two writes: the new filter with generation 0
        (no memo holds or is made), then again with a new generation. A
        program that reads the new generation (before the filter) thus reads
        the new filter, even where one write may be seen in any order."""
        self._filters = filters
        self._write_config(0)
        self._write_config(self._next_generation())

    def _next_generation(self):
        self._generation = self._generation % 0xffffffff + 1  # never 0
        return self._generation

    def _write_config(self, generation):
        table = self.bpf[b"dp_config"]
        config = table.Leaf()
        filter_mask_and_value(self._filters, config.dp_mask, config.dp_value)
        ipv4_mask, ipv4_value = ipv4_mask_and_value(config.dp_mask, config.dp_value)
        ctypes.memmove(config.dp_ipv4_mask, ipv4_mask, len(ipv4_mask))
        ctypes.memmove(config.dp_ipv4_value, ipv4_value, len(ipv4_value))
        config.dp_active = int(self._filters.any_set)
        config.dp_generation = generation
        table[ctypes.c_int(0)] = config

    def read(self):
        """A Snapshot of both tables and the slots, summed over CPUs."""
        table = self.bpf[b"dp_flows"]
        keys, values = self._raw_entries(table)
        flows = {}
        for raw_key, counts in zip(keys, sum_over_cpus(values, len(keys), table.total_cpu, len(STAGES))):
            flow = self._flow(raw_key, table.Key)
            if flow is not None:
                flows[flow] = counts
        in_table = len(flows)
        slots = self.bpf[b"dp_slots"]
        _indexes, values = self._raw_entries(slots)
        slots_held = 0
        for at in range(0, len(values), ctypes.sizeof(slots.sLeaf)):  # every slot of every CPU
            slot = slots.sLeaf.from_buffer_copy(values, at)
            flow = self._flow(bytes(slot.dp_key), table.Key)
            if flow is not None:
                slots_held += 1
                flows[flow] = tuple(map(add, flows.get(flow, (0,) * len(STAGES)), slot.dp_counts.dp_packets))
        drops_table = self.bpf[b"dp_drops"]
        keys, values = self._raw_entries(drops_table)
        site = self._drop_sites(drops_table.Key, table.Key)
        drops = tuple(Drop(*site(raw_key), n)
                      for raw_key, (n,) in zip(keys, sum_over_cpus(values, len(keys), drops_table.total_cpu, 1)))
        inserted = self.bpf[b"dp_inserted"]
        tables = []
        for slot, (name, held) in enumerate((("flows", in_table), ("drops", len(drops)))):
            total = sum(inserted[ctypes.c_int(slot)])
            tables.append(TableUse(name, held, self.bpf[b"dp_" + name.encode()].max_entries, max(0, total - held)))
        tables.append(TableUse("slots", slots_held, slots.max_entries * slots.total_cpu, 0))
        if len(self._flows_by_key) > 2 * (in_table + slots.max_entries * slots.total_cpu) + 1024:
            self._flows_by_key.clear()  # keys of flows long evicted
        if len(self._sites_by_key) > 2 * len(drops) + 1024:
            self._sites_by_key.clear()
        return Snapshot(flows, drops, tuple(tables))

    def _flow(self, raw_key, key_type):
        """The Flow of a dp_flow_key's bytes (None: unattributed); one Flow per key across reads."""
        try:
            return self._flows_by_key[raw_key]
        except KeyError:
            flow = self._flows_by_key[raw_key] = flow_from_key(key_type.from_buffer_copy(raw_key))
            return flow

    def _drop_sites(self, key_type, flow_key_type):
        """raw dp_drop_key -> (Flow, reason name, location); one answer per key
        across reads, while the kernel's symbols stay."""
        symbols = self._symbols.current()
        if symbols is not self._sites_symbolized_by:
            self._sites_by_key.clear()
            self._sites_symbolized_by = symbols

        def site(raw_key):
            try:
                return self._sites_by_key[raw_key]
            except KeyError:
                key = key_type.from_buffer_copy(raw_key)
                found = self._sites_by_key[raw_key] = (
                    self._flow(bytes(key.dp_flow), flow_key_type),
                    reasons.reason_name(self._reason_names, key.dp_reason), symbols.symbolize(key.dp_location))
                return found
        return site

    @staticmethod
    def _raw_entries(table):
        """(keys, values): every entry of a table, read in batches without a
        Python object per entry but its key (a `cat` of 10,000 flows), through
        buffers for one batch, not for the table's capacity (a million flows: 200 MB).
        keys: [bytes] per entry; values: the bytes of all values, entry after entry."""
        key_size, value_size = ctypes.sizeof(table.Key), ctypes.sizeof(table.Leaf)
        batch = min(RAW_BATCH, table.max_entries)
        keys = ctypes.create_string_buffer(key_size * batch)
        values = ctypes.create_string_buffer(value_size * batch)
        in_batch, out_batch, got = ctypes.c_uint32(0), ctypes.c_uint32(0), ctypes.c_uint32(0)
        key_list, value_parts = [], []
        while len(key_list) < table.max_entries:
            got.value = batch
            failed = bcc_lib().bpf_lookup_batch(
                table.map_fd, ctypes.byref(in_batch) if value_parts else None, ctypes.byref(out_batch),
                keys, values, ctypes.byref(got))
            error = ctypes.get_errno()
            if failed and error != errno.ENOENT:
                if value_parts:
                    raise OSError(error, "BPF_MAP_LOOKUP_BATCH: %s" % os.strerror(error))
                entries = list(table.items())  # kernels without batch operations
                return [bytes(k) for k, _ in entries], b"".join(bytes(v) for _, v in entries)
            batch_keys = ctypes.string_at(keys, key_size * got.value)
            key_list += [batch_keys[i:i + key_size] for i in range(0, len(batch_keys), key_size)]
            value_parts.append(ctypes.string_at(values, value_size * got.value))
            in_batch.value = out_batch.value
            if failed or not got.value:  # ENOENT: that batch was the last
                break
        return key_list, b"".join(value_parts)

    def clear(self):
        for name in (b"dp_flows", b"dp_drops"):  # bytes: what BCC takes without a warning
            table = self.bpf[name]
            try:
                list(table.items_lookup_and_delete_batch())
            except Exception:  # no batch operations: one key at a time
                for key in list(table.keys()):
                    table.pop(key, None)  # LRU may have evicted it meanwhile
        for name in (b"dp_slots", b"dp_inserted"):  # arrays: cleared to zero
            self.bpf[name].clear()
        self._write_config(self._next_generation())  # after: memos may name the old slots
        self._flows_by_key.clear()
        self._sites_by_key.clear()

    def close(self):
        bpf, self.bpf = getattr(self, "bpf", None), None
        if bpf is not None:
            bpf.cleanup()  # detaches every probe and closes program and map fds


def sum_over_cpus(values, count, cpus, width):
    """Per entry, its width 64-bit counters summed over CPUs, from the raw values
    of a per-CPU table (entry after entry, CPU after CPU): [tuple] * count.
    Column by column, so the loops run in C."""
    flat = memoryview(values).cast("B").cast("Q")
    stride = cpus * width
    columns = []
    for i in range(width):
        column = flat[i::stride]
        for cpu in range(1, cpus):
            column = map(add, column, flat[cpu * width + i::stride])
        columns.append(column)
    return list(zip(*columns)) if count else []


def bcc_lib():
    from bcc import lib
    return lib


def generated_source(max_flows=DEFAULT_MAX_FLOWS):
    """What BCC compiles, with the flags an activation here would use: for
    `procfs_fuse bpf-source`."""
    btf = BTF.from_file()
    rdonly_cast, _why_not = kfunc.rdonly_cast_id(btf)
    flags = compile_flags(max_flows, btf=btf, direct_read=bool(rdonly_cast))
    return "// cflags: %s\n%s" % (" ".join(flags), PROGRAM.read_text())
