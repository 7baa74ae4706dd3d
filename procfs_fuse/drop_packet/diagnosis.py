"""What every view of a reading says of it, the same in text, JSON and
Prometheus: which lines each hop of a flow shows, the verdict, the drops by
flow and host-wide, which stages were attached. Pure."""
from collections import Counter, defaultdict
from functools import lru_cache
from operator import itemgetter

from .flows import HopName
from .reasons import hint
from .stages import BY_NAME, DROPPED, PATH_ORDER, RECEIVE, SEND, TABLE

PATH_ORDER_ROWS = tuple(BY_NAME[name] for name in PATH_ORDER)


def by_count(items):
    """(reason, location) -> count, most first; ties by name for a stable order."""
    if len(items) == 1:  # most flows' drops: nothing to sort
        return list(items.items())
    return sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))


def hop_text(name):
    """A hop as the report names it: `netns mhR, dev vRa`."""
    return "netns %s, dev %s" % (name.netns, name.dev or "-")


# The site of drops the kernel counted at a hop (DROPPED) whose entries the
# drops table evicted: their reason and location are not known any more.
EVICTED = ("", "")  # sorts with real sites: no reason is ""


def verdict(hops, drops_traced, name_of=None):
    """One line a newcomer can act on. hops: [(where, stage names, their counts,
    {(reason, location): count})] in the order the flow passed them: where a
    HopName (or what name_of turns into one), the names its measured path
    stages shown, in PATH_ORDER."""
    if not drops_traced:
        return "unknown: drops are not traced on this kernel"
    with_drops = [hop for hop in hops if hop[3]]
    if not with_drops:
        return "no drops seen"
    if len(with_drops) == 1:  # most flows: nothing to add up or choose
        where, names, seen, total = with_drops[0]
        ranked = by_count(total)
        site = ranked[0][0]
    else:
        total = Counter()
        for hop in with_drops:
            total.update(hop[3])
        ranked = by_count(total)
        site = ranked[0][0]
        # the hop that dropped most of them (the first such)
        where, names, seen, _drops = max(with_drops, key=lambda hop: hop[3].get(site, 0))
    dropped = sum(total.values())
    sent = max(hops[0][2], default=0)  # what the first hop saw
    full = last_full_stage(seen)
    after = ", after %s" % names[full] if full >= 0 else ""
    return "%d of %d lost in %s%s: %s" % (dropped, max(sent, dropped), hop_text(name_of(where) if name_of else where),
                                          after, cause_text(site, len(ranked) - 1))


def last_full_stage(seen):
    """Of a hop's path stage counts, the index of the last that saw as many as
    any did (what the verdict says the flow got "after"); -1 where none saw any."""
    most = max(seen, default=0)
    return len(seen) - 1 - seen[::-1].index(most) if most else -1


def evicted_drops(snapshot):
    """The drops table evicted entries: a DROPPED count over its drops is not a race (flow_verdict)."""
    return any(t.name == "drops" and t.evicted for t in snapshot.tables)


@lru_cache(maxsize=4096)
def cause_text(site, more):
    """The verdict's `REASON at LOCATION [and N more] (hint)` (made once per site: 10,000 flows share a few)."""
    reason, location = site
    if site == EVICTED:
        text = "reason not kept"
        why = "the drops table evicted it: see tables:"
    else:
        text = "%s at %s" % site
        why = hint(reason, location) or "no hint is known for %s" % reason
    if more:
        text += " and %d more" % more
    return text + " (%s)" % why


