"""What `cat` prints. Pure: a state in, text out (a FlowTexts passed in only
saves formatting again). The layout is a contract with users' scripts: add
lines, never rename or reorder the existing ones."""
from collections import deque
from itertools import chain, compress, count, repeat
from operator import add, attrgetter, ge, is_, itemgetter, ne

from .commands import FILTERS, MAX_FLOWS
from .devices import LINK_COUNTERS, SOFTNET_COUNTERS
from .diagnosis import (Shape, attached_stages, by_count, cause_text, drops_by_flow, evicted_drops, flow_verdict,
                        hop_text, host_drops, last_full_stage, merged, picker, shown_hops, unnamed, verdict)
from .flows import PORTED_PROTOCOLS, PROTOCOL_NAMES
from .stages import DROPPED, TABLE

COUNTER_ORDER = tuple(LINK_COUNTERS) + tuple(SOFTNET_COUNTERS)
# After a table's use: what one of its entries is.
TABLE_NOTES = {"flows": " (an entry per flow per hop)", "slots": " (an entry per flow per hop per CPU)"}


def _setting(value):
    return "*" if value is None else str(value)


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

    def __init__(self, snapshot, made_for, by_flow, last):
        """made_for: (attached stages, names, drops evicted), what the texts
        depend on besides the flows; last: the last render's plan or None."""
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
        paths = list(map(list(snapshot.flows.values()).__getitem__, self.order))
        drops = list(map(by_flow.get, self.keys, repeat(_NO_DROPS)))
        groups = {}  # (kind, hops, drop sites) -> [flow index]
        for at, group_key in enumerate(zip(map(_KIND, self.keys), map(tuple, map(map, repeat(_HOP), paths)),
                                           map(tuple, drops),
                                           map(tuple, map(map, repeat(tuple), map(dict.values, drops))))):
            group = groups.get(group_key)
            if group is None:
                group = groups[group_key] = []
            group.append(at)
        self.groups = list(groups.items())
        self.formats = {}  # (group key, nonzero counts) -> _PathFormat, or None: _flow_text

    def holds(self, snapshot, made_for):
        return snapshot.structure is not None and snapshot.structure is self.structure and made_for == self.made_for


def _hops_template(path, hop_line):
    """path: ((Hop, Look, its drop sites in order), ...) -> the `%` template of
    those hops' lines: a hop's line, its stages through DROPPED, a line per
    drop site, its stages after."""
    lines = []
    for hop, look, sites in path:
        lines.append(hop_line(hop).replace("%", "%%"))
        if look.head:
            lines.append(look.head)
        lines += [("            %s: " % reason).replace("%", "%%") + "%d at " + location.replace("%", "%%")
                  for reason, location in sites]
        if look.tail:
            lines.append(look.tail)
    return "\n".join(lines)


def _flow_text(header, hops, drops_of_flow, hop_line, shape, verdict_of, templates):
    """hops: ((Hop, counts), ...) in path order; drops_of_flow: {Hop: {(reason, location): n}} or None;
    hop_line(hop): its `    hop: ...` line; verdict_of(shown, drops_of_flow): the verdict line;
    templates: {((Hop, Look, drop sites) of each hop): _hops_template}, one per render."""
    shown = shown_hops(shape, hops, drops_of_flow)
    sites = tuple(tuple(site for site, _n in by_count(drops_of_flow[hop])) if hop in drops_of_flow else ()
                  for hop, _counts, _look in shown) if drops_of_flow else ((),) * len(shown)
    path = tuple((hop, look, hop_sites) for (hop, _counts, look), hop_sites in zip(shown, sites))
    made = templates.get(path)
    if made is None:
        made = templates[path] = _hops_template(path, hop_line)
    values = ()
    for (hop, counts, look), hop_sites in zip(shown, sites):
        values += look.head_pick(counts)
        if hop_sites:
            drops = drops_of_flow[hop]
            values += tuple(drops[site] for site in hop_sites)
        values += look.tail_pick(counts)
    return header + "\n" + made % values + "\n    verdict: " + verdict_of(shown, drops_of_flow)


def _may_hold_evicted(shown, drops_evicted):
    """A DROPPED count shows where the drops table evicted: some of it may be drops it no longer holds."""
    return drops_evicted and any(look.shows_dropped for _hop, _counts, look in shown)


