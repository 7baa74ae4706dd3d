"""What a read of the kernel's tables gives, as plain values: flows, the hops
they were seen at, their stage counts and drops, and how full each table is."""
import ipaddress
from dataclasses import dataclass
from functools import cached_property
from operator import add, itemgetter
from typing import NamedTuple, Optional

PROTOCOL_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
PORTED_PROTOCOLS = (6, 17)


@dataclass(frozen=True)
class Flow:
    __slots__ = ("protocol", "saddr", "sport", "daddr", "dport", "sort_key", "kind", "source", "dest", "has_ports",
                 "protocol_name", "_hash")
    protocol: int
    saddr: object  # ipaddress.IPv4Address | IPv6Address
    sport: int
    daddr: object
    dport: int

    def __post_init__(self):
        # the report's order, (protocol, IP version, saddr, sport, daddr, dport), as one bytes:
        # 10,000 flows sort and hash in C
        sort_key = (bytes((self.protocol, self.saddr.version)) + self.saddr.packed + self.sport.to_bytes(2, "big")
                    + self.daddr.packed + self.dport.to_bytes(2, "big"))
        object.__setattr__(self, "sort_key", sort_key)
        object.__setattr__(self, "kind", (self.saddr.version, self.protocol))  # which stages it can reach
        # what every view writes of it, made once: the decoder keeps a Flow per kernel key across reads
        object.__setattr__(self, "source", str(self.saddr))
        object.__setattr__(self, "dest", str(self.daddr))
        object.__setattr__(self, "has_ports", self.protocol in PORTED_PROTOCOLS)
        object.__setattr__(self, "protocol_name", PROTOCOL_NAMES.get(self.protocol, str(self.protocol)))
        object.__setattr__(self, "_hash", hash(sort_key))

    def __hash__(self):
        return self._hash


class Hop(NamedTuple):
    """Where a flow was seen: a network namespace (its inode) and a device in
    it (its ifindex; 0: none, a drop at a socket or a retransmission)."""
    netns: int
    ifindex: int


def address_from_key(family_is_v6, raw16):
    raw = bytes(raw16)
    return ipaddress.IPv6Address(raw) if family_is_v6 else ipaddress.IPv4Address(raw[:4])


class Drop(NamedTuple):
    """A (flow, hop, reason, location)'s drops."""
    flow: Optional[Flow]  # None: the packet could not be parsed (unattributed)
    hop: Optional[Hop]    # None with flow None
    reason: str
    location: str         # "function+0xoff"
    count: int


@dataclass(frozen=True)
class TableUse:
    name: str
    held: int
    capacity: int
    evicted: int  # least recently used entries pushed out to make room


def earliest(a, b):
    """The earlier of two first-seen times, 0 being none."""
    return a if not b or (a and a < b) else b


class Translation(NamedTuple):
    """A flow translated (NAT) at a hop, by a conntrack entry: recorded where
    it was first seen translated; the flow is counted as sent at every hop."""
    flow: Flow  # as its sender sent it
    hop: Hop    # where it was first seen translated
    to: Flow    # as translated


class Seen(NamedTuple):
    """One (flow, hop) entry of the kernel's tables (a slot or the flow table)."""
    first_seen: int  # bpf_ktime_get_ns() when the kernel made it: the hops' order on a flow's path
    flow: Flow
    hop: Hop
    counts: tuple    # one per stage, in id order


@dataclass(frozen=True)
class Snapshot:
    """What one read of the kernel's tables gives: every (flow, hop) entry, the
    drops, and how full each table is. `flows` groups the entries by flow
    when a view asks (a scrape needs only their sums per hop)."""
    seen: tuple = ()    # (Seen, ...)
    drops: tuple = ()   # (Drop, ...)
    tables: tuple = ()  # (TableUse, ...)
    nats: tuple = ()    # (Translation, ...)

    @classmethod
    def of_paths(cls, paths, drops=(), tables=(), nats=()):
        """The Snapshot of {Flow: ((Hop, counts), ...)}, each flow's hops in path order."""
        return cls(tuple(Seen(n, flow, hop, counts) for flow, hops in paths.items()
                         for n, (hop, counts) in enumerate(hops)), tuple(drops), tuple(tables), tuple(nats))

    @cached_property
    def flows(self):
        """{Flow: ((Hop, counts), ...)}: each flow's hops in path order (by first
        seen, then hop: two CPUs may tie on the time); a hop in the table and
        in slots once, its counts summed."""
        grouped = {}  # Flow.sort_key (hashed in C, where a Flow hashes in Python) -> (Flow, {Hop: Seen})
        for seen in self.seen:
            at_flow = grouped.get(seen.flow.sort_key)
            if at_flow is None:
                grouped[seen.flow.sort_key] = (seen.flow, {seen.hop: seen})
            elif seen.hop in at_flow[1]:
                was = at_flow[1][seen.hop]
                at_flow[1][seen.hop] = Seen(earliest(was.first_seen, seen.first_seen), seen.flow, seen.hop,
                                            tuple(map(add, was.counts, seen.counts)))
            else:
                at_flow[1][seen.hop] = seen
        return {flow: tuple(map(_HOP_AND_COUNTS, sorted(hops.values()))) for flow, hops in grouped.values()}

    @cached_property
    def nats_of(self):
        """{Flow.sort_key: (Translation, ...)} of the flows translated, each
        under the flow as its first sender sent it: a translation from what
        another translated to (a DNAT in the client's namespace, then a
        masquerade on a router) is the same flow's, as the kernel side
        follows it (dp_follow_nat)."""
        sent_as = {translation.to: translation.flow for translation in self.nats}
        found = {}
        for translation in self.nats:
            origin, followed = translation.flow, {translation.to}
            while origin in sent_as and origin not in followed:
                followed.add(origin)
                origin = sent_as[origin]
            found.setdefault(origin.sort_key, []).append(translation)
        return {key: tuple(translations) for key, translations in found.items()}

    def hop_counts(self):
        """{Hop: [count per stage]}, summed over the flows seen there."""
        at_hop = {}  # {Hop: [counts of each entry there]}: summed column by column, in C
        for _first, _flow, hop, counts in self.seen:
            at_hop.setdefault(hop, []).append(counts)
        return {hop: list(map(sum, zip(*rows))) for hop, rows in at_hop.items()}


_HOP_AND_COUNTS = itemgetter(2, 3)  # of a Seen
