"""drop-packet.json: a Reading as one JSON document, for scripts (jq).
Numbers as numbers, null where the text says "-" or "*". The schema is
versioned: members may be added; a change of meaning or a removal takes a
new "version" (README: "JSON").

The flows (10,000 of them: 8 MB) and the drop sites are written as text,
a flow from formats its hops share, each string by the encoder's own
escaping: building them as dicts for json.dumps took twice as long (217 ->
108-119 ms, measured); the rest is the encoder's. The golden test holds the
document byte for byte to what json.dumps wrote of one dict."""
import json

from ..capture.settings import FILTERS
from ..capture.stages import TABLE
from ..model.diagnosis import HopRows, by_count
from ..model.names import workload_fields

VERSION = 1
# compact: the C encoder (indent would take the pure-Python one, 10 times slower); jq . indents;
# no cycle check: a document of plain values has none
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_string = json.encoder.encode_basestring_ascii  # a str as json.dumps writes it
NULL = ("null",)  # after a hop's counts: what HopRows.shown gives a stage not measured
FLOW = ('{"protocol":%s,"protocol_number":%d,"ip_version":%d,"source":%s,"source_port":%s,"dest":%s,'
        '"dest_port":%s,"stages":%s,"drops":%s,"hops":[%s],"nat":%s,"verdict":%s}')


def _value(value):
    return value if value is None or isinstance(value, int) else str(value)


def _hook(hook):
    chosen = hook.chosen
    return {"attached": chosen.describe() if chosen else None,
            "approximate": bool(chosen and chosen.approximate),
            "skipped": [{"hook": c.describe(), "why": why} for c, why in hook.skipped]}


def _sites(sites):
    """The JSON of [((reason, location), count)]."""
    return "[%s]" % ",".join('{"reason":%s,"location":%s,"count":%d}' % (_string(reason), _string(location), n)
                             for (reason, location), n in sites)


def _where(hop, name):
    """A hop's names and numbers; a workload's (pod_namespace, pod; container) where it is one."""
    return {"netns": name.netns, "netns_inode": hop.netns, "dev": name.dev, "ifindex": hop.ifindex or None,
            **workload_fields(name.netns)}


def _port(flow, port):
    return port if flow.has_ports else "null"


class _Shared:
    """What many flows of one document share, as JSON text made once: a
    hop's opening (its _where and the "stages" member's name), the format of
    a row set's stages object (a %s per row); and the HopRows of every stage
    that applies to a kind of flow (IP version, protocol)."""

    def __init__(self, reading):
        self.names, self._attached = reading.names, reading.attached
        self._openings, self._formats, self._every_row = {}, {}, {}

    def hop_opening(self, hop):
        text = self._openings.get(hop)
        if text is None:
            text = self._openings[hop] = _encode(_where(hop, self.names[hop]))[:-1] + ',"stages":'
        return text

    def stages_format(self, rows):
        text = self._formats.get(rows.names)
        if text is None:
            text = self._formats[rows.names] = "{%s}" % ",".join("%s:%%s" % _string(name) for name in rows.names)
        return text

    def every_row(self, flow):
        rows = self._every_row.get(flow.kind)
        if rows is None:
            rows = self._every_row[flow.kind] = HopRows(tuple(row for row in TABLE if row.applies(flow)),
                                                        self._attached)
        return rows


def _flow(path, shared):
    flow, hops = path.flow, path.hops
    every_row = shared.every_row(flow)
    # summed over the hops, as version 1 always had them; per hop in "hops"
    summed = tuple(map(sum, zip(*[counts for _hop, counts in hops]))) if len(hops) > 1 else hops[0][1]
    hop_texts = []
    for (hop, counts), rows in zip(hops, path.rows):
        sites = path.sites.get(hop)
        hop_texts.append('%s%s,"drops":%s}' % (shared.hop_opening(hop), shared.stages_format(rows) % rows.shown(
            counts + NULL), _sites(by_count(sites)) if sites else "[]"))
    nats = _encode([_translation(translation, shared.names[translation.hop]) for _n, translation in path.nats]) \
        if path.nats else "[]"
    return FLOW % (_string(flow.protocol_name), flow.protocol, flow.saddr.version, _string(flow.source),
                   _port(flow, flow.sport), _string(flow.dest), _port(flow, flow.dport),
                   shared.stages_format(every_row) % every_row.shown(summed + NULL),
                   _sites(path.drops) if path.sites else "[]", ",".join(hop_texts), nats, _string(path.verdict))


def _endpoints(flow):
    return {"source": flow.source, "source_port": flow.sport if flow.has_ports else None,
            "dest": flow.dest, "dest_port": flow.dport if flow.has_ports else None}


def _translation(translation, name):
    """Where a flow was translated (NAT): the hop it was first seen translated at; from, to."""
    return {**_where(translation.hop, name), "from": _endpoints(translation.flow), "to": _endpoints(translation.to)}


def _before_flows(reading):
    settings = {"activated": reading.active}
    settings.update({field: _value(getattr(reading.filters, field)) for field in FILTERS.values()})
    settings.update(max_flows=reading.max_flows, last_error=reading.last_error)
    return {
        "version": VERSION,
        "settings": settings,
        "measurement_start": reading.since,
        "hooks": None if reading.hooks is None else {h.stage: _hook(h) for h in reading.hooks},
        "tables": {t.name: {"held": t.held, "capacity": t.capacity, "evicted": t.evicted} for t in reading.tables},
    }


def _after_flows(reading):
    """The document's members after "flows", and its closing brace."""
    everywhere, not_lost = reading.host_drops, reading.not_lost_drops
    total = sum(n for _site, n in everywhere) if reading.drops_traced or reading.hooks is None else None
    # not_lost: freed, but not loss (not_lost.py): apart from the total
    return '"drops":{"total":%s,"unattributed":%d,"sites":%s,"not_lost":{"total":%d,"sites":%s}},' \
           '"devices":%s,"softnet":%s}' % (
               _encode(total), reading.unattributed, _sites(everywhere), sum(n for _site, n in not_lost),
               _sites(not_lost),
               # what moved since the counts started, while active
               _encode([dict(_where(device.hop, device.name), **device.counters) for device in reading.devices]),
               _encode([dict(cpu=cpu, **counters) for cpu, counters in sorted(reading.softnet.items())]))


def render(reading):
    """The document: its members in this order, as json.dumps would write one dict of them."""
    shared = _Shared(reading)
    flows = ",".join([_flow(path, shared) for path in reading.flows])
    return ('%s,"flows":[%s],%s\n' % (_encode(_before_flows(reading))[:-1], flows, _after_flows(reading))).encode()
