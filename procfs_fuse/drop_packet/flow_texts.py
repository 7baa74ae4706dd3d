"""The flows' part of the report: each flow's text, made for all flows of a
`cat` at once (a kept plan, shared formats, every step over all flows in C)
and kept while a flow stays the same. report.py puts it in the report."""
from collections import deque
from itertools import compress, count, repeat
from operator import attrgetter, is_, itemgetter, ne

from .diagnosis import Shape, evicted_drops, flow_verdict, hop_text, unnamed, verdict
from .flows import PORTED_PROTOCOLS, PROTOCOL_NAMES
from .path_formats import PathFormat, flat_counts_of, flow_text, may_hold_evicted


def flow_header(flow):
    name = PROTOCOL_NAMES.get(flow.protocol, str(flow.protocol))
    saddr, daddr = flow.addresses
    if flow.protocol in PORTED_PROTOCOLS:
        return "protocol: %s, Source IP: %s, Source Port: %d, Dest IP: %s, Dest Port: %d" % (
            name, saddr, flow.sport, daddr, flow.dport)
    return "protocol: %s, Source IP: %s, Dest IP: %s" % (name, saddr, daddr)


class FlowTexts:
    """The last render's flows, for the next one: how it walked them (a
    _Plan, kept while the snapshot's structure stays) and each flow's state
    and text, in the plan's order. A flow whose hops, counts and drops have
    not changed since is not formatted again (most flows of a big table are
    idle between two reads); all are when the hooks or the hops' names changed."""

    def __init__(self):
        self.plan, self.states, self.texts = None, [], []

    def kept(self, plan):
        """(states, texts) of the last render for plan's flows (None: new to it)."""
        last = self.plan
        if last is plan:
            return self.states, self.texts
        if last is None or last.made_for != plan.made_for:  # other hooks, names or drops evicted: all anew
            return [None] * len(plan.keys), [None] * len(plan.keys)
        kept = list(map(dict(zip(last.keys, zip(self.states, self.texts))).get, plan.keys, repeat(_NOT_KEPT)))
        return list(map(_STATE, kept)), list(map(_TEXT, kept))


class _Plan:
    """How a render walks a snapshot's flows: their order, headers, and
    groups of flows with the same kind, hops and drop sites (what a format
    needs but which counts are nonzero). Made once per structure (see
    Snapshot.structure): while the decoder's layouts stay, a `cat` of 10,000
    flows runs no Python step per flow but for the flows it formats anew."""

    def __init__(self, snapshot, made_for, last):
        """made_for: (attached stages, names, drops evicted), what the texts
        depend on besides the flows; last: the last render's plan or None.
        Its groups come from group(), with the snapshot's in_order()."""
        self.structure, self.made_for = snapshot.structure, made_for
        flows = list(snapshot.flows)
        keys = list(map(_SORT_KEY, flows))
        self.order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = list(map(keys.__getitem__, self.order))
        self.flows = list(map(flows.__getitem__, self.order))
        headers = dict(zip(last.keys, last.headers)) if last is not None else {}
        self.headers = list(map(headers.get, self.keys))
        for at in compress(count(), map(is_, self.headers, repeat(None))):  # flows new to the last render
            self.headers[at] = flow_header(self.flows[at])
        self.groups, self.formats = [], {}  # formats: (group key, nonzero counts) -> PathFormat, or None: flow_text

    def in_order(self, snapshot, by_flow):
        """(each flow's hops, its drops ({} where none)), of a snapshot this plan holds, in its order."""
        return (list(map(list(snapshot.flows.values()).__getitem__, self.order)),
                list(map(by_flow.get, self.keys, repeat(_NO_DROPS))))

    def group(self, paths, drops):
        """The groups of the flows of in_order's paths and drops."""
        groups = {}  # (kind, hops, drop sites) -> [flow index]
        for at, group_key in enumerate(zip(map(_KIND, self.keys), map(tuple, map(map, repeat(_HOP), paths)),
                                           map(tuple, drops),
                                           map(tuple, map(map, repeat(tuple), map(dict.values, drops))))):
            group = groups.get(group_key)
            if group is None:
                group = groups[group_key] = []
            group.append(at)
        self.groups = list(groups.items())

    def holds(self, snapshot, made_for):
        return snapshot.structure is not None and snapshot.structure is self.structure and made_for == self.made_for


