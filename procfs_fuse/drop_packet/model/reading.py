"""One Reading: what one open of a view shows, built once, in one place, from
the settings, the hooks, a Snapshot of the tables and what user space knows
of the hops (names, device counters). Every view renders it as it is."""
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, Optional

from ..capture.flows import Flow, Hop, Snapshot
from ..capture.settings import Filters
from ..capture.stages import DROPPED, TABLE
from .diagnosis import NO_DROPS, HopName, KindRows, by_count, flow_verdict, unnamed
from .nat import after_nat, placed
from .not_lost import why_not_lost

NO_COUNTS, NO_SITES = (0,) * len(TABLE), {}


def _in_report_order(item):
    """The place of a (Flow, hops) in the report."""
    return item[0].sort_key


class FlowReading(NamedTuple):
    """A flow's path: its hops, each with every stage's count (in id order),
    in the order its first packet passed them; the stage rows each hop shows;
    the drop sites of the hops that dropped some; the verdict; where it was
    translated (NAT) on the way."""
    flow: Flow
    hops: tuple   # ((Hop, counts), ...)
    rows: tuple   # (HopRows, ...): one per hop
    sites: dict   # {Hop: {(reason, location): count}} of the hops that dropped some
    verdict: str
    nats: tuple = ()  # ((index of the hop it comes before, Translation), ...): nat.placed()

    @property
    def drops(self):
        """[((reason, location), count)] over its hops, most first."""
        if len(self.sites) == 1:  # most flows: one hop dropped them
            return by_count(next(iter(self.sites.values())))
        total = defaultdict(int)
        for sites in self.sites.values():
            for site, n in sites.items():
                total[site] += n
        return by_count(total)


class Device(NamedTuple):
    hop: Hop
    name: HopName
    counters: dict  # {counter: change since the counts started}


class NamesByHop(dict):
    """{Hop: HopName}, unnamed() for a hop no name was resolved for."""

    def __missing__(self, hop):
        name = self[hop] = unnamed(hop)
        return name


@dataclass(frozen=True)
class Reading:
    active: bool
    filters: Filters
    max_flows: int
    last_error: Optional[str]
    hooks: Optional[list]  # [StageHook] of the current or last activation; None: never attached
    since: Optional[float] = None  # unix time the counts start from (activation, clear, filter change)
    snapshot: Snapshot = Snapshot()  # the tables as read: flows, drops, table use
    names: dict = field(default_factory=NamesByHop)  # {Hop: HopName}
    devices: list = field(default_factory=list)  # [Device] whose counters moved, by hop
    softnet: dict = field(default_factory=dict)  # {cpu: {counter: change}}: /proc/net/softnet_stat's that moved
    qdiscs: dict = field(default_factory=dict)  # {Hop: its device's root qdisc's kind}, of hops with QDISC_ drops

    @property
    def attached(self):
        """The stages measured."""
        return frozenset(h.stage for h in self.hooks or () if h.chosen)

    @property
    def drops_traced(self):
        return DROPPED in self.attached

    @cached_property
    def flows(self):
        """[FlowReading] in the report's order (Flow.sort_key): made once a
        view asks (a scrape needs only the sums per hop)."""
        attached, drops_traced = self.attached, self.drops_traced
        drops_evicted = any(t.name == "drops" and t.evicted for t in self.tables)
        no_drops = NO_DROPS if drops_traced and not drops_evicted else None  # else each flow's verdict says
        drops_of = {}  # {Flow.sort_key (hashed in C): {Hop: {site: count}}}
        for flow, hop, reason, location, count in self.drops:
            if flow is not None:
                sites = drops_of.setdefault(flow.sort_key, {}).setdefault(hop, {})
                sites[reason, location] = sites.get((reason, location), 0) + count
        kinds = {}  # Flow.kind -> KindRows
        nats_of, names = self.snapshot.nats_of, self.names
        flows = []
        for flow, hops in sorted(self.snapshot.flows.items(), key=_in_report_order):
            rows_of = kinds.get(flow.kind) or kinds.setdefault(flow.kind, KindRows(flow, attached))
            sites = drops_of.get(flow.sort_key, NO_SITES)
            if sites:  # a hop only its drops name (its counts evicted) comes last
                counted = dict(hops)
                hops += tuple((hop, NO_COUNTS) for hop in sites if hop not in counted)
            rows = rows_of.shown(hops)
            nats = placed(hops, nats_of[flow.sort_key]) if flow.sort_key in nats_of else ()
            if no_drops and not sites:
                verdict = no_drops
            else:
                verdict = flow_verdict(hops, rows, sites, names, drops_traced, drops_evicted, flow.daddr,
                                       after_nat(hops, nats) if nats else None, self.qdiscs)
            flows.append(FlowReading(flow, hops, rows, sites, verdict, nats))
        return flows

    @property
    def drops(self):
        """(Drop, ...) as the kernel keeps them, unattributed ones too."""
        return self.snapshot.drops

    @property
    def tables(self):
        """(TableUse, ...)."""
        return self.snapshot.tables

    @cached_property
    def drops_apart(self):
        """({(reason, location, Hop): count} of the drops that are loss, the
        same of those that are not (not_lost.py)); Hop None where unattributed:
        10,000 drops of a flood sum to a few such sites."""
        lost, not_lost = {}, {}
        for flow, hop, reason, location, count in self.drops:
            apart = not_lost if why_not_lost(reason, location, flow.daddr if flow else None) else lost
            apart[reason, location, hop] = apart.get((reason, location, hop), 0) + count
        return lost, not_lost

    @property
    def host_drops(self):
        """Host-wide, like dropwatch's summary: every flow's drops and what could
        not be parsed, but those that are not loss: [((reason, location), count)] most first."""
        return _by_site(self.drops_apart[0])

    @property
    def not_lost_drops(self):
        """Host-wide, the drops that are not loss: [((reason, location), count)] most first."""
        return _by_site(self.drops_apart[1])

    @property
    def unattributed(self):
        """How many drops were of packets that could not be put on a flow."""
        return sum(drop.count for drop in self.drops if drop.flow is None)


def _by_site(at_hops):
    """[((reason, location), count)] of {(reason, location, Hop): count}, most first."""
    sites = defaultdict(int)
    for (reason, location, _hop), count in at_hops.items():
        sites[reason, location] += count
    return by_count(sites)


def reading_of(snapshot, active, filters, max_flows, last_error=None, hooks=None, since=None, names=None,
               devices=None, softnet=None, qdiscs=None):
    """The Reading of a Snapshot. names: {Hop: HopName}; devices: {Hop:
    {counter: change}} of the device counters that moved; softnet: {cpu:
    {counter: change}}; qdiscs: {Hop: root qdisc kind}."""
    names = NamesByHop(names or {})
    changed = [Device(hop, names[hop], counters) for hop, counters in sorted((devices or {}).items())]
    return Reading(active, filters, max_flows, last_error, hooks, since, snapshot, names, changed, softnet or {},
                   qdiscs or {})
