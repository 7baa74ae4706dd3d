"""What `cat` prints. Pure: a state in, text out (a FlowTexts passed in only
saves formatting again). The layout is a contract with users' scripts: add
lines, never rename or reorder the existing ones."""
from .commands import FILTERS, MAX_FLOWS
from .devices import LINK_COUNTERS, SOFTNET_COUNTERS
from .diagnosis import attached_stages, by_count, drops_by_flow, hop_text, host_drops, merged, unnamed
from .flow_texts import flow_texts
from .stages import DROPPED

COUNTER_ORDER = tuple(LINK_COUNTERS) + tuple(SOFTNET_COUNTERS)
# After a table's use: what one of its entries is.
TABLE_NOTES = {"flows": " (an entry per flow per hop)", "slots": " (an entry per flow per hop per CPU)"}


def _setting(value):
    return "*" if value is None else str(value)


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
    lines += flow_texts(snapshot, texts, by_flow, attached, reading.names, drops_traced)

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
