"""What `cat` prints. Pure: a state in, text out. The layout is a contract
with users' scripts: add lines, never rename or reorder the existing ones."""
from .commands import FILTERS
from .flows import PROTOCOL_NAMES
from .stages import STAGES


def _setting(value):
    return "*" if value is None else str(value)


def render(active, filters, last_error, hooks, flows):
    """hooks: [StageHook] of the current or last activation, or None;
    flows: {Flow: [count per stage]}."""
    lines = ["settings:", "  activated: %s" % ("y" if active else "N")]
    lines += ["  %s: %s" % (word, _setting(getattr(filters, field))) for word, field in FILTERS.items()]
    lines.append("  last-error: %s" % (last_error or "none"))
    lines.append("hooks:")
    if hooks is None:
        lines.append("  (never attached)")
    else:
        lines += ["  %s: %s" % (h.stage, h.describe()) for h in hooks]
    attached = {h.stage for h in hooks or () if h.chosen}
    lines.append("flows: %d" % len(flows))
    for flow in sorted(flows, key=lambda f: f.sort_key):
        lines.append("protocol: %s, Source IP: %s, Source Port: %d, Dest IP: %s, Dest Port: %d" % (
            PROTOCOL_NAMES.get(flow.protocol, str(flow.protocol)), flow.saddr, flow.sport,
            flow.daddr, flow.dport))
        counts = flows[flow]
        # "-" for a stage nothing counted: not measured is not zero
        lines += ["    %s: %s" % (stage, counts[i] if stage in attached else "-")
                  for i, stage in enumerate(STAGES)]
    return "\n".join(lines) + "\n"
