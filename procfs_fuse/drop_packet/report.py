"""What `cat` prints. Pure: a state in, text out (a FlowTexts passed in only
saves formatting again). The layout is a contract with users' scripts: add
lines, never rename or reorder the existing ones."""
from .commands import FILTERS, MAX_FLOWS
from .devices import LINK_COUNTERS, SOFTNET_COUNTERS
from .diagnosis import (Shape, attached_stages, by_count, flow_drops, flow_verdict, hop_text, host_drops, merged,
                        shown_hops, unnamed, verdict)
from .flows import PORTED_PROTOCOLS, PROTOCOL_NAMES
from .stages import DROPPED

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


def _flow_text(header, hops, drops_of_flow, hop_line, shape, drops_traced, no_drops, names, templates):
    """hops: ((Hop, counts), ...) in path order; drops_of_flow: {Hop: {(reason, location): n}} or None;
    hop_line(hop): its `    hop: ...` line; templates: {(Hop, Look) of each hop: (text, looks)},
    one per render: a flow without drops is one format of a text its path shares with
    others (10,000 flows over the same two hops: one text)."""
    shown = shown_hops(shape, hops, drops_of_flow)
    if not drops_of_flow:
        path = tuple((hop, look) for hop, _counts, look in shown)
        made = templates.get(path)
        if made is None:
            lines = []
            for hop, look in path:
                lines += [hop_line(hop).replace("%", "%%")] + [text for text in (look.head, look.tail) if text]
            made = templates[path] = ("\n".join(lines + [no_drops.replace("%", "%%")]), [look for _hop, look in path])
        text, looks = made
        values = ()
        for look, (_hop, counts, _look) in zip(looks, shown):
            values += look.head_pick(counts) + look.tail_pick(counts)
        return header + "\n" + text % values
    parts = [header]
    for hop, counts, look in shown:
        parts.append(hop_line(hop))
        if look.head:
            parts.append(look.head % look.head_pick(counts))
        drops = drops_of_flow.get(hop)
        if drops:
            parts += ["            %s: %d at %s" % (reason, count, location)
                      for (reason, location), count in by_count(drops)]
        if look.tail:
            parts.append(look.tail % look.tail_pick(counts))
    parts.append("    verdict: " + flow_verdict(shape, shown, drops_of_flow, names, drops_traced)
                 if drops_traced else no_drops)
    return "\n".join(parts)


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

    drops_by_flow = flow_drops(snapshot.drops)

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
    now = {}
    shapes = {}  # (IP version, protocol) -> Shape
    no_drops = "    verdict: " + verdict([], drops_traced)
    hop_lines, templates = {}, {}

    def hop_line(hop):
        line = hop_lines.get(hop)
        if line is None:
            line = hop_lines[hop] = "    hop: " + hop_text(names.get(hop) or unnamed(hop))
        return line

    for flow, hops in sorted(snapshot.flows.items(), key=_flow_order):
        key = flow.sort_key
        drops_of_flow = drops_by_flow.get(key)
        state = (hops, drops_of_flow)
        kept = last.get(key)
        if kept and kept[0] == state:
            text, header = kept[1], kept[2]
        else:
            header = kept[2] if kept else flow_header(flow)
            kind = (flow.saddr.version, flow.protocol)
            shape = shapes.get(kind) or shapes.setdefault(kind, Shape(flow, attached))
            text = _flow_text(header, hops, drops_of_flow, hop_line, shape, drops_traced, no_drops, names, templates)
        now[key] = (state, text, header)
        lines.append(text)
    texts.attached, texts.names, texts.by_flow = attached, names, now

    everywhere = host_drops(snapshot.drops)
    lines.append("drops: %s" % (sum(everywhere.values()) if drops_traced or hooks is None else "-"))
    lines.append("  unattributed: %d" % sum(merged(drops_by_flow.get(None, {})).values()))
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
