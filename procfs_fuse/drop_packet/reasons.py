"""Drop-reason names (from the running kernel) and what to do about each."""
from ..kernel import tracefs
from ..kernel.btf import BTFError

BTF_PREFIX = "SKB_DROP_REASON_"

# What a newcomer should check, per reason (names as the kernel prints them).
HINTS = {
    "NETFILTER_DROP": "a firewall rule drops them; see nft list ruleset / iptables -L",
    "NO_SOCKET": "nothing listens on that port, or the socket is bound elsewhere; see ss -lntu",
    "SOCKET_RCVBUFF": "the application reads too slowly: its receive buffer is full; "
                      "raise SO_RCVBUF / net.core.rmem_max or read faster",
    "SOCKET_BACKLOG": "the socket backlog is full while the socket is busy; "
                      "the application or its lock is too slow",
    "TCP_LISTEN_OVERFLOW": "the listen queue is full: accept() faster or raise the backlog / "
                           "net.core.somaxconn",
    "OTHERHOST": "the frame was for another host's MAC address (promiscuous mode or a bridge)",
    "IP_RPFILTER": "reverse-path filter: the source is not routable back through this interface; "
                   "see sysctl net.ipv4.conf.*.rp_filter",
    "TCP_CSUM": "bad TCP checksums: a broken NIC offload or corruption on the wire",
    "UDP_CSUM": "bad UDP checksums: a broken NIC offload or corruption on the wire",
    "IP_CSUM": "bad IP header checksums: a broken NIC offload or corruption on the wire",
    "NEIGH_FAILED": "the next hop's address could not be resolved (ARP/ND failed); see ip neigh",
    "NEIGH_QUEUEFULL": "too many packets waited for address resolution; see ip neigh",
    "PKT_TOO_SMALL": "truncated packets: shorter than their headers say",
    "IP_INHDR": "malformed IP headers",
    "TCP_OLD_DATA": "TCP data already received (a retransmission of acknowledged data); "
                    "usually harmless, look for loss on the other direction",
    "NOMEM": "the kernel could not allocate memory for them",
    "CPU_BACKLOG": "the per-CPU input backlog was full; see net.core.netdev_max_backlog",
    "NO_ROUTE": "no route to the destination; see ip route",
    "IP_NOPROTO": "no handler for that IP protocol",
    "QUEUE_PURGE": "a socket was closed with packets in its queues, often its own copies "
                   "kept for retransmission and already sent: not a loss on the wire",
}
# Reasons that share a cause share a hint.
HINT_PREFIXES = {
    "QDISC_": "the queueing discipline dropped them (queue full or over its rate); see tc -s qdisc",
    "TC_": "a tc filter or action dropped them; see tc -s filter",
}


def hint(reason):
    if reason in HINTS:
        return HINTS[reason]
    for prefix, text in HINT_PREFIXES.items():
        if reason.startswith(prefix):
            return text
    return None


# What a drop is called on kernels whose kfree_skb has no reason field (before 5.17).
NO_REASON = "NO_REASON_BEFORE_5.17"


def reason_names(kfree_skb_format=None, btf=None):
    """{number: name} of the running kernel's drop reasons: from the kfree_skb
    event's print format, else from the BTF enum skb_drop_reason."""
    if kfree_skb_format:
        if "reason" not in tracefs.parse_fields(kfree_skb_format):
            return {0: NO_REASON}
        names = tracefs.parse_symbolic(kfree_skb_format, "reason")
        if names:
            return names
    if btf is not None:
        try:
            values = btf.enum("skb_drop_reason")
        except BTFError:
            return {}
        return {v: k[len(BTF_PREFIX):] for k, v in values.items() if k.startswith(BTF_PREFIX)}
    return {}


def reason_name(names, number):
    return names.get(number, "REASON_%d" % number)
