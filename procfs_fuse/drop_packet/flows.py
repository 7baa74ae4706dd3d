"""The Python side of a flow and of the filters: plain values, no kernel."""
import ipaddress
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

DEFAULT_MAX_FLOWS = 16384
MAX_MAX_FLOWS = 1 << 20   # a million flows: about 0.3 GB of kernel memory on 2 CPUs
PROTOCOL_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
PORTED_PROTOCOLS = (6, 17)


@dataclass(frozen=True)
class Flow:
    # slots: a `cat` reads sort_key of 10,000 Flows made over time, scattered in
    # memory: one object each to reach, not two (measured: see layouts.Layout)
    __slots__ = ("protocol", "saddr", "sport", "daddr", "dport", "sort_key", "_hash")
    protocol: int
    saddr: object  # ipaddress.IPv4Address | IPv6Address
    sport: int
    daddr: object
    dport: int

    def __post_init__(self):
        # sort_key orders as (protocol, IP version, saddr, sport, daddr, dport)
        # would, as one bytes: sorting and hashing 10,000 flows run in C. Made
        # once per Flow: tables.Decoder keeps a Flow per kernel key across reads.
        sort_key = (bytes((self.protocol, self.saddr.version)) + self.saddr.packed + self.sport.to_bytes(2, "big")
                    + self.daddr.packed + self.dport.to_bytes(2, "big"))
        object.__setattr__(self, "sort_key", sort_key)
        object.__setattr__(self, "_hash", hash(sort_key))

    def __hash__(self):
        return self._hash

    @property
    def addresses(self):
        """(source, dest) as text."""
        return str(self.saddr), str(self.daddr)


class Hop(NamedTuple):
    """Where a flow was seen: a network namespace (its inode) and a device in
    it (its ifindex; 0: none, a drop at a socket or a retransmission). A
    tuple: hashed and compared in C, 20,000 times a `cat`."""
    netns: int
    ifindex: int


@dataclass(frozen=True)
class HopName:
    """A Hop as a person knows it (names.py): `ip netns` name, a process in
    it, or net:[inode]; the device's name, None where there is none or it is gone."""
    netns: str
    dev: Optional[str]


@dataclass(frozen=True)
class Netns:
    """A namespace filter: the inode the kernel compares, the name it was given by."""
    inode: int
    name: str

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Filters:
    source_addr: Optional[object] = None
    source_port: Optional[int] = None
    dest_addr: Optional[object] = None
    dest_port: Optional[int] = None
    netns: Optional[Netns] = None
    dev: Optional[str] = None    # device name, in any namespace

    @property
    def any_set(self):
        return any(v is not None for v in (self.source_addr, self.source_port,
                                           self.dest_addr, self.dest_port, self.netns, self.dev))


def address_from_key(family_is_v6, raw16):
    raw = bytes(raw16)
    return ipaddress.IPv6Address(raw) if family_is_v6 else ipaddress.IPv4Address(raw[:4])


class Drop(NamedTuple):
    """A (flow, hop, reason, location)'s drops. A tuple: 10,000 made a `cat`, made in C."""
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


@dataclass(frozen=True)
class Snapshot:
    """What one read of the kernel's tables gives."""
    # {Flow: ((Hop, (count per stage)), ...)}: its hops in the order its first packet passed them
    flows: dict = field(default_factory=dict)
    drops: tuple = ()                          # (Drop, ...)
    tables: tuple = ()                         # (TableUse, ...)
    drops_by_flow: Optional[dict] = None       # diagnosis.flow_drops(drops), where the decoder made it
    drops_by_site: Optional[dict] = None       # diagnosis.host_drops' sums, where the decoder made them
    # The same object (is) in two snapshots whose flows are the same, in the same order, each with
    # the same Hop objects in the same order, and whose drops are at the same sites: the decoder's
    # layouts, kept while the tables' keys stay (a render keeps its plan while it stays); None: not known
    structure: object = None


@dataclass(frozen=True)
class Reading:
    """What one open of a view shows: the settings, the hooks, one Snapshot."""
    active: bool
    filters: Filters
    max_flows: int
    last_error: Optional[str]
    hooks: Optional[list]  # [StageHook] of the current or last activation; None: never attached
    snapshot: Snapshot
    since: Optional[float] = None  # unix time the counts start from (activation, clear, filter change)
    names: dict = field(default_factory=dict)  # {Hop: HopName} of the snapshot's hops and devices (names.py)
    devices: dict = field(default_factory=dict)  # {Hop: {counter: change}}: device counters that moved (devices.py)
    softnet: dict = field(default_factory=dict)  # {cpu: {counter: change}}: /proc/net/softnet_stat's that moved
