"""drop-packet.prom: the reading in Prometheus' text exposition format, as
node_exporter's textfile collector reads it. Low cardinality: no flow is a
label (a 5-tuple per series would swamp a fleet's Prometheus); counts are
summed over flows per (stage, hop), drops per (reason, location, hop): a
hop is the labels netns and dev, named as the report names them.

Counters start again at 0 when a measurement starts again (activate,
`clear`, a filter change while active): rate() takes a drop as a counter
reset, and drop_packet_measurement_start_seconds says when it happened.
After `deactivate` they stay at the last counts, and drop_packet_active is 0.
"""
from collections import Counter, defaultdict
from itertools import chain, compress, repeat
from operator import add, attrgetter, is_

from .diagnosis import attached_stages, unnamed
from .stages import TABLE

PREFIX = "drop_packet_"
_SITE, _COUNT, _FLOW = attrgetter("reason", "location", "hop"), attrgetter("count"), attrgetter("flow")  # of a Drop


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


def _hop_labels(name):
    return (("netns", name.netns), ("dev", name.dev or "-"))  # pairs: a dict key as well as labels


def render(reading):
    snapshot, attached = reading.snapshot, attached_stages(reading.hooks)
    out = _Exposition()
    out.family("active", "gauge", "1 while the hooks are attached and counting, else 0.",
               [({}, int(reading.active))])
    if reading.since is not None:
        out.family("measurement_start_seconds", "gauge",
                   "Unix time the counters started from: activation, clear or a filter change.",
                   [({}, "%.3f" % reading.since)])
    out.family("stage_hook_info", "gauge", "The hook each measured stage is attached to.",
               [({"stage": h.stage, "hook": h.chosen.describe()}, 1) for h in reading.hooks or () if h.chosen])
    names = reading.names
    hop_labels = lambda hop: _hop_labels(names.get(hop) or unnamed(hop))
    counts_at = defaultdict(list)  # {Hop: [counts of each flow there]}
    for hop, counts in chain.from_iterable(snapshot.flows.values()):  # 20,000 a scrape: two steps each
        counts_at[hop].append(counts)
    totals = {}  # {hop labels: [count per stage]}
    for hop, rows in counts_at.items():
        labels, summed = hop_labels(hop), list(map(sum, zip(*rows)))  # by column, in C
        totals[labels] = list(map(add, totals[labels], summed)) if labels in totals else summed
    measured = [row for row in TABLE if row.name in attached]
    out.family("packets_total", "counter", "Packets of the counted flows seen at each stage of the packet path "
               "(DROPPED: freed as drops), summed over flows, per hop (netns, dev); stages not measured here "
               "have no series.",
               [(dict(stage=row.name, **dict(labels)), totals[labels][row.id])
                for labels in sorted(totals) for row in measured if totals[labels][row.id]])
    out.family("flows", "gauge", "Flows counted.", [({}, len(snapshot.flows))])
    at_site = defaultdict(int)  # {(reason, location, Hop): count}
    for site, n in zip(map(_SITE, snapshot.drops), map(_COUNT, snapshot.drops)):
        at_site[site] += n
    drops = Counter()
    for (reason, location, hop), n in at_site.items():
        drops[(reason, location) + (hop_labels(hop) if hop else (("netns", "-"), ("dev", "-")))] += n
    unattributed = sum(compress(map(_COUNT, snapshot.drops), map(is_, map(_FLOW, snapshot.drops), repeat(None))))
    out.family("drops_total", "counter", "Packets the kernel freed as drops (skb:kfree_skb), by reason, place "
               "and hop, host-wide (unattributed ones included, at netns=\"-\").",
               [(dict(reason=key[0], location=key[1], **dict(key[2:])), n) for key, n in sorted(drops.items())])
    out.family("unattributed_drops_total", "counter", "Drops of packets that could not be put on a flow "
               "(not IP, truncated).", [({}, unattributed)] if reading.hooks else [])
    out.family("device_drops_total", "counter", "Device counters of drops and errors that moved since the counts "
               "started (netlink link statistics), per namespace and device; while active.",
               [(dict(_hop_labels(names.get(hop) or unnamed(hop)), counter=counter), n)
                for hop, counters in sorted(reading.devices.items())
                for counter, n in counters.items()])
    out.family("softnet_total", "counter", "/proc/net/softnet_stat's dropped and time_squeeze that moved since "
               "the counts started, per CPU; while active.",
               [({"cpu": cpu, "counter": counter}, n) for cpu, counters in sorted(reading.softnet.items())
                for counter, n in counters.items()])
    tables = snapshot.tables
    out.family("table_entries", "gauge", "Entries a kernel table holds.",
               [({"table": t.name}, t.held) for t in tables])
    out.family("table_capacity", "gauge", "Entries a kernel table can hold.",
               [({"table": t.name}, t.capacity) for t in tables])
    out.family("table_evictions_total", "counter", "Least recently used entries pushed out to make room.",
               [({"table": t.name}, t.evicted) for t in tables])
    return ("\n".join(out.lines) + "\n").encode()
