"""drop-packet.json: a Reading as one JSON document, for scripts (jq).
Numbers as numbers, null where the text says "-" or "*". The schema is
versioned: members may be added; a change of meaning or a removal takes a
new "version" (README: "JSON")."""
import json

from ..capture.settings import FILTERS
from ..capture.stages import TABLE
from ..model.diagnosis import HopRows, by_count
from ..model.names import workload_fields

VERSION = 1
NONE = (None,)  # after a hop's counts: what HopRows.shown gives a stage not measured


def _value(value):
    return value if value is None or isinstance(value, int) else str(value)


def _hook(hook):
    chosen = hook.chosen
    return {"attached": chosen.describe() if chosen else None,
            "approximate": bool(chosen and chosen.approximate),
            "skipped": [{"hook": c.describe(), "why": why} for c, why in hook.skipped]}


def _sites(sites):
    return [{"reason": reason, "location": location, "count": n} for (reason, location), n in sites]


def _where(hop, name):
    """A hop's names and numbers; a workload's (pod_namespace, pod; container) where it is one."""
    return {"netns": name.netns, "netns_inode": hop.netns, "dev": name.dev, "ifindex": hop.ifindex or None,
            **workload_fields(name.netns)}


def _hop(hop, counts, rows, sites, name):
    return {**_where(hop, name), "stages": dict(zip(rows.names, rows.shown(counts + NONE))),
            "drops": _sites(by_count(sites)) if sites else []}


def _flow(path, every_row, names):
    flow = path.flow
    summed = tuple(map(sum, zip(*[counts for _hop, counts in path.hops]))) if len(path.hops) > 1 else path.hops[0][1]
    return {"protocol": flow.protocol_name, "protocol_number": flow.protocol, "ip_version": flow.saddr.version,
            "source": flow.source, "source_port": flow.sport if flow.has_ports else None,
            "dest": flow.dest, "dest_port": flow.dport if flow.has_ports else None,
            # summed over the hops, as version 1 always had them; per hop in "hops"
            "stages": dict(zip(every_row.names, every_row.shown(summed + NONE))),
            "drops": _sites(path.drops) if path.sites else [],
            "hops": [_hop(hop, counts, rows, path.sites.get(hop), names[hop])
                     for (hop, counts), rows in zip(path.hops, path.rows)],
            "nat": [_translation(translation, names[translation.hop]) for _n, translation in path.nats],
            "verdict": path.verdict}


def _endpoints(flow):
    return {"source": flow.source, "source_port": flow.sport if flow.has_ports else None,
            "dest": flow.dest, "dest_port": flow.dport if flow.has_ports else None}


def _translation(translation, name):
    """Where a flow was translated (NAT): the hop it was first seen translated at; from, to."""
    return {**_where(translation.hop, name), "from": _endpoints(translation.flow), "to": _endpoints(translation.to)}


def document(reading):
    """The JSON document of a Reading, as Python values."""
    settings = {"activated": reading.active}
    settings.update({field: _value(getattr(reading.filters, field)) for field in FILTERS.values()})
    settings.update(max_flows=reading.max_flows, last_error=reading.last_error)
    everywhere = reading.host_drops
    kinds = {}  # (IP version, protocol) -> HopRows of every stage that applies to such flows

    def every_row(flow):
        kind = (flow.saddr.version, flow.protocol)
        rows = kinds.get(kind)
        if rows is None:
            rows = kinds[kind] = HopRows(tuple(row for row in TABLE if row.applies(flow)), reading.attached)
        return rows
    return {
        "version": VERSION,
        "settings": settings,
        "measurement_start": reading.since,
        "hooks": None if reading.hooks is None else {h.stage: _hook(h) for h in reading.hooks},
        "tables": {t.name: {"held": t.held, "capacity": t.capacity, "evicted": t.evicted} for t in reading.tables},
        "flows": [_flow(path, every_row(path.flow), reading.names) for path in reading.flows],
        "drops": {"total": sum(n for _site, n in everywhere) if reading.drops_traced or reading.hooks is None
                  else None,
                  "unattributed": reading.unattributed,
                  "sites": _sites(everywhere),
                  # freed, but not loss (not_lost.py): apart from the total
                  "not_lost": {"total": sum(n for _site, n in reading.not_lost_drops),
                               "sites": _sites(reading.not_lost_drops)}},
        # what moved since the counts started, while active
        "devices": [dict(_where(device.hop, device.name), **device.counters) for device in reading.devices],
        "softnet": [dict(cpu=cpu, **counters) for cpu, counters in sorted(reading.softnet.items())],
    }


def render(reading):
    # compact: the C encoder (indent would take the pure-Python one, 10 times slower); jq . indents
    # no cycle check: a document of plain values has none (a tenth of the encoding's time)
    return (json.dumps(document(reading), separators=(",", ":"), check_circular=False) + "\n").encode()
