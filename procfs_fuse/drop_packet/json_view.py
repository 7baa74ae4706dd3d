"""drop-packet.json: the text report's reading as one JSON document, for
scripts (jq). Numbers as numbers, null where the text says "-" or "*".
The schema is versioned: members may be added; a change of meaning or a
removal takes a new "version" (README: "JSON")."""
import json

from .commands import FILTERS
from .flows import PORTED_PROTOCOLS, PROTOCOL_NAMES
from .report import attached_stages, by_count, flow_drops, host_drops, verdict
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


def _flow(flow, counts, drops, attached, drops_traced):
    stages = {row.name: counts[row.id] if row.name in attached else None for row in TABLE if row.applies(flow)}
    ported = flow.protocol in PORTED_PROTOCOLS
    return {"protocol": PROTOCOL_NAMES.get(flow.protocol, str(flow.protocol)), "protocol_number": flow.protocol,
            "ip_version": flow.saddr.version,
            "source": str(flow.saddr), "source_port": flow.sport if ported else None,
            "dest": str(flow.daddr), "dest_port": flow.dport if ported else None,
            "stages": stages, "drops": _sites(drops or {}),
            "verdict": verdict({s: n for s, n in stages.items() if n is not None}, drops or {}, drops_traced)}


def document(reading):
    """The JSON document of a Reading, as Python values."""
    attached = attached_stages(reading.hooks)
    drops_traced = DROPPED in attached
    by_flow = flow_drops(reading.snapshot.drops)
    everywhere = host_drops(by_flow)
    settings = {"activated": reading.active}
    settings.update({field: _value(getattr(reading.filters, field)) for field in FILTERS.values()})
    settings.update(max_flows=reading.max_flows, last_error=reading.last_error)
    flows = sorted(reading.snapshot.flows.items(), key=lambda item: item[0].sort_key)
    return {
        "version": VERSION,
        "settings": settings,
        "measurement_start": reading.since,
        "hooks": None if reading.hooks is None else {h.stage: _hook(h) for h in reading.hooks},
        "tables": {t.name: {"held": t.held, "capacity": t.capacity, "evicted": t.evicted}
                   for t in reading.snapshot.tables},
        "flows": [_flow(flow, counts, by_flow.get(flow.sort_key), attached, drops_traced) for flow, counts in flows],
        "drops": {"total": sum(everywhere.values()) if drops_traced or reading.hooks is None else None,
                  "unattributed": sum(by_flow.get(None, {}).values()),
                  "sites": _sites(everywhere)},
    }


def render(reading):
    return (json.dumps(document(reading), indent=1) + "\n").encode()
