"""The kernel's tables as plain data: batch reads of a map into bytes, then a
Snapshot decoded from those bytes alone (every (flow, hop) entry of the table
and of every CPU's slots, table use), so the decoding runs on canned bytes in
tests."""
import ctypes
import errno
import os
import socket
import struct
from dataclasses import dataclass

from .reasons import reason_name
from .flows import Drop, Flow, Hop, Seen, Snapshot, TableUse, Translation, address_from_key
from .stages import STAGES

RAW_BATCH = 4096  # entries per BPF_MAP_LOOKUP_BATCH call
TABLE_NAMES = ("flows", "slots", "drops", "inserted", "nats")  # dp_NAME; inserted: see enum dp_table
OPTIONAL_TABLES = ("nats",)  # only where the kernel has conntrack (capture/conntrack.py)


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
    """A RawTable of a BCC table, read in batches through buffers for one
    batch, not for the table's capacity (a million flows: 200 MB)."""
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
        got_keys = ctypes.string_at(keys, key_size * got.value)
        key_list += [got_keys[i:i + key_size] for i in range(0, len(got_keys), key_size)]
        value_parts.append(ctypes.string_at(values, value_size * got.value))
        in_batch.value = out_batch.value
        if failed or not got.value:  # ENOENT: that batch was the last
            break
    return RawTable(key_list, b"".join(value_parts), table.max_entries, cpus)


def clear(tables):
    """Zeroes the tables of TABLE_NAMES ({name: BCC table}; an optional one may be absent)."""
    for name in ("flows", "drops", "nats"):
        table = tables.get(name)
        if table is None:
            continue
        try:
            list(table.items_lookup_and_delete_batch())
        except Exception:  # no batch operations: one key at a time
            for key in list(table.keys()):
                table.pop(key, None)  # LRU may have evicted it meanwhile
    for name in ("slots", "inserted"):  # arrays: cleared to zero
        tables[name].clear()


def words(values):
    """A table's values (entry after entry) as 64-bit words."""
    return memoryview(values).cast("B").cast("Q")


def columns(values, width, wanted):
    """Per entry of width words, its words `wanted`: [tuple]. Column by
    column, so the loops run in C."""
    flat = words(values)
    return list(zip(*(flat[i::width] for i in wanted)))


def held_slots(values, slot_size, family_offset):
    """Offsets of the held slots (family not 0) in dp_slots' values: every
    slot of every CPU is read, most of them free on a big host."""
    families = bytes(memoryview(values).cast("B")[family_offset::slot_size])
    return [i * slot_size for i, family in enumerate(families) if family]


def flow_from_key(key):
    """(Flow, Hop) of a dp_flow_key, or None for an unattributed packet (family 0)."""
    if key.dp_family not in (socket.AF_INET, socket.AF_INET6):
        return None
    v6 = key.dp_family == socket.AF_INET6
    return (Flow(key.dp_protocol, address_from_key(v6, key.dp_saddr), key.dp_sport,
                 address_from_key(v6, key.dp_daddr), key.dp_dport), Hop(key.dp_netns, key.dp_ifindex))


