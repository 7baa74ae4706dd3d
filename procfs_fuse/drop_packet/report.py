"""What `cat` prints. Pure: a state in, text out (a FlowTexts passed in only
saves formatting again). The layout is a contract with users' scripts: add
lines, never rename or reorder the existing ones."""
from collections import Counter, defaultdict
from operator import itemgetter

from .commands import FILTERS, MAX_FLOWS
from .flows import PORTED_PROTOCOLS, PROTOCOL_NAMES
from .reasons import hint
from .stages import DROPPED, PATH_ORDER, TABLE


def _setting(value):
    return "*" if value is None else str(value)


def flow_header(flow):
    name = PROTOCOL_NAMES.get(flow.protocol, str(flow.protocol))
    saddr, daddr = flow.addresses
    if flow.protocol in PORTED_PROTOCOLS:
        return "protocol: %s, Source IP: %s, Source Port: %d, Dest IP: %s, Dest Port: %d" % (
            name, saddr, flow.sport, daddr, flow.dport)
    return "protocol: %s, Source IP: %s, Dest IP: %s" % (name, saddr, daddr)


def by_count(items):
    """(reason, location) -> count, most first; ties by name for a stable order."""
    if len(items) == 1:  # most flows' drops: nothing to sort
        return list(items.items())
    return sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))


def verdict(counts, drops, drops_traced):
    """One line a newcomer can act on. counts: {stage: n} of the attached path
    stages; drops: {(reason, location): count} of the flow."""
    if not drops_traced:
        return "unknown: drops are not traced on this kernel"
    stages = [stage for stage in PATH_ORDER if stage in counts]
    return _verdict(stages, [counts[stage] for stage in stages], by_count(drops))


def _verdict(stages, seen, ranked_drops):
    """stages: the measured path stages in PATH_ORDER; seen: their counts;
    ranked_drops: by_count of the flow's drops."""
    dropped = sum(n for _, n in ranked_drops)
    if not dropped:
        return "no drops seen"
    most = max(seen, default=0)
    after = ""
    if most:  # the last stage that saw them all
        after = " after %s" % stages[len(seen) - 1 - seen[::-1].index(most)]
    (reason, location), _n = ranked_drops[0]
    text = "%d of %d lost%s: %s at %s" % (dropped, max(most, dropped), after, reason, location)
    if len(ranked_drops) > 1:
        text += " and %d more" % (len(ranked_drops) - 1)
    why = hint(reason)
    if why:
        text += " (%s)" % why
    return text


