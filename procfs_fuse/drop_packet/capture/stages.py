"""THE stage table: one row per stage of bpf/drop_packet.h's enum dp_stage.

A row says how the stage is hooked (its attach candidates, best first), where
it sits on a packet's path, which flows can reach it, and which event-record
fields its stub reads; the rows' order is the report's. Ids come from the
header (the one source C and Python share). A new stage is its enum line, its
C stub and one row here; the hook plan, the report and the tests follow.
"""
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Tuple

BPF_DIR = Path(__file__).resolve().parents[3] / "bpf"
SHARED_HEADER = BPF_DIR / "drop_packet.h"
PROGRAM = BPF_DIR / "drop_packet.c"

KPROBE, TRACEPOINT, CGROUP_SKB = "kprobe", "tracepoint", "cgroup_skb"
SEND, RECEIVE = "send", "receive"  # where on a packet's path a stage is
TCP, UDP = 6, 17


@dataclass(frozen=True)
class Record:
    """Event-record fields a tracepoint stub reads, at offsets from the
    event's tracefs format: -D PREFIX_FIELD=offset for each; an event that
    lacks a needed field gets none, and its stub is not compiled."""
    prefix: str
    needed: Tuple[str, ...]
    optional: Tuple[str, ...] = ()  # -1 where this kernel lacks them


@dataclass(frozen=True)
class Candidate:
    kind: str      # KPROBE or TRACEPOINT
    target: str    # kernel function, or "category:event"
    function: str  # the stub in bpf/drop_packet.c
    approximate: bool = False  # fires near, not in, the seed's function
    record: Optional[Record] = None  # a tracepoint stub that reads the event record,
                                     # not the raw tracepoint's arguments
    sees: str = ""  # what an approximate hook counts, where that needs saying

    def describe(self):
        return "%s %s" % (self.kind, self.target)


@dataclass(frozen=True)
class Stage:
    name: str
    candidates: Tuple[Candidate, ...]
    path: Optional[str] = None  # SEND or RECEIVE; None: an event, not a place on the path
    version: Optional[int] = None   # the only IP version that reaches it, if one
    protocol: Optional[int] = None  # the only IP protocol that reaches it, if one
    id: int = -1  # DP_STAGE_<name>, from the header: its counter's index

    def applies(self, flow):
        return ((self.version is None or self.version == flow.saddr.version)
                and (self.protocol is None or self.protocol == flow.protocol))


def kprobe(function, stub):
    return Candidate(KPROBE, function, stub)


def tracepoint(event, stub, **kw):
    return Candidate(TRACEPOINT, event, stub, **kw)


# cgroup_skb ingress on the cgroup v2 root: every packet that found its
# socket, in the transport's own receive path (sk_filter_trim_cap); those that
# die before the socket lookup (NO_SOCKET, bad checksums) are not counted
# here, their drops are. One program serves the four socket stages (it counts
# each packet at its version's and protocol's): the plan's candidates that
# are equal are attached once.
AT_SOCKET = Candidate(CGROUP_SKB, "ingress", "dp_cg_socket", approximate=True, sees="packets that found a socket")


