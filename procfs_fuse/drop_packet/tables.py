"""The kernel's tables as plain data: batch reads of a map into bytes, then a
Snapshot decoded from those bytes alone (slot and table merged, per-CPU sums,
table use), so the decoding runs on canned bytes in tests."""
import ctypes
import errno
import os
import socket
import struct
from dataclasses import dataclass
from itertools import repeat
from operator import add, itemgetter

from . import reasons
from .flows import Drop, Flow, Hop, Snapshot, TableUse, address_from_key
from .layouts import DropLayout, Layout, earliest
from .stages import STAGES

RAW_BATCH = 4096  # entries per BPF_MAP_LOOKUP_BATCH call

_FIRST = itemgetter(0)  # the one field of a struct.iter_unpack tuple
TABLE_NAMES = ("flows", "slots", "drops", "inserted")  # dp_NAME; inserted: see enum dp_table


@dataclass(frozen=True)
class RawTable:
    """One map's entries: keys [bytes], values (every entry's value, entry
    after entry; in a per-CPU map each value is cpus values in a row)."""
    keys: list
    values: bytes
    capacity: int
    cpus: int = 1


def bcc_lib():
    from bcc import lib
    return lib


def read_raw(table, lib=None):
    """A RawTable of a BCC table, read in batches without a Python object per
    entry but its key (a `cat` of 10,000 flows), through buffers for one batch,
    not for the table's capacity (a million flows: 200 MB)."""
    lib = lib or bcc_lib()
    key_size, value_size = ctypes.sizeof(table.Key), ctypes.sizeof(table.Leaf)
    cpus = getattr(table, "total_cpu", 1) if hasattr(table, "sLeaf") else 1
    batch = min(RAW_BATCH, table.max_entries)
    keys = ctypes.create_string_buffer(key_size * batch)
    values = ctypes.create_string_buffer(value_size * batch)
    in_batch, out_batch, got = ctypes.c_uint32(0), ctypes.c_uint32(0), ctypes.c_uint32(0)
    key_list, value_parts = [], []
    while len(key_list) < table.max_entries:
        got.value = batch
        failed = lib.bpf_lookup_batch(table.map_fd, ctypes.byref(in_batch) if value_parts else None,
                                      ctypes.byref(out_batch), keys, values, ctypes.byref(got))
        error = ctypes.get_errno()
        if failed and error != errno.ENOENT:
            if value_parts:
                raise OSError(error, "BPF_MAP_LOOKUP_BATCH: %s" % os.strerror(error))
            entries = list(table.items())  # kernels without batch operations
            return RawTable([bytes(k) for k, _ in entries], b"".join(bytes(v) for _, v in entries),
                            table.max_entries, cpus)
        key_list += map(_FIRST, struct.iter_unpack("%ds" % key_size, ctypes.string_at(keys, key_size * got.value)))
        value_parts.append(ctypes.string_at(values, value_size * got.value))
        in_batch.value = out_batch.value
        if failed or not got.value:  # ENOENT: that batch was the last
            break
    return RawTable(key_list, b"".join(value_parts), table.max_entries, cpus)


def clear(tables):
    """Zeroes the tables of TABLE_NAMES ({name: BCC table})."""
    for name in ("flows", "drops"):
        table = tables[name]
        try:
            list(table.items_lookup_and_delete_batch())
        except Exception:  # no batch operations: one key at a time
            for key in list(table.keys()):
                table.pop(key, None)  # LRU may have evicted it meanwhile
    for name in ("slots", "inserted"):  # arrays: cleared to zero
        tables[name].clear()


def _over_cpus(flat, cpus, width, column, combine):
    """One column of a per-CPU table's raw values, its CPUs' values combined, per entry (an iterator)."""
    stride = cpus * width
    combined = flat[column::stride]
    for cpu in range(1, cpus):
        combined = map(combine, combined, flat[cpu * width + column::stride])
    return combined


def sum_over_cpus(values, count, cpus, width, columns=None):
    """Per entry, the 64-bit counters of `columns` (default: all width)
    summed over CPUs, from the raw values of a per-CPU table (entry after
    entry, CPU after CPU): [tuple] * count. Column by column, so the loops run in C."""
    flat = memoryview(values).cast("B").cast("Q")
    summed = [_over_cpus(flat, cpus, width, i, add) for i in (range(width) if columns is None else columns)]
    return list(zip(*summed)) if count else []


def earliest_over_cpus(values, cpus, width, column):
    """Per entry, the earliest nonzero of one column (a first-seen time) over CPUs: [int]."""
    return list(_over_cpus(memoryview(values).cast("B").cast("Q"), cpus, width, column, earliest))


def flow_from_key(key):
    """(Flow, Hop) of a dp_flow_key, or None for an unattributed packet (family 0)."""
    if key.dp_family not in (socket.AF_INET, socket.AF_INET6):
        return None
    v6 = key.dp_family == socket.AF_INET6
    return (Flow(key.dp_protocol, address_from_key(v6, key.dp_saddr), key.dp_sport,
                 address_from_key(v6, key.dp_daddr), key.dp_dport), Hop(key.dp_netns, key.dp_ifindex))


