"""What `cat` prints: a Reading as text. The layout is a contract with users'
scripts: add lines, never rename or reorder the existing ones."""
from ..capture.settings import FILTERS, MAX_FLOWS
from ..model.devices import LINK_COUNTERS, SOFTNET_COUNTERS
from ..model.diagnosis import by_count
from ..model.nat import changes

COUNTER_ORDER = tuple(LINK_COUNTERS) + tuple(SOFTNET_COUNTERS)
STAGE_LINE = "        %s: "
NOT_MEASURED = ("-",)  # after a hop's counts: what HopRows.shown gives a stage this kernel does not measure
# After a table's use: what one of its entries is.
TABLE_NOTES = {"flows": " (an entry per flow per hop)", "slots": " (an entry per flow per hop per CPU)",
               "nats": " (an entry per flow translated)"}


def _setting(value):
    return "*" if value is None else str(value)


def flow_header(flow):
    if flow.has_ports:
        return "protocol: %s, Source IP: %s, Source Port: %d, Dest IP: %s, Dest Port: %d" % (
            flow.protocol_name, flow.source, flow.sport, flow.dest, flow.dport)
    return "protocol: %s, Source IP: %s, Dest IP: %s" % (flow.protocol_name, flow.source, flow.dest)


def flow_lines(path, lines, blocks):
    """Appends a FlowReading's lines to lines: its header, each hop's stages
    with its drop sites after DROPPED, its translations (`    nat:`) before
    the hop each was first seen at, the verdict. blocks: the HopBlocks of the
    reading, filled as it goes."""
    lines.append(flow_header(path.flow))
    nats, sites_of = list(path.nats), path.sites
    for n, ((hop, counts), rows) in enumerate(zip(path.hops, path.rows)):
        while nats and nats[0][0] <= n:
            lines.append(blocks.nat_line(nats.pop(0)[1]))
        every, head, tail = blocks[hop, rows.names, rows.sites_at]
        shown = rows.shown(counts + NOT_MEASURED)
        sites = sites_of.get(hop) if sites_of else None
        if not sites:
            lines.append(every % shown)
            continue
        lines.append(head % shown[:rows.sites_at])
        lines += ["            %s: %d at %s" % (reason, n, location) for (reason, location), n in by_count(sites)]
        if tail:
            lines.append(tail % shown[rows.sites_at:])
    lines += [blocks.nat_line(translation) for _n, translation in nats]
    lines.append("    verdict: " + path.verdict)


class HopBlocks(dict):
    """{(Hop, its rows' names, where its drop sites go): the % formats of
    the hop's lines}: (its `    hop: netns NAME, dev DEV` line and every
    stage line; those through DROPPED; the stage lines after it); the drop
    sites' lines go between the last two. Made once a reading for the few
    such of its 10,000 flows."""

    def __init__(self, names):
        super().__init__()
        self._names = names

    def __missing__(self, key):
        hop, names, sites_at = key
        lines = [("    hop: " + self._names[hop].text).replace("%", "%%")]  # a name is no format
        lines += [STAGE_LINE % name + "%s" for name in names]
        through = sites_at + 1
        formats = self[key] = ("\n".join(lines), "\n".join(lines[:through]), "\n".join(lines[through:]))
        return formats

    def nat_line(self, translation):
        """`    nat: netns NAME: dest A -> B, source C -> D`."""
        return "    nat: netns %s: %s" % (self._names[translation.hop].netns, changes(translation))


def device_changes(reading):
    """[(label, [(counter, change)])] of the device and softnet counters that
    moved since the measurement started, devices by name, then CPUs."""
    moved = sorted((device.name.text, device.counters) for device in reading.devices)
    moved += [("cpu %d" % cpu, counters) for cpu, counters in sorted(reading.softnet.items())]
    return [(label, [(c, counters[c]) for c in COUNTER_ORDER if c in counters]) for label, counters in moved]


def render(reading):
    lines = ["settings:", "  activated: %s" % ("y" if reading.active else "N")]
    lines += ["  %s: %s" % (word, _setting(getattr(reading.filters, field))) for word, field in FILTERS.items()]
    lines.append("  %s: %d" % (MAX_FLOWS, reading.max_flows))
    lines.append("  last-error: %s" % (reading.last_error or "none"))
    lines.append("hooks:")
    if reading.hooks is None:
        lines.append("  (never attached)")
    else:
        lines += ["  %s: %s" % (h.stage, h.describe()) for h in reading.hooks]
    lines.append("tables:")
    lines += ["  %s: %d of %d, evicted %d%s" % (t.name, t.held, t.capacity, t.evicted, TABLE_NOTES.get(t.name, ""))
              for t in reading.tables]
    if not reading.tables:
        lines.append("  (none)")
    lines.append("flows: %d" % len(reading.flows))
    blocks = HopBlocks(reading.names)
    for path in reading.flows:
        flow_lines(path, lines, blocks)
    everywhere = reading.host_drops
    lines.append("drops: %s" % (sum(n for _site, n in everywhere) if reading.drops_traced or reading.hooks is None
                                else "-"))
    lines.append("  unattributed: %d" % reading.unattributed)
    lines += ["  %s: %d at %s" % (reason, n, location) for (reason, location), n in everywhere]
    not_lost = reading.not_lost_drops
    if not_lost:  # freed, but not loss (not_lost.py): counted apart from the total above
        lines.append("  not lost: %d" % sum(n for _site, n in not_lost))
        lines += ["    %s: %d at %s" % (reason, n, location) for (reason, location), n in not_lost]
    lines.append("devices:")
    if not reading.active:
        lines.append("  (read while active)")
    else:
        lines += ["  %s: %s" % (label, ", ".join("%s %d" % pair for pair in counters))
                  for label, counters in device_changes(reading)] or ["  (no change since the counts started)"]
    return ("\n".join(lines) + "\n").encode()