# The classic module's kprobe first, then a tracepoint inside that function,
# then a nearby tracepoint that approximates it (README: "How hooks fall back").
# TCP_V4_RCV .. UDP_V6_RCV have no tracepoint that fires for every packet they
# take: tcp:tcp_probe skips handshakes and non-established sockets, and 6.x
# udp_recvmsg copies linear skbs without skb:skb_copy_datagram_iovec. A
# cgroup_skb program sees what found a socket: better that, said so, than a
# count that looks like loss.
ROWS = (
    Stage("ETH_RECV", path=RECEIVE, candidates=(
        kprobe("eth_type_trans", "dp_kp_eth_type_trans"),
        # veth, loopback and non-NAPI drivers call eth_type_trans, then netif_rx
        tracepoint("net:netif_rx", "dp_tp_netif_rx", approximate=True))),
    Stage("GRO_RECV", path=RECEIVE, candidates=(
        kprobe("napi_gro_receive", "dp_kp_napi_gro_receive"),
        tracepoint("net:napi_gro_receive_entry", "dp_tp_napi_gro_receive_entry"))),
    Stage("RECV_SKB", path=RECEIVE, candidates=(
        kprobe("__netif_receive_skb_core", "dp_kp_netif_receive_skb_core"),
        tracepoint("net:netif_receive_skb", "dp_tp_netif_receive_skb"))),
    Stage("TCP_V4_RCV", path=RECEIVE, version=4, protocol=TCP, candidates=(
        kprobe("tcp_v4_rcv", "dp_kp_tcp_v4_rcv"), AT_SOCKET)),
    Stage("UDP_RCV", path=RECEIVE, version=4, protocol=UDP, candidates=(
        kprobe("udp_rcv", "dp_kp_udp_rcv"), AT_SOCKET)),
    Stage("TCP_V6_RCV", path=RECEIVE, version=6, protocol=TCP, candidates=(
        kprobe("tcp_v6_rcv", "dp_kp_tcp_v6_rcv"), AT_SOCKET)),
    Stage("UDP_V6_RCV", path=RECEIVE, version=6, protocol=UDP, candidates=(
        kprobe("udpv6_rcv", "dp_kp_udpv6_rcv"), AT_SOCKET)),
    Stage("QUEUE_XMIT", path=SEND, candidates=(
        kprobe("dev_queue_xmit", "dp_kp_dev_queue_xmit"),
        # since 5.19 dev_queue_xmit is an inline wrapper of __dev_queue_xmit
        kprobe("__dev_queue_xmit", "dp_kp_dev_queue_xmit"),
        tracepoint("net:net_dev_queue", "dp_tp_net_dev_queue"))),
    Stage("SEND_SKB", path=SEND, candidates=(
        tracepoint("net:net_dev_xmit", "dp_tp_net_dev_xmit"),)),
    Stage("RETRANS", protocol=TCP, candidates=(
        tracepoint("tcp:tcp_retransmit_skb", "dp_tp_tcp_retransmit_skb",
                   record=Record("DP_RETRANS", ("sport", "dport", "saddr", "daddr"),
                                 ("family", "saddr_v6", "daddr_v6", "skaddr", "skbaddr", "err"))),)),
    Stage("DROPPED", candidates=(
        tracepoint("skb:kfree_skb", "dp_tp_kfree_skb",
                   record=Record("DP_KFREE_SKB", ("skbaddr", "location"), ("reason", "rx_sk"))),)),
)
DROPPED = "DROPPED"

_ENUM = re.compile(r"enum dp_stage \{(.*?)\};", re.S)
_ENUMERATOR = re.compile(r"DP_STAGE_(\w+)\s*=\s*(\d+)")


def parse_stages(header_text):
    """Stage names in id order; ids must be 0..n-1 and DP_NR_STAGES must be n."""
    body = _ENUM.search(header_text)
    if not body:
        raise ValueError("no enum dp_stage in header")
    pairs = [(int(v), name) for name, v in _ENUMERATOR.findall(body.group(1))]
    pairs.sort()
    if [v for v, _ in pairs] != list(range(len(pairs))):
        raise ValueError("stage ids are not 0..n-1")
    total = re.search(r"DP_NR_STAGES\s*=\s*(\d+)", body.group(1))
    if not total or int(total.group(1)) != len(pairs):
        raise ValueError("DP_NR_STAGES does not match the stage count")
    return tuple(name for _, name in pairs)


def with_ids(names, rows):
    """The rows, each with its id from the header's names (in id order); each
    header stage needs exactly one row and each row a header stage."""
    found = [row.name for row in rows]
    if len(set(found)) != len(found) or set(found) != set(names):
        raise ValueError("stage rows %s do not match the header's stages %s" % (sorted(found), sorted(names)))
    return tuple(replace(row, id=names.index(row.name)) for row in rows)


STAGES = parse_stages(SHARED_HEADER.read_text())  # names in id order: the counters' order
TABLE = with_ids(STAGES, ROWS)                    # the rows, in report order
BY_NAME = {row.name: row for row in TABLE}
# The order a packet meets the stages when both ends are on this host: the send
# side, then the receive side, each in the table's order.
PATH_ORDER = tuple(row.name for side in (SEND, RECEIVE) for row in TABLE if row.path == side)
RECORDS = {c.target: c.record for row in TABLE for c in row.candidates if c.record}  # event -> Record