class _PathFormat:
    """The text of every flow with the same kind, hops, nonzero counts and drop
    site (one at one of its hops, or none), made once and formatted with each
    flow's numbers: what _flow_text would make of them, in a fraction of its time
    (a `cat` of 10,000 changed flows). Flows with more sites or hops only their
    drops name, or drop counts the drops table may have evicted, take _flow_text.
    It reads a flow's counts laid end to end, hop after hop (flat_counts), then its drop count."""

    @classmethod
    def of(cls, flow_hops, drops_of_flow, shape, hop_line, names, drops_traced, drops_evicted):
        """A _PathFormat for flows like this one, or None where _flow_text must do it."""
        at, site = None, None
        if drops_of_flow:
            if len(drops_of_flow) > 1:
                return None
            (at, sites), = drops_of_flow.items()
            if len(sites) > 1:
                return None
            (site, _n), = sites.items()
        if site and not drops_traced:  # drops kept from an activation that traced them
            return None
        shown = shown_hops(shape, flow_hops, drops_of_flow)
        if len(shown) > len(flow_hops):  # a hop only the drops name
            return None
        if _may_hold_evicted(shown, drops_evicted):
            return None
        return cls(shown, at, site, hop_line, names, drops_traced, flat_counts(flow_hops))

    def __init__(self, shown, at, site, hop_line, names, drops_traced, counts):
        """counts: flat_counts of a flow of this format: which are nonzero is the format's."""
        body = "%s\n" + _hops_template([(hop, look, (site,) if hop == at else ()) for hop, _counts, look in shown],
                                       hop_line) + "\n    verdict: "
        width, drop_count = len(TABLE), len(TABLE) * len(shown)  # where a hop's counts start; the drop count
        shown_ids = []
        for n, (hop, _counts, look) in enumerate(shown):
            shown_ids += [n * width + i for i in look.head_ids] + [drop_count] * (hop == at)
            shown_ids += [n * width + i for i in look.tail_ids]
        self._pick = picker(shown_ids)
        self._site, self._at = site, at
        if site is None:
            self._variants = (body + verdict([], drops_traced).replace("%", "%%"),)
            return
        index = [n for n, (hop, _counts, _look) in enumerate(shown) if hop == at][0]
        look = shown[index][2]
        # "sent": the most any path stage of the first hop saw; of the nonzero ones (zeros cannot be it)
        self._sent_ids = [i for i in shown[0][2].path_ids if counts[i]]
        # the verdict's "after": the last path stage of the drop's hop that saw the most (diagnosis.last_full_stage)
        self._at_path = picker([index * width + i for i in look.path_ids])
        self._full_candidates = [(n, index * width + i) for n, i in enumerate(look.path_ids)
                                 if counts[index * width + i]]
        # by the last stage there that saw them all: one text per stage, the last without "after"
        lost_in = "%%d of %%d lost in %s" % hop_text(names.get(at) or unnamed(at)).replace("%", "%%")
        cause = ": " + cause_text(site, 0).replace("%", "%%")
        self._variants = tuple(body + lost_in + ", after %s" % name + cause for name in look.path_names) + (
            body + lost_in + cause,)

    def texts(self, headers, counts, drops):
        """The texts of flows of this format (their headers, flat_counts and
        drops by hop), each part in C: map over all of them at once."""
        if self._site is None:
            return list(map(self._variants[0].__mod__, map(add, zip(headers), map(self._pick, counts))))
        dropped = list(map(itemgetter(self._site), map(itemgetter(self._at), drops)))
        counts = list(map(add, counts, zip(dropped)))  # the drop count last, where _pick expects it
        sent = (map(max, map(itemgetter(*self._sent_ids), counts)) if len(self._sent_ids) > 1 else
                map(itemgetter(*self._sent_ids), counts) if self._sent_ids else repeat(0))
        values = map(add, map(add, zip(headers), map(self._pick, counts)), zip(dropped, map(max, sent, dropped)))
        candidates = self._full_candidates
        if len(candidates) < 2:  # the same "after" for all: the one nonzero stage, or none (-1: no "after")
            return list(map(self._variants[candidates[0][0] if candidates else -1].__mod__, values))
        if len(candidates) == 2:  # the later one where it saw at least as many
            (earlier, at_earlier), (later, at_later) = candidates
            templates = map((self._variants[earlier], self._variants[later]).__getitem__,
                            map(ge, map(itemgetter(at_later), counts), map(itemgetter(at_earlier), counts)))
        else:
            templates = map(self._variants.__getitem__, map(last_full_stage, map(self._at_path, counts)))
        return list(map(str.__mod__, templates, values))


_HOP, _COUNTS = itemgetter(0), itemgetter(1)  # of a (Hop, counts)
_FIRST_HOP, _SECOND_HOP = itemgetter(0), itemgetter(1)  # of a flow's hops
_STATE, _TEXT = itemgetter(0), itemgetter(1)  # of a (state, text)
_SORT_KEY, _KIND = attrgetter("sort_key"), itemgetter(slice(0, 2))  # kind: (protocol, IP version) of a sort key
_NOT_KEPT, _NO_DROPS = (None, None), {}
_POSITIONS = range(1 << 62)  # compress(_POSITIONS, counts): where counts are nonzero


def _flat_counts_of(paths, hop_count):
    """flat_counts of each of paths, flows of hop_count hops each: in C."""
    if hop_count == 1:
        return list(map(_COUNTS, map(_FIRST_HOP, paths)))
    if hop_count == 2:
        return list(map(add, map(_COUNTS, map(_FIRST_HOP, paths)), map(_COUNTS, map(_SECOND_HOP, paths))))
    return list(map(flat_counts, paths))


