"""What every view says of a flow, the same in text, JSON and Prometheus:
which stages each of its hops shows, and the verdict. Pure."""
from collections import Counter
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import NamedTuple, Optional

from ..capture.stages import BY_NAME, DROPPED, PATH_ORDER, RECEIVE, SEND, TABLE
from .hints import hint
from .not_lost import why_not_lost

PATH_ORDER_ROWS = tuple(BY_NAME[name] for name in PATH_ORDER)
DROPPED_ID = BY_NAME[DROPPED].id
_COUNTS = itemgetter(1)  # of a (Hop, counts)
NO_DROPS = "no drops seen"
NOT_TRACED = "unknown: drops are not traced on this kernel"
# The site of drops the kernel counted at a hop (DROPPED) whose entries the
# drops table evicted: their reason and location are not known any more.
EVICTED = ("", "")  # sorts with real sites: no reason is ""


class HopName(NamedTuple):
    """A Hop as a person knows it (names.py): `ip netns` name, a process in
    it, or net:[inode]; the device's name, None where there is none or it is gone."""
    netns: str
    dev: Optional[str]

    @property
    def text(self):
        """As the report names it: `netns mhR, dev vRa`."""
        return "netns %s, dev %s" % (self.netns, self.dev or "-")


class Named(NamedTuple):
    """A hop as a verdict names it, where that says more than its HopName."""
    text: str


def unnamed(hop):
    """A hop no name was resolved for."""
    return HopName("net:[%d]" % hop.netns, None)


def by_count(sites):
    """[((reason, location), count)] of {(reason, location): count}, most first; ties by name."""
    if len(sites) == 1:  # most flows' drops: nothing to sort
        return list(sites.items())
    return sorted(sites.items(), key=lambda kv: (-kv[1], kv[0]))


def _items_at(indexes):
    """A function of a tuple: the tuple of its items at indexes (itemgetter, always a tuple)."""
    if len(indexes) == 1:
        index, = indexes
        return lambda values: (values[index],)
    return itemgetter(*indexes) if indexes else lambda values: ()


class HopRows:
    """The stage rows one hop of a flow shows, in the report's order; and its
    measured path stages, in PATH_ORDER, that a verdict reads. Equal where the
    rows and what is measured are: a value, a few in a reading of 10,000 flows."""

    def __init__(self, rows, attached):
        self.rows = rows
        self.measured = tuple(row.name in attached for row in rows)
        self.names = tuple(row.name for row in rows)
        self.sites_at = self.names.index(DROPPED) + 1 if DROPPED in self.names else len(rows)  # drop sites' place
        # counts + (None,) -> each row's count, None where not measured
        self.shown = _items_at([row.id if measured else len(TABLE) for row, measured in zip(rows, self.measured)])
        path = [row for row in PATH_ORDER_ROWS if row in rows and row.name in attached]
        self.path_names = tuple(row.name for row in path)
        self.path_counts = _items_at([row.id for row in path])  # counts -> those of the path stages
        self._key = (rows, self.measured)
        self._hash = hash(self._key)

    def __eq__(self, other):
        return isinstance(other, HopRows) and self._key == other._key

    def __hash__(self):
        return self._hash


class KindRows:
    """Which rows the hops of one kind of flow (IP version, protocol) show: a
    hop shows the device receive stages where the flow arrived, the socket
    stages where it arrived last (or where they counted it), the send stages
    where it left, RETRANS and DROPPED where they are not 0; a stage this
    kernel does not measure reads "-"."""

    def __init__(self, flow, attached):
        self._rows = [row for row in TABLE if row.applies(flow)]
        measured = [row for row in self._rows if row.name in attached]
        self._arrive = [row.id for row in measured if row.path == RECEIVE]
        self._leave = [row.id for row in measured if row.path == SEND]
        # rows a hop shows for their own count: the socket stages (also at the last arrival), the events
        self._own = [row for row in self._rows if row.path is None or (row.path == RECEIVE and row.protocol)]
        self._attached = attached
        self._made = {}  # which counts of a flow's hops are nonzero -> their HopRows: a few for 10,000 flows

    def shown(self, hops):
        """[HopRows] of a flow's hops ((Hop, counts), ...) in path order. They
        follow from which counts are nonzero, here and at the other hops."""
        nonzero = bytes(map(bool, chain.from_iterable(map(_COUNTS, hops))))  # every hop's, end to end
        made = self._made.get(nonzero)
        if made is None:
            width = len(hops[0][1])
            nonzero_at = [nonzero[n * width:(n + 1) * width] for n in range(len(hops))]
            arrived = [any(seen[i] for i in self._arrive) for seen in nonzero_at]
            last = len(arrived) - 1 - arrived[::-1].index(True) if True in arrived else -1
            made = self._made[nonzero] = tuple(self._hop_rows(seen, n == last, arrived[n])
                                               for n, seen in enumerate(nonzero_at))
        return made

    def _hop_rows(self, seen, last_arrival, arrived):
        left = any(seen[i] for i in self._leave)
        own = {row.name for row in self._own if seen[row.id]}
        return HopRows(tuple(row for row in self._rows if row.name in own or (
            (arrived and (row.protocol is None or last_arrival)) if row.path == RECEIVE else
            left if row.path == SEND else False)), self._attached)


