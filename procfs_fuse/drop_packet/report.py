"""What `cat` prints. Pure: a state in, text out. The layout is a contract
with users' scripts: add lines, never rename or reorder the existing ones."""
from collections import Counter, defaultdict
from functools import lru_cache
from operator import attrgetter, itemgetter

from .commands import FILTERS, MAX_FLOWS
from .flows import PORTED_PROTOCOLS, PROTOCOL_NAMES
from .reasons import hint
from .stages import STAGES

TCP, UDP = 6, 17
# Stages that only some flows can reach: stage -> (IP version or None, protocol).
STAGE_SCOPE = {"TCP_V4_RCV": (4, TCP), "UDP_RCV": (4, UDP), "TCP_V6_RCV": (6, TCP),
               "UDP_V6_RCV": (6, UDP), "RETRANS": (None, TCP)}
# The order a packet meets the stages when both ends are on this host.
PATH_ORDER = ("QUEUE_XMIT", "SEND_SKB", "ETH_RECV", "GRO_RECV", "RECV_SKB",
              "TCP_V4_RCV", "UDP_RCV", "TCP_V6_RCV", "UDP_V6_RCV")
DROPPED = "DROPPED"


def _setting(value):
    return "*" if value is None else str(value)


def _applies(stage, flow):
    version, protocol = STAGE_SCOPE.get(stage, (None, None))
    return (version is None or version == flow.saddr.version) and (protocol is None or protocol == flow.protocol)


@lru_cache(maxsize=1 << 16)  # Flows outlive a read (the tracer keeps one per key): format each once
def flow_header(flow):
    name = PROTOCOL_NAMES.get(flow.protocol, str(flow.protocol))
    saddr, daddr = flow.addresses
    if flow.protocol in PORTED_PROTOCOLS:
        return "protocol: %s, Source IP: %s, Source Port: %d, Dest IP: %s, Dest Port: %d" % (
            name, saddr, flow.sport, daddr, flow.dport)
    return "protocol: %s, Source IP: %s, Dest IP: %s" % (name, saddr, daddr)


def _by_count(items):
    """(reason, location) -> count, most first; ties by name for a stable order."""
    return sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))


def verdict(counts, drops, drops_traced):
    """One line a newcomer can act on. counts: {stage: n} of the attached path
    stages; drops: Counter of (reason, location) for the flow."""
    if not drops_traced:
        return "unknown: drops are not traced on this kernel"
    return _verdict([(stage, counts[stage]) for stage in PATH_ORDER if stage in counts], _by_count(drops))


def _verdict(path, ranked_drops):
    """path: [(stage, n)] in PATH_ORDER; ranked_drops: _by_count of the flow's drops."""
    dropped = sum(n for _, n in ranked_drops)
    if not dropped:
        return "no drops seen"
    seen = max((n for _, n in path), default=0)
    after = next((stage for stage, n in reversed(path) if n == seen), None) if seen else None
    (reason, location), _n = ranked_drops[0]
    text = "%d of %d lost%s: %s at %s" % (dropped, max(seen, dropped),
                                         " after %s" % after if after else "", reason, location)
    if len(ranked_drops) > 1:
        text += " and %d more" % (len(ranked_drops) - 1)
    why = hint(reason)
    if why:
        text += " (%s)" % why
    return text


_sort_key = attrgetter("sort_key")


class _StageLines:
    """The stage lines of one kind of flow (IP version, protocol) as two
    templates, through DROPPED and after it (drop lines go between), so a flow
    costs one format each, not one per stage: `cat` of 10,000 flows."""

    def __init__(self, flow, attached):
        shown = [(i, stage) for i, stage in enumerate(STAGES) if _applies(stage, flow)]
        cut = next((n + 1 for n, (_i, stage) in enumerate(shown) if stage == DROPPED), len(shown))
        measured = {stage: i for i, stage in shown if stage in attached}
        self.path = [(measured[stage], stage) for stage in PATH_ORDER if stage in measured]
        self.head = self._template(shown[:cut], attached)
        self.tail = self._template(shown[cut:], attached)

    @staticmethod
    def _template(shown, attached):
        # "-": not measured on this kernel, which is not 0
        text = "\n".join("    %s: %s" % (stage, "%s" if stage in attached else "-") for _i, stage in shown)
        indexes = [i for i, stage in shown if stage in attached]
        if len(indexes) > 1:
            return text, itemgetter(*indexes)
        return text, lambda counts: tuple(counts[i] for i in indexes)


def render(active, filters, max_flows, last_error, hooks, snapshot):
    """hooks: [StageHook] of the current or last activation, or None;
    snapshot: the flows, drops and table use to show."""
    lines = ["settings:", "  activated: %s" % ("y" if active else "N")]
    lines += ["  %s: %s" % (word, _setting(getattr(filters, field))) for word, field in FILTERS.items()]
    lines.append("  %s: %d" % (MAX_FLOWS, max_flows))
    lines.append("  last-error: %s" % (last_error or "none"))
    lines.append("hooks:")
    if hooks is None:
        lines.append("  (never attached)")
    else:
        lines += ["  %s: %s" % (h.stage, h.describe()) for h in hooks]
    attached = {h.stage for h in hooks or () if h.chosen}
    drops_traced = DROPPED in attached

    drops_by_flow = defaultdict(Counter)
    for drop in snapshot.drops:
        drops_by_flow[drop.flow][(drop.reason, drop.location)] += drop.count

    lines.append("tables:")
    lines += ["  %s: %d of %d, evicted %d" % (t.name, t.held, t.capacity, t.evicted) for t in snapshot.tables]
    if not snapshot.tables:
        lines.append("  (none)")
    lines.append("flows: %d" % len(snapshot.flows))
    stage_lines = {}  # (IP version, protocol) -> _StageLines
    no_drops = "    verdict: " + verdict({}, Counter(), drops_traced)
    for flow in sorted(snapshot.flows, key=_sort_key):
        lines.append(flow_header(flow))
        kind = (flow.saddr.version, flow.protocol)
        block = stage_lines.get(kind) or stage_lines.setdefault(kind, _StageLines(flow, attached))
        counts, flow_drops = snapshot.flows[flow], drops_by_flow.get(flow)
        (head, head_pick), (tail, tail_pick) = block.head, block.tail
        lines.append(head % head_pick(counts))
        if flow_drops:
            ranked = _by_count(flow_drops)
            lines += ["        %s: %d at %s" % (reason, n, location) for (reason, location), n in ranked]
        if tail:
            lines.append(tail % tail_pick(counts))
        if flow_drops and drops_traced:
            lines.append("    verdict: " + _verdict([(stage, counts[i]) for i, stage in block.path], ranked))
        else:
            lines.append(no_drops)

    # host-wide, like dropwatch's summary: every flow, and what could not be parsed
    everywhere = Counter()
    for per_flow in drops_by_flow.values():
        everywhere.update(per_flow)
    lines.append("drops: %s" % (sum(everywhere.values()) if drops_traced or hooks is None else "-"))
    lines.append("  unattributed: %d" % sum(drops_by_flow.get(None, Counter()).values()))
    lines += ["  %s: %d at %s" % (reason, n, location) for (reason, location), n in _by_count(everywhere)]
    return "\n".join(lines) + "\n"
