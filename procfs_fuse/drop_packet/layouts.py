"""Plans for decoding the kernel's tables in C: which entries make which
flow's hops, in path order (Layout), and which drop entry is which flow's
hop's drop site (DropLayout). Made in Python once, kept while a table's keys
stay, applied to each read's counts without a Python step per entry."""
from collections import Counter
from functools import reduce


def earliest(a, b):
    """The earlier of two first-seen times, 0 being none."""
    return a if not b or (a and a < b) else b


_UNKNOWN = object()
_MOST_OTHERS = 256  # flows a moved layout keeps out of its groups (and more, up to a quarter of its flows)


class Layout:
    """Which entries make which flow's hops, in path order: for raw keys and
    first-seen times, a plan that turns the entries' values into {Flow:
    ((Hop, counts), ...)}. Made in Python once; while the keys and first-seen
    times stay (a table whose flows keep counting: a `cat` of 10,000 flows),
    applied in C. It puts the table's entries in the flows' order before
    summing them, so the objects a read makes for one flow lie next to the
    previous flow's, as the views walk them: a table's entries come in hash
    order, and a `cat` that walks memory in that order took a third longer."""

    def __init__(self, keys, firsts, firsts_read, table_entries, known, flow_of):
        """keys, firsts: of the table's entries, then of the held slots'
        (table_entries of them are the table's); firsts_read: what holds()
        compares besides the keys (every CPU's first-seen times as read:
        cheaper to compare than to merge); flow_of(raw key) -> (Flow, Hop)
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
        self._set(keys, firsts, firsts_read, table_entries,
                  [index for hop_count in self.plain for index in entries[hop_count]], others)
        self._flow_ids = {id(flow) for flow, *_seen in by_flow.values()}

    def _set(self, keys, firsts, firsts_read, table_entries, plain_order, others):
        """The layout of keys and firsts: the plain groups' entries in plain_order, then the others'."""
        self.keys, self.firsts, self.firsts_read = keys, firsts, firsts_read
        self._table_entries, self.others = table_entries, others
        self.table_order, self._position = list(plain_order), {}  # _position: of the others' table entries
        self._slices = None  # (entry size, each table_order entry's bytes as a slice)
        self._plain_entries = len(plain_order)
        for _flow, hops in others:
            for _hop, index in hops:
                for one in (index,) if type(index) is int else index:
                    if one < table_entries:
                        self._position[one] = len(self.table_order)
                        self.table_order.append(one)
        self.unattributed = table_entries - len(self.table_order)  # every other entry is one hop of one flow

    def holds(self, keys, firsts_read):
        return firsts_read == self.firsts_read and keys == self.keys

    def moved(self, keys, firsts, firsts_read, table_entries, known, flow_of):
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
        moved = object.__new__(Layout)
        moved.plain, moved._flow_ids = self.plain, self._flow_ids | set(by_flow)
        moved._set(keys, firsts, firsts_read, table_entries, was[:self._plain_entries], others)
        return moved

    def in_order(self, values, entry_size):
        """The table's values (entry_size bytes an entry), its entries in table_order."""
        if self._slices is None or self._slices[0] != entry_size:  # made once: a third of the join's time
            self._slices = (entry_size, [slice(i * entry_size, (i + 1) * entry_size) for i in self.table_order])
        return b"".join(map(memoryview(values).__getitem__, self._slices[1]))

    def flows(self, counts):
        """{Flow: ((Hop, counts), ...)} of counts: those of in_order's entries, then the held slots'."""
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
            first = firsts[index] if type(index) is int else reduce(earliest, map(firsts.__getitem__, index))
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


class DropLayout:
    """Which drop entry is which flow's hop's drop site: diagnosis.flow_drops
    of the entries' sites and counts, made in C for flows with one entry
    (most: a flood of one datagram to each of 10,000 closed ports); and
    which entries are at which site (diagnosis.host_drops)."""

    def __init__(self, sites):
        """sites: (Flow or None, Hop or None, reason, location) of each entry."""
        keys = [flow and flow.sort_key for flow, _hop, _reason, _location in sites]
        entries, one_of_each = Counter(keys), {}  # one (reason, location) object for all its flows
        self.keys, self.hops, self.wheres, self.indexes = [], [], [], []  # of flows with one entry
        self.shared = []  # [(index, flow key, hop, where)] of the others
        self._at_site = {}  # (reason, location) -> the indexes of its entries, every flow's and unattributed
        # in the flows' order (as Layout, and for the same reason); unattributed (key None) after
        in_order = sorted(range(len(keys)), key=lambda index: (keys[index] is None, keys[index] or b""))
        for index in in_order:
            key, (_flow, hop, reason, location) = keys[index], sites[index]
            where = one_of_each.setdefault((reason, location), (reason, location))
            self._at_site.setdefault(where, []).append(index)
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

    def by_site(self, counts):
        """{(reason, location): count} of each entry's count: diagnosis.host_drops, in C."""
        return {where: sum(map(counts.__getitem__, indexes)) for where, indexes in self._at_site.items()}