def picker(indexes):
    """counts -> tuple of counts[i] for i in indexes, in C where it can be."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if indexes:
        index, = indexes
        return lambda counts: (counts[index],)
    return lambda counts: ()


class Look:
    """How one hop looks: the rows it shows, as two templates (through DROPPED
    and after it: the drop lines go between) and pickers of their counts."""

    def __init__(self, rows, attached):
        self.rows = rows
        # what a verdict reads of it: its measured path stages, in PATH_ORDER (names, picker of their counts)
        path = [row for row in PATH_ORDER_ROWS if row in rows and row.name in attached]
        self.path_names, self.path_ids = tuple(row.name for row in path), tuple(row.id for row in path)
        self.shows_dropped = any(row.name == DROPPED for row in rows)
        cut = next((n + 1 for n, row in enumerate(rows) if row.name == DROPPED), len(rows))
        # the ids of the counts each template shows, in its order
        (self.head, self.head_ids), (self.tail, self.tail_ids) = (
            self._lines(rows[:cut], attached), self._lines(rows[cut:], attached))
        self.path_pick, self.head_pick, self.tail_pick = map(picker, (self.path_ids, self.head_ids, self.tail_ids))

    @staticmethod
    def _lines(rows, attached):
        # "-": not measured on this kernel, which is not 0
        text = "\n".join("        %s: %s" % (row.name, "%s" if row.name in attached else "-") for row in rows)
        return text, tuple(row.id for row in rows if row.name in attached)


class Shape:
    """How the hops of one kind of flow (IP version, protocol) are shown. A
    hop shows the device receive stages where the flow arrived, the socket
    stages where it arrived last (or where they counted it), the send stages
    where it left, RETRANS and DROPPED where they are not 0; a stage this
    kernel does not measure reads "-". Each way a hop can look is one Look,
    made once: `cat` of 10,000 flows formats a hop in one go."""

    def __init__(self, flow, attached):
        rows = [row for row in TABLE if row.applies(flow)]
        measured = [row for row in rows if row.name in attached]
        self.arrive = picker([row.id for row in measured if row.path == RECEIVE] or [0])
        self.leave = picker([row.id for row in measured if row.path == SEND] or [0])
        self.any_arrive = any(row.path == RECEIVE for row in measured)
        self.any_leave = any(row.path == SEND for row in measured)
        # rows a hop shows for their own count: the socket stages (also at the last arrival), the events
        self._own = [row for row in rows if row.path is None or (row.path == RECEIVE and row.protocol)]
        self._own_pick = picker([row.id for row in self._own] or [0])
        self._rows, self._attached = rows, attached
        self._looks = {}
        self.hop_looks = {}  # which counts of a flow's hops are nonzero -> their Looks (see shown_hops)

    def arrived(self, counts):
        return self.any_arrive and any(self.arrive(counts))

    def look(self, counts, last_arrival, arrived):
        """The Look of a hop with these counts (last_arrival: the last hop the flow
        arrived at; arrived: it arrived here)."""
        key = (arrived, self.any_leave and any(self.leave(counts)), last_arrival and arrived,
               *map(bool, self._own_pick(counts)))
        made = self._looks.get(key)
        if made is None:
            arrived, left, last, own = key[0], key[1], key[2], {row.name for row, n in zip(self._own, key[3:]) if n}
            made = self._looks[key] = Look(tuple(row for row in self._rows if row.name in own or (
                (arrived and (row.protocol is None or last)) if row.path == RECEIVE else
                left if row.path == SEND else False)), self._attached)
        return made


def shown_hops(shape, hops, drops_of_flow):
    """[(Hop, counts, its Look)] of a flow: hops ((Hop, counts), ...) in path
    order, then any hop only its drops name (its counts evicted). A hop's
    Look follows from which counts are nonzero, here and at the other hops."""
    if drops_of_flow:
        counted = {hop for hop, _counts in hops}
        hops = tuple(hops) + tuple((hop, (0,) * len(TABLE)) for hop in drops_of_flow if hop not in counted)
    nonzero = tuple([bytes(map(bool, counts)) for _hop, counts in hops])
    looks = shape.hop_looks.get(nonzero)
    if looks is None:
        arrived = [shape.arrived(counts) for _hop, counts in hops]
        last = len(arrived) - 1 - arrived[::-1].index(True) if True in arrived else -1
        looks = shape.hop_looks[nonzero] = tuple(shape.look(counts, n == last, arrived[n])
                                                 for n, (_hop, counts) in enumerate(hops))
    return [(hop, counts, look) for (hop, counts), look in zip(hops, looks)]


DROPPED_ID = BY_NAME[DROPPED].id


def flow_verdict(shown, drops_of_flow, names, drops_traced, drops_evicted=False):
    """verdict() of a flow's shown_hops. drops_evicted: the drops table evicted
    entries, so a hop's DROPPED count over its drops is put at EVICTED (were
    none evicted, such a difference is a read between the two counts' adds)."""
    drops_of_flow = drops_of_flow or {}
    hops = []
    for hop, counts, look in shown:
        sites = drops_of_flow.get(hop) or {}
        if drops_evicted:
            missing = counts[DROPPED_ID] - sum(sites.values())
            if missing > 0:
                sites = {**sites, EVICTED: missing}
        hops.append((hop, look.path_names, look.path_pick(counts), sites))
    return verdict(hops, drops_traced, lambda hop: names.get(hop) or unnamed(hop))


def unnamed(hop):
    """A hop no name was resolved for."""
    return HopName("net:[%d]" % hop.netns, None)


def flow_drops(drops):
    """{Flow.sort_key (hashed in C; a Flow hashes in Python) or None (unattributed):
    {Hop or None: {(reason, location): count}}}: plain dicts, which compare in C."""
    by_flow = defaultdict(dict)
    for drop in drops:
        per_hop = by_flow[drop.flow and drop.flow.sort_key].setdefault(drop.hop, {})
        where = (drop.reason, drop.location)
        per_hop[where] = per_hop.get(where, 0) + drop.count
    return by_flow


def drops_by_flow(snapshot):
    """flow_drops of the snapshot's drops (the decoder makes it in C, while the drops table's keys stay)."""
    return flow_drops(snapshot.drops) if snapshot.drops_by_flow is None else snapshot.drops_by_flow


def merged(per_hop):
    """{(reason, location): count} over a flow's hops."""
    if len(per_hop) == 1:  # most flows' drops: at one hop
        return next(iter(per_hop.values()))
    total = Counter()
    for drops in per_hop.values():
        total.update(drops)
    return total


def host_drops(snapshot):
    """Host-wide, like dropwatch's summary: every flow's drops and what could
    not be parsed, {(reason, location): count} (the decoder makes it in C)."""
    if snapshot.drops_by_site is not None:
        return snapshot.drops_by_site
    everywhere = defaultdict(int)
    for drop in snapshot.drops:
        everywhere[(drop.reason, drop.location)] += drop.count
    return everywhere


def attached_stages(hooks):
    return {h.stage for h in hooks or () if h.chosen}