def last_full_stage(seen):
    """Of a hop's path stage counts, the index of the last that saw as many as
    any did (what the verdict says the flow got "after"); -1 where none saw any."""
    most = max(seen, default=0)
    return len(seen) - 1 - seen[::-1].index(most) if most else -1


@lru_cache(maxsize=4096)
def cause_text(site, more, qdisc=None):
    """The verdict's `REASON at LOCATION [and N more] (hint)`; qdisc: the root qdisc's kind at its hop."""
    reason, location = site
    if site == EVICTED:
        text, why = "reason not kept", "the drops table evicted it: see tables:"
    else:
        text = "%s at %s" % site
        why = hint(reason, location, qdisc) or "no hint is known for %s" % reason
    if more:
        text += " and %d more" % more
    return text + " (%s)" % why


def verdict(sent, dropping, drops_traced):
    """One line a newcomer can act on. sent: the most any path stage of the
    flow's first hop saw; dropping: [(HopName, path stage names, their counts,
    [((reason, location), count)] most first, its root qdisc's kind or None)] of the hops that dropped some,
    in the order the flow passed them (the names its measured path stages
    shown, in PATH_ORDER)."""
    if not drops_traced:
        return NOT_TRACED
    if not dropping:
        return NO_DROPS
    if len(dropping) == 1:  # most flows: one hop dropped them
        (name, names, seen, ranked, qdisc), = dropping
    else:
        total = Counter()
        for hop in dropping:
            total.update(dict(hop[3]))
        ranked = by_count(total)
        # the hop that dropped most of the main reason's (the first such)
        name, names, seen, _sites, qdisc = max(dropping, key=lambda hop: dict(hop[3]).get(ranked[0][0], 0))
    dropped = ranked[0][1] if len(ranked) == 1 else sum(n for _site, n in ranked)
    full = last_full_stage(seen)
    after = ", after %s" % names[full] if full >= 0 else ""
    return "%d of %d lost in %s%s: %s" % (dropped, max(sent, dropped), name.text, after,
                                          cause_text(ranked[0][0], len(ranked) - 1, qdisc))


def flow_verdict(hops, rows, sites, names, drops_traced, drops_evicted, dest, after_nat=None, qdiscs=None):
    """verdict() of a flow to dest, of its hops ((Hop, counts), ...), the
    HopRows each shows, its drop sites {Hop: {(reason, location): count}} and
    names {Hop: HopName}; drops that are not loss (not_lost.py) are left out
    of it, and where they are all there is, the verdict says why they are not.
    after_nat: {Hop: words} of the hops after a translation (nat.after_nat);
    qdiscs: {Hop: the kind of its device's root qdisc}, where it dropped as a qdisc does.
    drops_evicted: the drops table evicted entries, so a hop's DROPPED count
    over its drops is put at EVICTED (were none evicted, such a difference is
    a read between the two counts' adds)."""
    dropping, spared = [], {}  # spared: {why not lost: count}
    for (hop, counts), hop_rows in zip(hops, rows):
        hop_sites = sites.get(hop)
        if drops_evicted:
            missing = counts[DROPPED_ID] - sum(hop_sites.values() if hop_sites else ())
            hop_sites = {**(hop_sites or {}), EVICTED: missing} if missing > 0 else hop_sites
        if not hop_sites:
            continue
        lost = {}
        for site, n in hop_sites.items():
            why = site != EVICTED and why_not_lost(*site, dest)
            if why:
                spared[why] = spared.get(why, 0) + n
            else:
                lost[site] = n
        if lost:
            name = names[hop]
            if after_nat and hop in after_nat:
                name = Named("%s (%s)" % (name.text, after_nat[hop]))
            dropping.append((name, hop_rows.path_names, hop_rows.path_counts(counts), by_count(lost),
                             qdiscs.get(hop) if qdiscs else None))
    if spared and not dropping and drops_traced:
        return "not lost: " + max(spared, key=spared.get)  # the first of the most
    return verdict(max(rows[0].path_counts(hops[0][1]), default=0), dropping, drops_traced)