class Decoder:
    """RawTables -> Snapshot. Keeps one Flow per kernel key and one decoded
    drop site per drop key across reads (most of a big table is idle between
    two `cat`s), the sites while the kernel's symbols stay."""

    def __init__(self, flow_key, drop_key, slot, reason_names, symbols):
        """flow_key, drop_key, slot: the ctypes layouts of struct dp_flow_key,
        dp_drop_key and dp_slot (BCC's, from the compiled program); symbols:
        a KernelSymbols (current() -> a Symbolizer)."""
        self._flow_key, self._drop_key, self._slot = flow_key, drop_key, slot
        self._reason_names, self._symbols = reason_names, symbols
        self._flows_by_key, self._sites_by_key, self._sites_symbolized_by = {}, {}, None
        self._hops = {}  # {Hop: itself}
        # of the last read: the next one likely has the same keys
        self._layout, self._last_sites = None, None  # _last_sites: (raw drop keys, their sites, DropLayout)
        self._structure = (None, None)  # Snapshot.structure: the layouts of the last read

    def forget(self):
        """After clear: the keys seen so far will not come back soon."""
        self._flows_by_key.clear()
        self._hops.clear()
        self._sites_by_key.clear()
        self._layout, self._last_sites = None, None

    def snapshot(self, flows, slots, drops, inserted):
        """A Snapshot of the RawTables of dp_flows, dp_slots, dp_drops and dp_inserted."""
        stages = len(STAGES)
        width = stages + 1  # the counts, then the first-seen time
        # the table's entries, then the held slots' (a flow's key may be in both)
        keys, slot_counts, slot_firsts = list(flows.keys), [], []
        slot_size = ctypes.sizeof(self._slot)
        family_at = self._slot.dp_key.offset + self._flow_key.dp_family.offset
        for offset in range(0, len(slots.values), slot_size):  # every slot of every CPU
            if not slots.values[offset + family_at]:
                continue  # a free slot
            slot = self._slot.from_buffer_copy(slots.values, offset)
            raw_key = bytes(slot.dp_key)
            if self._flow(raw_key) is None:
                continue
            keys.append(raw_key)
            slot_counts.append(tuple(slot.dp_counts.dp_packets))
            slot_firsts.append(slot.dp_counts.dp_first_seen)
        slots_held = len(keys) - len(flows.keys)
        # every CPU's first-seen times as read: the same as the last read's, the entries are the same
        firsts_read = (memoryview(flows.values).cast("B").cast("Q")[stages::width].tobytes(), slot_firsts)
        layout = self._layout
        if layout is None or not layout.holds(keys, firsts_read):
            firsts = earliest_over_cpus(flows.values, flows.cpus, width, stages) + slot_firsts
            layout = layout and layout.moved(keys, firsts, firsts_read, len(flows.keys), self._flows_by_key, self._flow)
            layout = self._layout = layout or Layout(keys, firsts, firsts_read, len(flows.keys), self._flows_by_key,
                                                     self._flow)
        counts = sum_over_cpus(layout.in_order(flows.values, flows.cpus * width * 8), len(layout.table_order),
                               flows.cpus, width, range(stages))
        ordered = layout.flows(counts + slot_counts)
        in_table = len(flows.keys) - layout.unattributed
        sites, drop_layout = self._drop_sites(drops.keys)
        drop_counts = list(_over_cpus(memoryview(drops.values).cast("B").cast("Q"), drops.cpus, 1, 0, add))
        drop_list = tuple(map(tuple.__new__, repeat(Drop), map(add, sites, zip(drop_counts))))  # Drop._make, in C
        ever = [n for (n,) in sum_over_cpus(inserted.values, len(inserted.keys), inserted.cpus, 1)]
        ever += [0] * (2 - len(ever))
        uses = (TableUse("flows", in_table, flows.capacity, max(0, ever[0] - in_table)),
                TableUse("drops", len(drop_list), drops.capacity, max(0, ever[1] - len(drop_list))),
                TableUse("slots", slots_held, slots.capacity * slots.cpus, 0))
        if len(self._flows_by_key) > 2 * (in_table + slots.capacity * slots.cpus) + 1024:
            self._flows_by_key.clear()  # keys of flows long evicted
            self._hops.clear()
            self._layout = None  # it knows flows by their objects, as _flows_by_key made them
        if len(self._sites_by_key) > 2 * len(drop_list) + 1024:
            self._sites_by_key.clear()
        if self._structure[0] is not layout or self._structure[1] is not drop_layout:
            self._structure = (layout, drop_layout)
        return Snapshot(ordered, drop_list, uses, drop_layout.by_flow(drop_counts), drop_layout.by_site(drop_counts),
                        self._structure)

    def _flow(self, raw_key):
        """(Flow, Hop) of a dp_flow_key's bytes (None: unattributed). A flow's
        hops share one Flow object: dict lookups by it stop at identity."""
        try:
            return self._flows_by_key[raw_key]
        except KeyError:
            found = flow_from_key(self._flow_key.from_buffer_copy(raw_key))
            if found is not None:  # one object per flow and per hop: a few hops, 20,000 keys
                flow_bytes = raw_key[:self._flow_key.dp_netns.offset]
                found = (self._flows_by_key.setdefault(flow_bytes, found[0]), self._hops.setdefault(found[1], found[1]))
            self._flows_by_key[raw_key] = found
            return found

    def _drop_sites(self, raw_keys):
        """([(Flow, Hop, reason name, location)] of raw dp_drop_keys (None, None
        where unattributed), their DropLayout)."""
        symbols = self._symbols.current()
        if symbols is not self._sites_symbolized_by:
            self._sites_by_key.clear()
            self._sites_symbolized_by, self._last_sites = symbols, None
        if self._last_sites is not None and self._last_sites[0] == raw_keys:  # the drops table's keys stayed
            return self._last_sites[1:]

        def site(raw_key):
            try:
                return self._sites_by_key[raw_key]
            except KeyError:
                key = self._drop_key.from_buffer_copy(raw_key)
                found = self._sites_by_key[raw_key] = (
                    *(self._flow(bytes(key.dp_flow)) or (None, None)),
                    reasons.reason_name(self._reason_names, key.dp_reason), symbols.symbolize(key.dp_location))
                return found
        sites = list(map(site, raw_keys))
        self._last_sites = (raw_keys, sites, DropLayout(sites))
        return self._last_sites[1:]
