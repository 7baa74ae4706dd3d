"""What `cat` prints. Pure: a state in, text out (a FlowTexts passed in only
saves formatting again). The layout is a contract with users' scripts: add
lines, never rename or reorder the existing ones."""
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


def _flow_order(item):
    return item[0].sort_key


class FlowTexts:
    """Each flow's text from the last render, for the next one: a flow whose
    hops, counts and drops have not changed since is not formatted again (most
    flows of a big table are idle between two reads); all are when the hooks
    or the hops' names changed."""

    def __init__(self):
        self.attached, self.names, self.by_flow = None, None, {}  # by_flow: {Flow.sort_key: (state, text, header)}


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
_FLOW, _PATH = itemgetter(0), itemgetter(1)  # of a (Flow, its hops)
_STATE, _TEXT, _HEADER = itemgetter(0), itemgetter(1), itemgetter(2)  # of a FlowTexts.by_flow value
_SORT_KEY, _KIND = attrgetter("sort_key"), itemgetter(slice(0, 2))  # kind: (protocol, IP version) of a sort key
_NOT_KEPT, _NO_DROPS = (None, None, None), {}
_POSITIONS = range(1 << 62)  # compress(_POSITIONS, counts): where counts are nonzero


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
    last = texts.by_flow if texts.attached == attached and texts.names == names else {}
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

    # Every step over all flows at once, in C (a `cat` of 10,000 flows); Python
    # runs a step per flow only to group the changed ones by format.
    items = sorted(snapshot.flows.items(), key=_flow_order)
    flows, paths = list(map(_FLOW, items)), list(map(_PATH, items))
    keys = list(map(_SORT_KEY, flows))
    drops = list(map(by_flow.get, keys, repeat(_NO_DROPS)))
    states = list(zip(paths, drops))
    kept = list(map(last.get, keys, repeat(_NOT_KEPT)))
    flow_texts, headers = list(map(_TEXT, kept)), list(map(_HEADER, kept))
    for at in compress(count(), map(is_, headers, repeat(None))):  # flows new to the last render
        headers[at] = flow_header(flows[at])
    changed = list(compress(count(), map(ne, map(_STATE, kept), states)))
    changed_paths, changed_drops = list(map(paths.__getitem__, changed)), list(map(drops.__getitem__, changed))
    counts = list(map(flat_counts, changed_paths))
    groups = {}  # format key -> [index in changed]
    for n, format_key in enumerate(zip(map(_KIND, map(keys.__getitem__, changed)),
                                       map(tuple, map(map, repeat(_HOP), changed_paths)),
                                       map(tuple, map(compress, repeat(_POSITIONS), counts)),  # which are nonzero
                                       map(tuple, changed_drops),
                                       map(tuple, map(map, repeat(tuple), map(dict.values, changed_drops))))):
        group = groups.get(format_key)
        if group is None:
            group = groups[format_key] = []
        group.append(n)
    made_texts = [None] * len(changed)
    for (kind, *_rest), group in groups.items():
        first = group[0]
        shape = shape_of(flows[changed[first]], kind)
        made = _PathFormat.of(changed_paths[first], changed_drops[first], shape, hop_line, names, drops_traced,
                              drops_evicted)
        if made is None:
            for n in group:
                made_texts[n] = _flow_text(headers[changed[n]], changed_paths[n], changed_drops[n], hop_line, shape,
                                           verdict_of, templates)
            continue
        group_texts = made.texts(list(map(headers.__getitem__, map(changed.__getitem__, group))),
                                 list(map(counts.__getitem__, group)), list(map(changed_drops.__getitem__, group)))
        for n, text in zip(group, group_texts):
            made_texts[n] = text
    for at, text in zip(changed, made_texts):
        flow_texts[at] = text
    lines += flow_texts
    texts.attached, texts.names = attached, names
    texts.by_flow = dict(zip(keys, zip(states, flow_texts, headers)))

    everywhere = host_drops(snapshot.drops)
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
