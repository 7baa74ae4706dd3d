"""drop-packet.json: the text report's reading as one JSON document, for
scripts (jq). Numbers as numbers, null where the text says "-" or "*".
The schema is versioned: members may be added; a change of meaning or a
removal takes a new "version" (README: "JSON")."""
import json

from .commands import FILTERS
from .flows import PORTED_PROTOCOLS, PROTOCOL_NAMES
from .diagnosis import (Shape, attached_stages, by_count, drops_by_flow, evicted_drops, flow_verdict, host_drops,
                        merged, shown_hops, unnamed)
from .stages import DROPPED, TABLE

VERSION = 1


def _value(value):
    return value if value is None or isinstance(value, int) else str(value)


def _hook(hook):
    chosen = hook.chosen
    return {"attached": chosen.describe() if chosen else None,
            "approximate": bool(chosen and chosen.approximate),
            "skipped": [{"hook": c.describe(), "why": why} for c, why in hook.skipped]}


def _sites(drops):
    return [{"reason": reason, "location": location, "count": n} for (reason, location), n in by_count(drops)]


def _where(hop, names):
    name = names.get(hop) or unnamed(hop)
    return {"netns": name.netns, "netns_inode": hop.netns, "dev": name.dev, "ifindex": hop.ifindex or None}


def _hop(hop, counts, look, drops, names, attached):
    return dict(_where(hop, names), **{
            "stages": {row.name: counts[row.id] if row.name in attached else None for row in look.rows},
            "drops": _sites(drops or {})})


def _flow(flow, hops, drops, names, attached, drops_traced, drops_evicted, shapes):
    kind = (flow.saddr.version, flow.protocol)
    shape = shapes.get(kind) or shapes.setdefault(kind, Shape(flow, attached))
    shown = shown_hops(shape, hops, drops)
    summed = [sum(column) for column in zip(*(counts for _hop, counts, _rows in shown))] or [0] * len(TABLE)
    ported = flow.protocol in PORTED_PROTOCOLS
    return {"protocol": PROTOCOL_NAMES.get(flow.protocol, str(flow.protocol)), "protocol_number": flow.protocol,
            "ip_version": flow.saddr.version,
            "source": str(flow.saddr), "source_port": flow.sport if ported else None,
            "dest": str(flow.daddr), "dest_port": flow.dport if ported else None,
            # summed over the hops, as version 1 always had them; per hop in "hops"
            "stages": {row.name: summed[row.id] if row.name in attached else None for row in TABLE if row.applies(flow)},
            "drops": _sites(merged(drops or {})),
            "hops": [_hop(hop, counts, rows, (drops or {}).get(hop), names, attached) for hop, counts, rows in shown],
            "verdict": flow_verdict(shown, drops, names, drops_traced, drops_evicted)}


def document(reading):
    """The JSON document of a Reading, as Python values."""
    attached = attached_stages(reading.hooks)
    drops_traced = DROPPED in attached
    by_flow = drops_by_flow(reading.snapshot)
    everywhere = host_drops(reading.snapshot)
    settings = {"activated": reading.active}
    settings.update({field: _value(getattr(reading.filters, field)) for field in FILTERS.values()})
    settings.update(max_flows=reading.max_flows, last_error=reading.last_error)
    flows = sorted(reading.snapshot.flows.items(), key=lambda item: item[0].sort_key)
    shapes = {}  # (IP version, protocol) -> Shape
    drops_evicted = evicted_drops(reading.snapshot)
    return {
        "version": VERSION,
        "settings": settings,
        "measurement_start": reading.since,
        "hooks": None if reading.hooks is None else {h.stage: _hook(h) for h in reading.hooks},
        "tables": {t.name: {"held": t.held, "capacity": t.capacity, "evicted": t.evicted}
                   for t in reading.snapshot.tables},
        "flows": [_flow(flow, hops, by_flow.get(flow.sort_key), reading.names, attached, drops_traced,
                        drops_evicted, shapes)
                  for flow, hops in flows],
        "drops": {"total": sum(everywhere.values()) if drops_traced or reading.hooks is None else None,
                  "unattributed": sum(merged(by_flow.get(None, {})).values()),
                  "sites": _sites(everywhere)},
        # what moved since the counts started, while active
        "devices": [dict(_where(hop, reading.names), **counters) for hop, counters in sorted(reading.devices.items())],
        "softnet": [dict(cpu=cpu, **counters) for cpu, counters in sorted(reading.softnet.items())],
    }


def render(reading):
    # compact: the C encoder (indent would take the pure-Python one, 10 times slower); jq . indents
    return (json.dumps(document(reading), separators=(",", ":")) + "\n").encode()