def _picker(indexes):
    """counts -> tuple of counts[i] for i in indexes, in C where it can be."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    return lambda counts: tuple(counts[i] for i in indexes)


def _flow_order(item):
    return item[0].sort_key


class _StageLines:
    """The stage lines of one kind of flow (IP version, protocol) as two
    templates, through DROPPED and after it (drop lines go between), so a flow
    costs one format each, not one per stage: `cat` of 10,000 flows."""

    def __init__(self, flow, attached):
        shown = [(row.id, row.name) for row in TABLE if row.applies(flow)]
        cut = next((n + 1 for n, (_i, stage) in enumerate(shown) if stage == DROPPED), len(shown))
        measured = {stage: i for i, stage in shown if stage in attached}
        self.path = tuple(stage for stage in PATH_ORDER if stage in measured)
        self.path_counts = _picker([measured[stage] for stage in self.path])
        self.head = self._template(shown[:cut], attached)
        self.tail = self._template(shown[cut:], attached)

    @staticmethod
    def _template(shown, attached):
        # "-": not measured on this kernel, which is not 0
        text = "\n".join("    %s: %s" % (stage, "%s" if stage in attached else "-") for _i, stage in shown)
        return text, _picker([i for i, stage in shown if stage in attached])


class FlowTexts:
    """Each flow's text from the last render, for the next one: a flow whose
    counts and drops have not changed since is not formatted again (most
    flows of a big table are idle between two reads)."""

    def __init__(self):
        self.attached, self.by_flow = None, {}  # by_flow: {Flow.sort_key: (counts, drops, text, header)}


def _flow_text(header, counts, drops_of_flow, block, drops_traced, no_drops):
    (head, head_pick), (tail, tail_pick) = block.head, block.tail
    text = header + "\n" + head % head_pick(counts)
    if drops_of_flow:
        ranked = by_count(drops_of_flow)
        text += "".join(["\n        %s: %d at %s" % (reason, n, location) for (reason, location), n in ranked])
    if tail:
        text += "\n" + tail % tail_pick(counts)
    if drops_of_flow and drops_traced:
        return text + "\n    verdict: " + _verdict(block.path, block.path_counts(counts), ranked)
    return text + "\n" + no_drops


def flow_drops(drops):
    """{Flow.sort_key (hashed in C; a Flow hashes in Python) or None (unattributed):
    {(reason, location): count}}: plain dicts, which compare in C."""
    by_flow = defaultdict(dict)
    for drop in drops:
        per_flow = by_flow[drop.flow and drop.flow.sort_key]
        where = (drop.reason, drop.location)
        per_flow[where] = per_flow.get(where, 0) + drop.count
    return by_flow


def host_drops(by_flow):
    """Host-wide, like dropwatch's summary: every flow's drops and what could
    not be parsed, {(reason, location): count}."""
    everywhere = Counter()
    for per_flow in by_flow.values():
        everywhere.update(per_flow)
    return everywhere


def attached_stages(hooks):
    return {h.stage for h in hooks or () if h.chosen}


def render(active, filters, max_flows, last_error, hooks, snapshot, texts=None):
    """hooks: [StageHook] of the current or last activation, or None;
    snapshot: the flows, drops and table use to show; texts: a FlowTexts the
    caller keeps from render to render."""
    lines = ["settings:", "  activated: %s" % ("y" if active else "N")]
    lines += ["  %s: %s" % (word, _setting(getattr(filters, field))) for word, field in FILTERS.items()]
    lines.append("  %s: %d" % (MAX_FLOWS, max_flows))
    lines.append("  last-error: %s" % (last_error or "none"))
    lines.append("hooks:")
    if hooks is None:
        lines.append("  (never attached)")
    else:
        lines += ["  %s: %s" % (h.stage, h.describe()) for h in hooks]
    attached = attached_stages(hooks)
    drops_traced = DROPPED in attached

    drops_by_flow = flow_drops(snapshot.drops)

    lines.append("tables:")
    lines += ["  %s: %d of %d, evicted %d" % (t.name, t.held, t.capacity, t.evicted) for t in snapshot.tables]
    if not snapshot.tables:
        lines.append("  (none)")
    lines.append("flows: %d" % len(snapshot.flows))
    if texts is None:
        texts = FlowTexts()
    last = texts.by_flow if texts.attached == attached else {}
    now = {}
    stage_lines = {}  # (IP version, protocol) -> _StageLines
    no_drops = "    verdict: " + verdict({}, {}, drops_traced)
    for flow, counts in sorted(snapshot.flows.items(), key=_flow_order):
        key = flow.sort_key
        counts, drops_of_flow = tuple(counts), drops_by_flow.get(key)
        kept = last.get(key)
        if kept and kept[0] == counts and kept[1] == drops_of_flow:
            text, header = kept[2], kept[3]
        else:
            header = kept[3] if kept else flow_header(flow)
            kind = (flow.saddr.version, flow.protocol)
            block = stage_lines.get(kind) or stage_lines.setdefault(kind, _StageLines(flow, attached))
            text = _flow_text(header, counts, drops_of_flow, block, drops_traced, no_drops)
        now[key] = (counts, drops_of_flow, text, header)
        lines.append(text)
    texts.attached, texts.by_flow = attached, now

    everywhere = host_drops(drops_by_flow)
    lines.append("drops: %s" % (sum(everywhere.values()) if drops_traced or hooks is None else "-"))
    lines.append("  unattributed: %d" % sum(drops_by_flow.get(None, {}).values()))
    lines += ["  %s: %d at %s" % (reason, n, location) for (reason, location), n in by_count(everywhere)]
    return "\n".join(lines) + "\n"
