"""drop-packet.prom: the reading in Prometheus' text exposition format, as
node_exporter's textfile collector reads it. Low cardinality: no flow is a
label (a 5-tuple per series would swamp a fleet's Prometheus); counts are
summed over flows per stage, drops per (reason, location).

Counters start again at 0 when a measurement starts again (activate,
`clear`, a filter change while active): rate() takes a drop as a counter
reset, and drop_packet_measurement_start_seconds says when it happened.
After `deactivate` they stay at the last counts, and drop_packet_active is 0.
"""
from .report import attached_stages, flow_drops, host_drops
from .stages import TABLE

PREFIX = "drop_packet_"


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


class _Exposition:
    def __init__(self):
        self.lines = []

    def family(self, name, kind, help_text, samples):
        """samples: [(labels dict, value)]; a family without samples is left out."""
        if not samples:
            return
        self.lines += ["# HELP %s%s %s" % (PREFIX, name, help_text), "# TYPE %s%s %s" % (PREFIX, name, kind)]
        for labels, value in samples:
            text = ",".join('%s="%s"' % (k, _escape(v)) for k, v in labels.items())
            self.lines.append("%s%s%s %s" % (PREFIX, name, "{%s}" % text if text else "", value))


def render(reading):
    snapshot, attached = reading.snapshot, attached_stages(reading.hooks)
    by_flow = flow_drops(snapshot.drops)
    out = _Exposition()
    out.family("active", "gauge", "1 while the hooks are attached and counting, else 0.",
               [({}, int(reading.active))])
    if reading.since is not None:
        out.family("measurement_start_seconds", "gauge",
                   "Unix time the counters started from: activation, clear or a filter change.",
                   [({}, "%.3f" % reading.since)])
    out.family("stage_hook_info", "gauge", "The hook each measured stage is attached to.",
               [({"stage": h.stage, "hook": h.chosen.describe()}, 1) for h in reading.hooks or () if h.chosen])
    totals = [0] * len(TABLE)
    for counts in snapshot.flows.values():
        for i, n in enumerate(counts):
            totals[i] += n
    out.family("packets_total", "counter", "Packets of the counted flows seen at each stage of the packet path "
               "(DROPPED: freed as drops), summed over flows; stages not measured here have no series.",
               [({"stage": row.name}, totals[row.id]) for row in TABLE if row.name in attached])
    out.family("flows", "gauge", "Flows counted.", [({}, len(snapshot.flows))])
    out.family("drops_total", "counter", "Packets the kernel freed as drops (skb:kfree_skb), by reason and place, "
               "host-wide (unattributed ones included).",
               [({"reason": reason, "location": location}, n)
                for (reason, location), n in sorted(host_drops(by_flow).items())])
    out.family("unattributed_drops_total", "counter", "Drops of packets that could not be put on a flow "
               "(not IP, truncated).", [({}, sum(by_flow.get(None, {}).values()))] if reading.hooks else [])
    tables = snapshot.tables
    out.family("table_entries", "gauge", "Entries a kernel table holds.",
               [({"table": t.name}, t.held) for t in tables])
    out.family("table_capacity", "gauge", "Entries a kernel table can hold.",
               [({"table": t.name}, t.capacity) for t in tables])
    out.family("table_evictions_total", "counter", "Least recently used entries pushed out to make room.",
               [({"table": t.name}, t.evicted) for t in tables])
    return ("\n".join(out.lines) + "\n").encode()
