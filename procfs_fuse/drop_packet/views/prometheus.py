"""drop-packet.prom: a Reading in Prometheus' text exposition format, as
node_exporter's textfile collector reads it. Low cardinality: no flow is a
label (a 5-tuple per series would swamp a fleet's Prometheus); counts are
summed over flows per (stage, hop), drops per (reason, location, hop): a
hop is the labels netns and dev, named as the report names them.

Counters start again at 0 when a measurement starts again (activate,
`clear`, a filter change while active): rate() takes a drop as a counter
reset, and drop_packet_measurement_start_seconds says when it happened.
After `deactivate` they stay at the last counts, and drop_packet_active is 0.
"""
from operator import add

from ..capture.stages import TABLE

PREFIX = "drop_packet_"
NO_HOP = (("netns", "-"), ("dev", "-"))  # the labels of an unattributed drop


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _family(lines, name, kind, help_text, samples):
    """samples: [(labels dict, value)]; a family without samples is left out."""
    if not samples:
        return
    lines += ["# HELP %s%s %s" % (PREFIX, name, help_text), "# TYPE %s%s %s" % (PREFIX, name, kind)]
    for labels, value in samples:
        text = ",".join('%s="%s"' % (k, _escape(v)) for k, v in labels.items())
        lines.append("%s%s%s %s" % (PREFIX, name, "{%s}" % text if text else "", value))


def _hop_labels(name):
    return (("netns", name.netns), ("dev", name.dev or "-"))  # pairs: a dict key as well as labels


def render(reading):
    lines = []
    _family(lines, "active", "gauge", "1 while the hooks are attached and counting, else 0.",
            [({}, int(reading.active))])
    if reading.since is not None:
        _family(lines, "measurement_start_seconds", "gauge",
                "Unix time the counters started from: activation, clear or a filter change.",
                [({}, "%.3f" % reading.since)])
    _family(lines, "stage_hook_info", "gauge", "The hook each measured stage is attached to.",
            [({"stage": h.stage, "hook": h.chosen.describe()}, 1) for h in reading.hooks or () if h.chosen])
    totals = {}  # {hop labels: [count per stage]}: hops that carry the same labels are one series
    for hop, counts in reading.snapshot.hop_counts().items():
        labels = _hop_labels(reading.names[hop])
        totals[labels] = list(map(add, totals[labels], counts)) if labels in totals else counts
    measured = [row for row in TABLE if row.name in reading.attached]
    _family(lines, "packets_total", "counter", "Packets of the counted flows seen at each stage of the packet path "
            "(DROPPED: freed as drops), summed over flows, per hop (netns, dev); stages not measured here "
            "have no series.",
            [(dict(stage=row.name, **dict(labels)), totals[labels][row.id])
             for labels in sorted(totals) for row in measured if totals[labels][row.id]])
    _family(lines, "flows", "gauge", "Flows counted.", [({}, len({seen.flow.sort_key for seen in reading.snapshot.seen}))])
    drops, not_lost = ({}, {})  # {(reason, location, hop labels...): count}, of loss and of drops not loss
    for by_key, apart in zip((drops, not_lost), reading.drops_apart):
        for (reason, location, hop), n in apart.items():
            key = (reason, location) + (_hop_labels(reading.names[hop]) if hop else NO_HOP)
            by_key[key] = by_key.get(key, 0) + n
    _family(lines, "drops_total", "counter", "Packets the kernel freed as drops (skb:kfree_skb), by reason, place "
            "and hop, host-wide (unattributed ones included, at netns=\"-\"); not those that are not loss.",
            [(dict(reason=key[0], location=key[1], **dict(key[2:])), n) for key, n in sorted(drops.items())])
    _family(lines, "not_lost_drops_total", "counter", "Packets the kernel freed that were not lost: never for "
            "this host (multicast nobody here joined, a frame for another host) or counted already (a GSO "
            "packet cut into segments), by reason, place and hop.",
            [(dict(reason=key[0], location=key[1], **dict(key[2:])), n) for key, n in sorted(not_lost.items())])
    _family(lines, "unattributed_drops_total", "counter", "Drops of packets that could not be put on a flow "
            "(not IP, truncated).", [({}, reading.unattributed)] if reading.hooks else [])
    _family(lines, "device_drops_total", "counter", "Device counters of drops and errors that moved since the "
            "counts started (netlink link statistics), per namespace and device; while active.",
            [(dict(_hop_labels(device.name), counter=counter), n)
             for device in reading.devices for counter, n in device.counters.items()])
    _family(lines, "softnet_total", "counter", "/proc/net/softnet_stat's dropped and time_squeeze that moved since "
            "the counts started, per CPU; while active.",
            [({"cpu": cpu, "counter": counter}, n) for cpu, counters in sorted(reading.softnet.items())
             for counter, n in counters.items()])
    _family(lines, "table_entries", "gauge", "Entries a kernel table holds.",
            [({"table": t.name}, t.held) for t in reading.tables])
    _family(lines, "table_capacity", "gauge", "Entries a kernel table can hold.",
            [({"table": t.name}, t.capacity) for t in reading.tables])
    _family(lines, "table_evictions_total", "counter", "Least recently used entries pushed out to make room.",
            [({"table": t.name}, t.evicted) for t in reading.tables])
    return ("\n".join(lines) + "\n").encode()