_HOP = itemgetter(0)  # of a (Hop, counts)
_STATE, _TEXT = itemgetter(0), itemgetter(1)  # of a (state, text)
_SORT_KEY, _KIND = attrgetter("sort_key"), itemgetter(slice(0, 2))  # kind: (protocol, IP version) of a sort key
_NOT_KEPT, _NO_DROPS = (None, None), {}
_POSITIONS = range(1 << 62)  # compress(_POSITIONS, counts): where counts are nonzero


def flow_texts(snapshot, texts, by_flow, attached, names, drops_traced):
    """Each flow's text, in the report's order (by Flow.sort_key). texts: a
    FlowTexts kept from render to render (None: none); by_flow:
    diagnosis.drops_by_flow of the snapshot; attached: the stages measured;
    names: {Hop: HopName}; drops_traced: whether drops are traced."""
    if texts is None:
        texts = FlowTexts()
    shapes = {}  # kind (protocol, IP version) -> Shape
    no_drops = verdict([], drops_traced)
    drops_evicted = evicted_drops(snapshot)
    hop_lines, templates = {}, {}

    def verdict_of(shown, drops_of_flow):
        if drops_of_flow or may_hold_evicted(shown, drops_evicted):
            return flow_verdict(shown, drops_of_flow, names, drops_traced, drops_evicted)
        return no_drops

    def shape_of(flow, kind):
        shape = shapes.get(kind)
        if shape is None:
            shape = shapes[kind] = Shape(flow, attached)
        return shape

    def hop_line(hop):
        line = hop_lines.get(hop)
        if line is None:
            line = hop_lines[hop] = "    hop: " + hop_text(names.get(hop) or unnamed(hop))
        return line

    made_for = (attached, names, drops_evicted)
    plan = texts.plan
    made_anew = plan is None or not plan.holds(snapshot, made_for)
    if made_anew:
        plan = _Plan(snapshot, made_for, plan)
    paths, drops = plan.in_order(snapshot, by_flow)  # every step over all flows at once, in C (a `cat` of 10,000)
    if made_anew:
        plan.group(paths, drops)
    last_states, last_texts = texts.kept(plan)
    texts_now = list(last_texts)
    states = list(zip(paths, drops))
    changed = list(map(ne, last_states, states))
    headers = plan.headers
    for group_key, members in plan.groups:
        todo = list(compress(members, map(changed.__getitem__, members)))
        if not todo:
            continue
        group_paths = list(map(paths.__getitem__, todo))
        counts = flat_counts_of(group_paths, len(group_key[1]))
        nonzero = list(map(tuple, map(compress, repeat(_POSITIONS), counts)))
        if nonzero.count(nonzero[0]) == len(nonzero):  # most groups: all flows alike
            formats = [(nonzero[0], range(len(todo)))]
        else:
            by_nonzero = {}
            for n, which in enumerate(nonzero):
                by_nonzero.setdefault(which, []).append(n)
            formats = by_nonzero.items()
        kind = group_key[0]
        for which, picked in formats:
            made = plan.formats.get((group_key, which), plan)
            if made is plan:
                first = todo[picked[0]]
                made = plan.formats[group_key, which] = PathFormat.of(
                    paths[first], drops[first], shape_of(plan.flows[first], kind), hop_line, names, drops_traced,
                    drops_evicted)
            ats = list(map(todo.__getitem__, picked))
            if made is None:
                made_texts = [flow_text(headers[at], paths[at], drops[at], hop_line, shape_of(plan.flows[at], kind),
                                        verdict_of, templates) for at in ats]
            else:
                made_texts = made.texts(list(map(headers.__getitem__, ats)), list(map(counts.__getitem__, picked)),
                                        list(map(drops.__getitem__, ats)))
            deque(map(texts_now.__setitem__, ats, made_texts), maxlen=0)  # each in its place, in C
    texts.plan, texts.states, texts.texts = plan, states, texts_now
    return texts_now