def flat_counts(hops):
    """The counts of a flow's hops ((Hop, counts), ...) laid end to end."""
    if len(hops) == 2:  # most flows of a host with containers: no chain to make
        return hops[0][1] + hops[1][1]
    return hops[0][1] if len(hops) == 1 else tuple(chain.from_iterable(map(_COUNTS, hops)))


def render(reading, texts=None):
    """reading: a Reading (hooks: of the current or last activation, or None;
    snapshot: the flows, drops and table use; names: of its hops); texts: a
    FlowTexts the caller keeps from render to render."""
    hooks, snapshot = reading.hooks, reading.snapshot
    lines = ["settings:", "  activated: %s" % ("y" if reading.active else "N")]
    lines += ["  %s: %s" % (word, _setting(getattr(reading.filters, field))) for word, field in FILTERS.items()]
    lines.append("  %s: %d" % (MAX_FLOWS, reading.max_flows))
    lines.append("  last-error: %s" % (reading.last_error or "none"))
    lines.append("hooks:")
    if hooks is None:
        lines.append("  (never attached)")
    else:
        lines += ["  %s: %s" % (h.stage, h.describe()) for h in hooks]
    attached = attached_stages(hooks)
    drops_traced = DROPPED in attached

    by_flow = drops_by_flow(snapshot)

    lines.append("tables:")
    lines += ["  %s: %d of %d, evicted %d%s" % (t.name, t.held, t.capacity, t.evicted, TABLE_NOTES.get(t.name, ""))
              for t in snapshot.tables]
    if not snapshot.tables:
        lines.append("  (none)")
    lines.append("flows: %d" % len(snapshot.flows))
    if texts is None:
        texts = FlowTexts()
    names = reading.names
    shapes = {}  # kind (protocol, IP version) -> Shape
    no_drops = verdict([], drops_traced)
    drops_evicted = evicted_drops(snapshot)
    hop_lines, templates = {}, {}

    def verdict_of(shown, drops_of_flow):
        if drops_of_flow or _may_hold_evicted(shown, drops_evicted):
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
    if plan is None or not plan.holds(snapshot, made_for):
        plan = _Plan(snapshot, made_for, by_flow, plan)
    last_states, flow_texts = texts.kept(plan)
    flow_texts = list(flow_texts)
    # Every step over all flows at once, in C (a `cat` of 10,000 flows)
    paths = list(map(list(snapshot.flows.values()).__getitem__, plan.order))
    drops = list(map(by_flow.get, plan.keys, repeat(_NO_DROPS)))
    states = list(zip(paths, drops))
    changed = list(map(ne, last_states, states))
    headers = plan.headers
    for group_key, members in plan.groups:
        todo = list(compress(members, map(changed.__getitem__, members)))
        if not todo:
            continue
        group_paths = list(map(paths.__getitem__, todo))
        counts = _flat_counts_of(group_paths, len(group_key[1]))
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
                made = plan.formats[group_key, which] = _PathFormat.of(
                    paths[first], drops[first], shape_of(plan.flows[first], kind), hop_line, names, drops_traced,
                    drops_evicted)
            ats = list(map(todo.__getitem__, picked))
            if made is None:
                made_texts = [_flow_text(headers[at], paths[at], drops[at], hop_line, shape_of(plan.flows[at], kind),
                                         verdict_of, templates) for at in ats]
            else:
                made_texts = made.texts(list(map(headers.__getitem__, ats)), list(map(counts.__getitem__, picked)),
                                        list(map(drops.__getitem__, ats)))
            deque(map(flow_texts.__setitem__, ats, made_texts), maxlen=0)  # each in its place, in C
    lines += flow_texts
    texts.plan, texts.states, texts.texts = plan, states, flow_texts

    everywhere = host_drops(snapshot)
    lines.append("drops: %s" % (sum(everywhere.values()) if drops_traced or hooks is None else "-"))
    lines.append("  unattributed: %d" % sum(merged(by_flow.get(None, {})).values()))
    lines += ["  %s: %d at %s" % (reason, n, location) for (reason, location), n in by_count(everywhere)]
    lines.append("devices:")
    lines += device_lines(reading)
    return "\n".join(lines) + "\n"


def device_changes(reading):
    """[(label, [(counter, change)])] of the device and softnet counters that
    moved since the measurement started, devices by name, then CPUs."""
    moved = sorted((hop_text(reading.names.get(hop) or unnamed(hop)), counters)
                   for hop, counters in reading.devices.items())
    moved += [("cpu %d" % cpu, counters) for cpu, counters in sorted(reading.softnet.items())]
    return [(label, [(c, counters[c]) for c in COUNTER_ORDER if c in counters]) for label, counters in moved]


def device_lines(reading):
    if not reading.active:
        return ["  (read while active)"]
    return ["  %s: %s" % (label, ", ".join("%s %d" % pair for pair in counters))
            for label, counters in device_changes(reading)] or ["  (no change since the counts started)"]
