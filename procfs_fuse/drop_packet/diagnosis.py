"""What every view of a reading says of it, the same in text, JSON and
Prometheus: which lines each hop of a flow shows, the verdict, the drops by
flow and host-wide, which stages were attached. Pure."""
from collections import Counter, defaultdict
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


def verdict(hops, drops_traced):
    """One line a newcomer can act on. hops: [(HopName, [(stage, count)] its
    measured path stages shown in PATH_ORDER, {(reason, location): count})],
    in the order the flow passed them."""
    if not drops_traced:
        return "unknown: drops are not traced on this kernel"
    total = Counter()
    for _name, _stages, drops in hops:
        total.update(drops)
    dropped = sum(total.values())
    if not dropped:
        return "no drops seen"
    ranked = by_count(total)
    (reason, location), _n = ranked[0]
    sent = max((n for _stage, n in hops[0][1]), default=0)  # what the first hop saw
    name, stages, _drops = max(hops, key=lambda hop: hop[2].get((reason, location), 0))  # the first such hop
    seen = [n for _stage, n in stages]
    most = max(seen, default=0)
    after = ""
    if most:  # the last stage there that saw them all
        after = ", after %s" % stages[len(seen) - 1 - seen[::-1].index(most)][0]
    text = "%d of %d lost in %s%s: %s at %s" % (dropped, max(sent, dropped), hop_text(name), after, reason, location)
    if len(ranked) > 1:
        text += " and %d more" % (len(ranked) - 1)
    return text + " (%s)" % (hint(reason, location) or "no hint is known for %s" % reason)


def _picker(indexes):
    """counts -> tuple of counts[i] for i in indexes, in C where it can be."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    return lambda counts: tuple(counts[i] for i in indexes)


class Look:
    """How one hop looks: the rows it shows, as two templates (through DROPPED
    and after it: the drop lines go between) and pickers of their counts."""

    def __init__(self, rows, attached):
        self.rows = rows
        # what a verdict reads of it: its measured path stages, in PATH_ORDER
        self.path = [(row.name, row.id) for row in PATH_ORDER_ROWS if row in rows and row.name in attached]
        cut = next((n + 1 for n, row in enumerate(rows) if row.name == DROPPED), len(rows))
        (self.head, self.head_pick), (self.tail, self.tail_pick) = (
            self._lines(rows[:cut], attached), self._lines(rows[cut:], attached))

    @staticmethod
    def _lines(rows, attached):
        # "-": not measured on this kernel, which is not 0
        text = "\n".join("        %s: %s" % (row.name, "%s" if row.name in attached else "-") for row in rows)
        ids = [row.id for row in rows if row.name in attached]
        return text, _picker(ids) if ids else (lambda counts: ())


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
        self.arrive = _picker([row.id for row in measured if row.path == RECEIVE] or [0])
        self.leave = _picker([row.id for row in measured if row.path == SEND] or [0])
        self.any_arrive = any(row.path == RECEIVE for row in measured)
        self.any_leave = any(row.path == SEND for row in measured)
        # rows a hop shows for their own count: the socket stages (also at the last arrival), the events
        self._own = [row for row in rows if row.path is None or (row.path == RECEIVE and row.protocol)]
        self._own_pick = _picker([row.id for row in self._own] or [0])
        self._rows, self._attached = rows, attached
        self._looks = {}

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
    order, then any hop only its drops name (its counts evicted)."""
    if drops_of_flow:
        counted = {hop for hop, _counts in hops}
        hops = tuple(hops) + tuple((hop, (0,) * len(TABLE)) for hop in drops_of_flow if hop not in counted)
    arrived = [shape.arrived(counts) for _hop, counts in hops]
    last = len(arrived) - 1 - arrived[::-1].index(True) if True in arrived else -1
    return [(hop, counts, shape.look(counts, n == last, arrived[n])) for n, (hop, counts) in enumerate(hops)]


def flow_verdict(shape, shown, drops_of_flow, names, drops_traced):
    """verdict() of a flow's shown_hops."""
    drops_of_flow = drops_of_flow or {}
    return verdict([(names.get(hop) or unnamed(hop), [(name, counts[i]) for name, i in look.path],
                     drops_of_flow.get(hop, {})) for hop, counts, look in shown], drops_traced)


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


def merged(per_hop):
    """{(reason, location): count} over a flow's hops."""
    if len(per_hop) == 1:  # most flows' drops: at one hop
        return next(iter(per_hop.values()))
    total = Counter()
    for drops in per_hop.values():
        total.update(drops)
    return total


def host_drops(drops):
    """Host-wide, like dropwatch's summary: every flow's drops and what could
    not be parsed, {(reason, location): count}."""
    everywhere = defaultdict(int)
    for drop in drops:
        everywhere[(drop.reason, drop.location)] += drop.count
    return everywhere


def attached_stages(hooks):
    return {h.stage for h in hooks or () if h.chosen}
