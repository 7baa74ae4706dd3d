"""The kernel's tables as plain data: batch reads of a map into bytes, then a
Snapshot decoded from those bytes alone (slot and table merged, per-CPU sums,
table use), so the decoding runs on canned bytes in tests."""
import ctypes
import errno
import os
import socket
from collections import Counter
from dataclasses import dataclass
from functools import reduce
from operator import add

from . import reasons
from .flows import Drop, Flow, Hop, Snapshot, TableUse, address_from_key
from .stages import STAGES

RAW_BATCH = 4096  # entries per BPF_MAP_LOOKUP_BATCH call

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
        batch_keys = ctypes.string_at(keys, key_size * got.value)
        key_list += [batch_keys[i:i + key_size] for i in range(0, len(batch_keys), key_size)]
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


def _earliest(a, b):
    """The earlier of two first-seen times, 0 being none."""
    return a if not b or (a and a < b) else b


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
    return list(_over_cpus(memoryview(values).cast("B").cast("Q"), cpus, width, column, _earliest))


def flow_from_key(key):
    """(Flow, Hop) of a dp_flow_key, or None for an unattributed packet (family 0)."""
    if key.dp_family not in (socket.AF_INET, socket.AF_INET6):
        return None
    v6 = key.dp_family == socket.AF_INET6
    return (Flow(key.dp_protocol, address_from_key(v6, key.dp_saddr), key.dp_sport,
                 address_from_key(v6, key.dp_daddr), key.dp_dport), Hop(key.dp_netns, key.dp_ifindex))


_UNKNOWN = object()
_MOST_OTHERS = 256  # flows a moved layout keeps out of its groups (and more, up to a quarter of its flows)