class Decoder:
    """RawTables -> Snapshot. Keeps what each kernel key decodes to across
    reads (most keys of a big table are the same from one `cat` to the next),
    and each drop key's site while the kernel's symbols stay."""

    def __init__(self, flow_key, drop_key, slot, reason_names, symbols):
        """flow_key, drop_key, slot: the ctypes layouts of struct dp_flow_key,
        dp_drop_key and dp_slot (BCC's, from the compiled program); symbols:
        a KernelSymbols (current() -> a Symbolizer)."""
        self._flow_key, self._drop_key, self._slot = flow_key, drop_key, slot
        self._reason_names, self._symbols = reason_names, symbols
        self._decoded = {}  # raw flow key -> (Flow, Hop) or None; one Flow per flow
        self._sites, self._sites_symbolized_by = {}, None  # raw drop key -> (Flow, Hop, reason, location)

    def forget(self):
        """After clear: the keys seen so far will not come back soon."""
        self._decoded.clear()
        self._sites.clear()

    def snapshot(self, flows, slots, drops, inserted, nats=None):
        """A Snapshot of the RawTables of dp_flows, dp_slots, dp_drops,
        dp_inserted and dp_nats (None: the kernel has no conntrack)."""
        stages = len(STAGES)
        width = stages + 1  # the counts, then the first-seen time
        if len(self._decoded) > 2 * (len(flows.keys) + slots.capacity * slots.cpus) + 1024:
            self._decoded.clear()  # keys of flows long evicted
        decoded = self._decoded
        seen = [Seen(first, *found, counts) for found, counts, first in zip(
            [decoded.get(raw_key) or self._flow(raw_key) for raw_key in flows.keys],
            columns(flows.values, width, range(stages)), words(flows.values)[stages::width]) if found]
        in_table = len(seen)  # (flow, hop) entries: all but those of unattributed packets
        family_offset = self._slot.dp_key.offset + self._flow_key.dp_family.offset
        for offset in held_slots(slots.values, ctypes.sizeof(self._slot), family_offset):
            slot = self._slot.from_buffer_copy(slots.values, offset)
            found = self._flow(bytes(slot.dp_key))
            if found:
                seen.append(Seen(slot.dp_counts.dp_first_seen, *found, tuple(slot.dp_counts.dp_packets)))
        drop_list = self._drops(drops)
        ever = list(words(inserted.values)) + [0, 0, 0]
        nat_list = self._nats(nats) if nats else ()
        use = [TableUse("flows", in_table, flows.capacity, max(0, ever[0] - in_table)),
               TableUse("drops", len(drop_list), drops.capacity, max(0, ever[1] - len(drop_list))),
               TableUse("slots", len(seen) - in_table, slots.capacity * slots.cpus, 0)]
        if nats:
            use.append(TableUse("nats", len(nats.keys), nats.capacity, max(0, ever[2] - len(nats.keys))))
        return Snapshot(tuple(seen), drop_list, tuple(use), nat_list)

    def _nats(self, nats):
        """(Translation, ...) of the RawTable of dp_nats: each key a flow's
        words as translated, its value the words as sent, the hop, when."""
        words_size = self._flow_key.dp_netns.offset  # a flow key's words before its hop
        no_hop = bytes(ctypes.sizeof(self._flow_key) - words_size)
        value_size = len(nats.values) // max(1, len(nats.keys))
        found = []
        for n, raw_key in enumerate(nats.keys):
            value = nats.values[n * value_size:(n + 1) * value_size]
            to, sent = self._flow(raw_key + no_hop), self._flow(value[:words_size] + no_hop)
            if to and sent:
                netns, ifindex, first_seen = struct.unpack_from("<IIQ", value, words_size)
                found.append((first_seen, Translation(sent[0], Hop(netns, ifindex), to[0])))
        return tuple(translation for _first, translation in sorted(found, key=lambda pair: pair[0]))

    def _flow(self, raw_key):
        """(Flow, Hop) of a dp_flow_key's bytes (None: unattributed); a flow's hops share one Flow."""
        try:
            return self._decoded[raw_key]
        except KeyError:
            found = flow_from_key(self._flow_key.from_buffer_copy(raw_key))
            if found is not None:
                flow_bytes = raw_key[:self._flow_key.dp_netns.offset]
                found = (self._decoded.setdefault(flow_bytes, found[0]), found[1])
            self._decoded[raw_key] = found
            return found

    def _drops(self, drops):
        """(Drop, ...) of the RawTable of dp_drops."""
        symbols = self._symbols.current()
        if symbols is not self._sites_symbolized_by or len(self._sites) > 2 * len(drops.keys) + 1024:
            self._sites.clear()
            self._sites_symbolized_by = symbols
        return tuple(Drop(*self._site(raw_key, symbols), count)
                     for raw_key, count in zip(drops.keys, words(drops.values)))

    def _site(self, raw_key, symbols):
        """(Flow, Hop, reason, location) of a dp_drop_key's bytes ((None, None, ...) where unattributed)."""
        site = self._sites.get(raw_key)
        if site is None:
            key = self._drop_key.from_buffer_copy(raw_key)
            site = self._sites[raw_key] = (*(self._flow(bytes(key.dp_flow)) or (None, None)),
                                           reason_name(self._reason_names, key.dp_reason),
                                           symbols.symbolize(key.dp_location))
        return site
