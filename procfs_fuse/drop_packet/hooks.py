"""Hook planning: for each stage, an ordered list of attach candidates.

The first candidate the running kernel offers wins; the ones skipped before it
are kept with the reason, so the report can say exactly what ran and why.
Pure logic: availability is asked of a function passed in.
"""
from dataclasses import dataclass, field

from .stages import STAGES

KPROBE, TRACEPOINT = "kprobe", "tracepoint"


@dataclass(frozen=True)
class Candidate:
    kind: str      # KPROBE or TRACEPOINT
    target: str    # kernel function, or "category:event"
    function: str  # the stub in bpf/drop_packet.c
    approximate: bool = False  # fires near, not in, the seed's function
    record: bool = False  # a tracepoint stub that reads the event record (offsets from
                          # its tracefs format), not the raw tracepoint's arguments

    def describe(self):
        return "%s %s" % (self.kind, self.target)


# The classic module's kprobe first, then a tracepoint inside that function,
# then a nearby tracepoint that approximates it (README: "How hooks fall back").
CANDIDATES = {
    "ETH_RECV": (
        Candidate(KPROBE, "eth_type_trans", "dp_kp_eth_type_trans"),
        # veth, loopback and non-NAPI drivers call eth_type_trans, then netif_rx
        Candidate(TRACEPOINT, "net:netif_rx", "dp_tp_netif_rx", approximate=True),
    ),
    "GRO_RECV": (
        Candidate(KPROBE, "napi_gro_receive", "dp_kp_napi_gro_receive"),
        Candidate(TRACEPOINT, "net:napi_gro_receive_entry", "dp_tp_napi_gro_receive_entry"),
    ),
    "RECV_SKB": (
        Candidate(KPROBE, "__netif_receive_skb_core", "dp_kp_netif_receive_skb_core"),
        Candidate(TRACEPOINT, "net:netif_receive_skb", "dp_tp_netif_receive_skb"),
    ),
    # No tracepoint fires for every packet these functions take: tcp:tcp_probe
    # skips handshakes and non-established sockets, and 6.x udp_recvmsg copies
    # linear skbs without skb:skb_copy_datagram_iovec. Better "unavailable" than
    # a count that looks like loss.
    "TCP_V4_RCV": (
        Candidate(KPROBE, "tcp_v4_rcv", "dp_kp_tcp_v4_rcv"),
    ),
    "UDP_RCV": (
        Candidate(KPROBE, "udp_rcv", "dp_kp_udp_rcv"),
    ),
    "TCP_V6_RCV": (
        Candidate(KPROBE, "tcp_v6_rcv", "dp_kp_tcp_v6_rcv"),
    ),
    "UDP_V6_RCV": (
        Candidate(KPROBE, "udpv6_rcv", "dp_kp_udpv6_rcv"),
    ),
    "QUEUE_XMIT": (
        Candidate(KPROBE, "dev_queue_xmit", "dp_kp_dev_queue_xmit"),
        # since 5.19 dev_queue_xmit is an inline wrapper of __dev_queue_xmit
        Candidate(KPROBE, "__dev_queue_xmit", "dp_kp_dev_queue_xmit"),
        Candidate(TRACEPOINT, "net:net_dev_queue", "dp_tp_net_dev_queue"),
    ),
    "SEND_SKB": (
        Candidate(TRACEPOINT, "net:net_dev_xmit", "dp_tp_net_dev_xmit"),
    ),
    "RETRANS": (
        Candidate(TRACEPOINT, "tcp:tcp_retransmit_skb", "dp_tp_tcp_retransmit_skb", record=True),
    ),
    "DROPPED": (
        Candidate(TRACEPOINT, "skb:kfree_skb", "dp_tp_kfree_skb", record=True),
    ),
}


@dataclass(frozen=True)
class StageHook:
    stage: str
    chosen: Candidate = None                      # None: unavailable
    skipped: tuple = field(default_factory=tuple)  # ((Candidate, reason), ...)

    def describe(self):
        """One report line's text after "STAGE: "."""
        head = "unavailable"
        if self.chosen:
            head = self.chosen.describe() + (", approximate" if self.chosen.approximate else "")
        if self.skipped:
            head += " (%s)" % "; ".join("%s: %s" % (c.describe(), why) for c, why in self.skipped)
        return head


def plan(why_unavailable):
    """One StageHook per stage, in stage order.

    why_unavailable(candidate) -> None if it is (or was just) attached, else a
    reason. The same walk previews a plan and performs an activation.
    """
    hooks = []
    for stage in STAGES:
        skipped = []
        chosen = None
        for candidate in CANDIDATES[stage]:
            why = why_unavailable(candidate)
            if why is None:
                chosen = candidate
                break
            skipped.append((candidate, why))
        hooks.append(StageHook(stage, chosen, tuple(skipped)))
    return hooks