class _Layout:
    """Which entries make which flow's hops, in path order: for raw keys and
    first-seen times, a plan that turns the entries' values into {Flow:
    ((Hop, counts), ...)}. Made in Python once; while the keys and first-seen
    times stay (a table whose flows keep counting: a `cat` of 10,000 flows),
    applied in C. It puts the table's entries in the flows' order before
    summing them, so the objects a read makes for one flow lie next to the
    previous flow's, as the views walk them: a table's entries come in hash
    order, and a `cat` that walks memory in that order took a third longer."""

    def __init__(self, keys, firsts, table_entries, known, flow_of):
        """keys, firsts: of the table's entries, then of the held slots'
        (table_entries of them are the table's); flow_of(raw key) -> (Flow, Hop)
        or None; known: what it found so far, {raw key: that} (a lookup in C,
        not a call, 20,000 times)."""
        # raw key -> its entry's index, or a tuple of them (a key in the table and slots)
        at_key = dict(zip(keys[:table_entries], range(table_entries)))
        for index in range(table_entries, len(keys)):
            was = at_key.get(keys[index])
            at_key[keys[index]] = index if was is None else (was if type(was) is tuple else (was,)) + (index,)
        by_flow, in_slots = _grouped(at_key.items(), firsts, table_entries, known, flow_of)
        # Flows whose hops are each one entry of the table, by hop count: [flows, the hops of each hop]
        # in the flows' order, their entries in a row (flow after flow, hop after hop) from the
        # group's first; the others, a few: [(Flow, ((Hop, index or indexes), ...))].
        self.plain, others, entries = {}, [], {}  # entries: {hop count: a plain group's entries in a row}
        for flow, *seen in sorted(by_flow.values(), key=_group_order):
            if id(flow) not in in_slots:
                columns = self.plain.get(len(seen))
                if columns is None:
                    columns = self.plain[len(seen)] = [[], *([] for _ in seen)]
                    entries[len(seen)] = []
                columns[0].append(flow)
                for n, (_first, hop, index) in enumerate(seen):
                    columns[1 + n].append(hop)
                    entries[len(seen)].append(index)
            else:
                others.append((flow, tuple((hop, index) for _first, hop, index in seen)))
        # the table's entries to sum: the plain groups', group after group; then the others' (see flows)
        self._set(keys, firsts, table_entries, [index for hop_count in self.plain for index in entries[hop_count]],
                  others)
        self._flow_ids = {id(flow) for flow, *_seen in by_flow.values()}

    def _set(self, keys, firsts, table_entries, plain_order, others):
        """The layout of keys and firsts: the plain groups' entries in plain_order, then the others'."""
        self.keys, self.firsts, self._table_entries, self.others = keys, firsts, table_entries, others
        self.table_order, self._position = list(plain_order), {}  # _position: of the others' table entries
        self._plain_entries = len(plain_order)
        for _flow, hops in others:
            for _hop, index in hops:
                for one in (index,) if type(index) is int else index:
                    if one < table_entries:
                        self._position[one] = len(self.table_order)
                        self.table_order.append(one)
        self.unattributed = table_entries - len(self.table_order)  # every other entry is one hop of one flow

    def holds(self, keys, firsts):
        return keys == self.keys and firsts == self.firsts

    def moved(self, keys, firsts, table_entries, known, flow_of):
        """This layout for a reading whose table holds the same keys (any order,
        the same first-seen times) and maybe keys of flows new to it, the slots
        as they were: a busy host's next `cat`. None where it takes a new layout."""
        slots_were = self.keys[self._table_entries:]
        if keys[table_entries:] != slots_were or firsts[table_entries:] != self.firsts[self._table_entries:]:
            return None
        index_of = dict(zip(keys[:table_entries], range(table_entries)))
        try:
            was = list(map(index_of.__getitem__, map(self.keys.__getitem__, self.table_order)))
        except KeyError:  # a flow's entry is gone (evicted)
            return None
        if list(map(firsts.__getitem__, was)) != list(map(self.firsts.__getitem__, self.table_order)):
            return None  # an entry made anew: its hop may have moved in its flow's path

        def now(index):  # an index of the last reading's -> this one's
            if index < self._table_entries:
                return index_of[self.keys[index]]
            return table_entries + index - self._table_entries
        others = [(flow, tuple((hop, now(index) if type(index) is int else tuple(map(now, index)))
                               for hop, index in hops)) for flow, hops in self.others]
        new_keys = set(index_of).difference(map(self.keys.__getitem__, self.table_order))
        by_flow, _in_slots = _grouped([(key, index_of[key]) for key in new_keys], firsts, table_entries, known,
                                      flow_of)
        if not self._flow_ids.isdisjoint(by_flow):  # a flow of this layout at a new hop
            return None
        if len(self.others) + len(by_flow) > max(_MOST_OTHERS, len(self._flow_ids) // 4):
            return None  # the others take Python a flow: a new layout puts them in groups
        others += [(flow, tuple((hop, index) for _first, hop, index in seen))
                   for flow, *seen in sorted(by_flow.values(), key=_group_order)]
        moved = object.__new__(_Layout)
        moved.plain, moved._flow_ids = self.plain, self._flow_ids | set(by_flow)
        moved._set(keys, firsts, table_entries, was[:self._plain_entries], others)
        return moved

    def counts(self, table, width, stages, slot_counts):
        """The counts of the table's entries (its RawTable; width 64-bit words
        an entry's value, the first `stages` of them counts) in table_order, then slot_counts."""
        entry_size = table.cpus * width * 8
        view = memoryview(table.values)
        in_order = b"".join([view[i * entry_size:(i + 1) * entry_size] for i in self.table_order])
        return sum_over_cpus(in_order, len(self.table_order), table.cpus, width, range(stages)) + slot_counts

    def flows(self, counts):
        """{Flow: ((Hop, counts), ...)} of counts (as self.counts gives them)."""
        ordered, start = {}, 0
        for hop_count, (flows, *hops) in self.plain.items():
            end = start + hop_count * len(flows)
            per_hop = [counts[start + n:end:hop_count] for n in range(hop_count)]
            ordered.update(zip(flows, zip(*map(zip, hops, per_hop))))
            start = end

        def at(index):  # a table entry where table_order put it; slots after the table's
            if index < self._table_entries:
                return counts[self._position[index]]
            return counts[len(self.table_order) + index - self._table_entries]
        for flow, hops in self.others:
            ordered[flow] = tuple((hop, at(index) if type(index) is int else
                                   tuple(map(sum, zip(*map(at, index))))) for hop, index in hops)
        return ordered


def _grouped(entries, firsts, table_entries, known, flow_of):
    """{id(Flow): [Flow, (first seen, Hop, index or indexes), ...]} of (raw key,
    index or indexes) entries, each flow's hops in path order, and the ids of
    the flows with a hop in a slot. By id: the decoder keeps one Flow per flow,
    and a Flow hashes in Python."""
    by_flow, in_slots = {}, set()
    for raw_key, index in entries:
        at = known.get(raw_key, _UNKNOWN)
        if at is _UNKNOWN:
            at = flow_of(raw_key)
        if at is None:  # unattributed
            continue
        if type(index) is int and index < table_entries:
            first = firsts[index]
        else:
            first = firsts[index] if type(index) is int else reduce(_earliest, map(firsts.__getitem__, index))
            in_slots.add(id(at[0]))
        group = by_flow.get(id(at[0]))
        if group is None:
            by_flow[id(at[0])] = [at[0], (first, at[1], index)]
        else:
            group.append((first, at[1], index))
    for group in by_flow.values():
        group[1:] = sorted(group[1:])  # by first seen, then hop (two CPUs may tie on the time); no hop twice
    return by_flow, in_slots


def _group_order(group):
    """A [Flow, its hops...] group's place: its flow's."""
    return group[0].sort_key


class _DropLayout:
    """Which drop entry is which flow's hop's drop site: diagnosis.flow_drops
    of the entries' sites and counts, made in C for flows with one entry
    (most: a flood of one datagram to each of 10,000 closed ports)."""

    def __init__(self, sites):
        """sites: (Flow or None, Hop or None, reason, location) of each entry."""
        keys = [flow and flow.sort_key for flow, _hop, _reason, _location in sites]
        entries, one_of_each = Counter(keys), {}  # one (reason, location) object for all its flows
        self.keys, self.hops, self.wheres, self.indexes = [], [], [], []  # of flows with one entry
        self.shared = []  # [(index, flow key, hop, where)] of the others
        # in the flows' order (as _Layout, and for the same reason); unattributed (key None) after
        in_order = sorted(range(len(keys)), key=lambda index: (keys[index] is None, keys[index] or b""))
        for index in in_order:
            key, (_flow, hop, reason, location) = keys[index], sites[index]
            where = one_of_each.setdefault((reason, location), (reason, location))
            if entries[key] == 1:
                self.keys.append(key)
                self.hops.append(hop)
                self.wheres.append(where)
                self.indexes.append(index)
            else:
                self.shared.append((index, key, hop, where))

    def by_flow(self, counts):
        """{flow key: {Hop: {(reason, location): count}}} of each entry's count."""
        sites = map(dict, zip(zip(self.wheres, map(counts.__getitem__, self.indexes))))
        by_flow = dict(zip(self.keys, map(dict, zip(zip(self.hops, sites)))))
        for index, key, hop, where in self.shared:
            per_hop = by_flow.setdefault(key, {}).setdefault(hop, {})
            per_hop[where] = counts[index]  # a drop key is one (flow, hop, reason, location)
        return by_flow


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
        self._layout, self._last_sites = None, None  # _last_sites: (raw drop keys, their sites, _DropLayout)

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
        keys, slot_counts = list(flows.keys), []
        firsts = earliest_over_cpus(flows.values, flows.cpus, width, stages)
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
            firsts.append(slot.dp_counts.dp_first_seen)
        slots_held = len(keys) - len(flows.keys)
        layout = self._layout
        if layout is None or not layout.holds(keys, firsts):
            layout = layout and layout.moved(keys, firsts, len(flows.keys), self._flows_by_key, self._flow)
            layout = self._layout = layout or _Layout(keys, firsts, len(flows.keys), self._flows_by_key, self._flow)
        ordered = layout.flows(layout.counts(flows, width, stages, slot_counts))
        in_table = len(flows.keys) - layout.unattributed
        sites, drop_layout = self._drop_sites(drops.keys)
        drop_counts = list(_over_cpus(memoryview(drops.values).cast("B").cast("Q"), drops.cpus, 1, 0, add))
        drop_list = tuple(map(Drop._make, map(add, sites, zip(drop_counts))))
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
        return Snapshot(ordered, drop_list, uses, drop_layout.by_flow(drop_counts))

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
        where unattributed), their _DropLayout)."""
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
        self._last_sites = (raw_keys, sites, _DropLayout(sites))
        return self._last_sites[1:]
