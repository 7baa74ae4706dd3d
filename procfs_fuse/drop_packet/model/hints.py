"""What to check for drops of each reason (names as the running kernel's list
has them: capture/reasons.py), and where the place decides the cause."""

# What a newcomer should check, per reason (names as the kernel prints them).
QDISC_DROPPED = "dropped them (queue full or over its rate); see tc -s qdisc"
HINTS = {
    "NOT_SPECIFIED": "the kernel gave no reason; the location says which code freed them",
    "NO_SOCKET": "nothing listens on that port, or the socket is bound elsewhere; see ss -lntu",
    "SOCKET_CLOSE": "the socket was closed with packets still queued for it",
    "SOCKET_FILTER": "a socket filter (BPF or SO_ATTACH_FILTER) of the application rejected them",
    "SOCKET_RCVBUFF": "the application reads too slowly: its receive buffer is full; "
                      "raise SO_RCVBUF / net.core.rmem_max or read faster",
    "SOCKET_BACKLOG": "the socket backlog is full while the socket is busy; "
                      "the application or its lock is too slow",
    "UNIX_DISCONNECT": "a unix socket was disconnected with data queued",
    "UNIX_SKIP_OOB": "a unix socket skipped out-of-band data",
    "PKT_TOO_SMALL": "truncated packets: shorter than their headers say",
    "PKT_TOO_BIG": "packets over the device's or path's MTU; see ip link (mtu) and PMTU discovery",
    "TCP_CSUM": "bad TCP checksums: a broken NIC offload or corruption on the wire",
    "UDP_CSUM": "bad UDP checksums: a broken NIC offload or corruption on the wire",
    "IP_CSUM": "bad IP header checksums: a broken NIC offload or corruption on the wire",
    "ICMP_CSUM": "bad ICMP checksums: corruption on the wire",
    "SKB_CSUM": "the checksum could not be computed or was wrong",
    "NETFILTER_DROP": "a firewall rule drops them; see nft list ruleset / iptables -L",
    "OTHERHOST": "the frame was for another host's MAC address (promiscuous mode or a bridge)",
    "IP_RPFILTER": "reverse-path filter: the source is not routable back through this interface; "
                   "see sysctl net.ipv4.conf.*.rp_filter",
    "UNICAST_IN_L2_MULTICAST": "an IP unicast packet in a link-layer multicast or broadcast frame",
    "XFRM_POLICY": "an IPsec (xfrm) policy refused them; see ip xfrm policy",
    "IP_NOPROTO": "no handler for that IP protocol",
    "IP_INHDR": "malformed IP headers (bad version, length or options)",
    "IP_INADDRERRORS": "an invalid destination address for this host (martian); see rp_filter and routes",
    "IP_INNOROUTES": "no route for them; see ip route (and ip rule) where they arrived",
    "IP_OUTNOROUTES": "no route to send them by; see ip route",
    "IP_LOCAL_SOURCE": "they came in with one of this host's own addresses as source",
    "IP_INVALID_SOURCE": "an invalid source address (multicast, broadcast or martian)",
    "IP_LOCALNET": "a loopback (127/8) address arrived on a device that does not accept it; "
                   "see sysctl net.ipv4.conf.*.route_localnet",
    "IP_INVALID_DEST": "an invalid destination address (such as 0.0.0.0)",
    "IP_TUNNEL_ECN": "a tunnel's ECN bits did not decapsulate cleanly",
    "IPV6DISABLED": "IPv6 is disabled on the device they arrived on; see sysctl net.ipv6.conf.*.disable_ipv6",
    "IPV6_BAD_EXTHDR": "malformed IPv6 extension headers",
    "NEIGH_CREATEFAIL": "no neighbour entry could be made for the next hop; see ip neigh and the gc_thresh sysctls",
    "NEIGH_FAILED": "the next hop's address could not be resolved (ARP/ND failed); see ip neigh",
    "NEIGH_QUEUEFULL": "too many packets waited for address resolution; see ip neigh",
    "NEIGH_DEAD": "the next hop's neighbour entry was being removed",
    "NEIGH_HH_FILLFAIL": "the link-layer header for the next hop could not be built",
    "TC_EGRESS": "a tc filter or action on egress dropped them; see tc -s filter",
    "TC_INGRESS": "a tc filter or action on ingress dropped them; see tc -s filter",
    "SECURITY_HOOK": "a security module (SELinux, AppArmor, a BPF LSM) refused them",
    "QDISC_DROP": "the queueing discipline " + QDISC_DROPPED,
    "CPU_BACKLOG": "the per-CPU input backlog was full; see net.core.netdev_max_backlog",
    "XDP": "an XDP program dropped them; see ip link (xdp) and bpftool net",
    "TAP_FILTER": "a tap device's filter dropped them",
    "TAP_TXFILTER": "a tap device's transmit filter dropped them",
    "TUNNEL_TXINFO": "a tunnel had no metadata to send them with",
    "INVALID_PROTO": "an unknown link-layer protocol",
    "UNHANDLED_PROTO": "no handler for their protocol on this host",
    "NOMEM": "the kernel could not allocate memory for them",
    "PROTO_MEM": "the protocol's memory limit was hit; see sysctl net.ipv4.tcp_mem / udp_mem",
    "PFMEMALLOC": "memory was short: only packets for memory-reclaim sockets were taken",
    "DUP_FRAG": "duplicate IP fragments",
    "FRAG_REASM_TIMEOUT": "IP fragments whose datagram never completed in time; see ipfrag_time",
    "FRAG_TOO_FAR": "IP fragments too far out of order; see net.ipv4.ipfrag_max_dist",
    "DEV_HDR": "the device could not build or read the link-layer header",
    "DEV_READY": "the device was down or not ready; see ip link",
    "FULL_RING": "a device ring was full",
    "HDR_TRUNC": "truncated headers",
    "NO_TX_TARGET": "no device to send them by (a veth whose peer is down, a dead tunnel)",
    "LOCAL_MAC": "the frame's source MAC address is this device's own",
    "ARP_PVLAN_DISABLE": "ARP proxy for a private VLAN is off",
    "MAC_IEEE_MAC_CONTROL": "IEEE 802.3 MAC control frames are not forwarded",
    "MAC_INVALID_SOURCE": "an invalid (multicast or zero) source MAC address",
    "BRIDGE_INGRESS_STP_STATE": "the bridge port is not forwarding (STP state); see bridge link",
    "RECURSION_LIMIT": "the transmit recursion limit was hit: a loop of tunnels or devices",
    "BPF_CGROUP_EGRESS": "a cgroup BPF program refused them on egress; see bpftool cgroup tree",
    "SKB_GSO_SEG": "a large packet could not be segmented",
    "SKB_UCOPY_FAULT": "copying from user space failed",
    "PACKET_SOCK_ERROR": "a packet socket could not take them",
    "QUEUE_PURGE": "a socket was closed with packets in its queues, often its own copies "
                   "kept for retransmission and already sent: not a loss on the wire",
    "TCP_LISTEN_OVERFLOW": "the listen queue is full: accept() faster or raise the backlog / "
                           "net.core.somaxconn; see ss -lnt (Recv-Q against Send-Q), nstat TcpExtListenDrops",
    "TCP_OLD_DATA": "TCP data already received (a retransmission of acknowledged data); "
                    "usually harmless, look for loss on the other direction; nstat TcpExtDelayedACKLost",
    "TCP_ZEROWINDOW": "TCP data for a zero receive window: the application reads too slowly; "
                      "see ss -tm (Recv-Q), nstat TcpExtTCPZeroWindowDrop",
    "TCP_OFO_DROP": "out-of-order TCP data beyond the receive window",
    "TCP_OFO_QUEUE_PRUNE": "out-of-order TCP data pruned for memory",
    "TCP_OFOMERGE": "out-of-order TCP data merged into what was queued: not a loss",
    "TCP_CLOSE": "TCP data for a closed socket",
    "TCP_RESET": "TCP segments for a connection that was reset",
    "TCP_FASTOPEN": "TCP fast open data was refused",
    "TCP_ABORT_ON_DATA": "TCP data after the application closed the socket: the connection is aborted; "
                         "nstat TcpExtTCPAbortOnData",
    "TCP_MINTTL": "TCP segments under the socket's minimum TTL (IP_MINTTL)",
    "TCP_INVALID_SYN": "an unexpected TCP SYN",
}
# Reasons that share a cause share a hint.
HINT_PREFIXES = {
    "QDISC_": "the queueing discipline " + QDISC_DROPPED,
    "FQ_": "the fq qdisc dropped them (a flow or band over its limit, or too far in the future); "
           "see tc -s qdisc",
    "CAKE_": "the cake qdisc dropped them (a flood); see tc -s qdisc",
    "DUALPI2_": "the dualpi2 qdisc dropped them; see tc -s qdisc",
    "TC_": "a tc filter or action dropped them; see tc -s filter",
    "TCP_MD5": "TCP MD5 signatures did not match what the socket expects",
    "TCP_AO": "TCP authentication (TCP-AO) did not match what the socket expects",
    "TCP_AUTH": "TCP authentication headers did not match what the socket expects",
    "TCP_RFC7323_": "TCP timestamps (PAWS) judged them old: duplicates, or a peer that reuses ports fast; "
                    "nstat TcpExtPAWSEstab",
    "TCP_": "TCP judged them out of the connection's state (sequence, ack or flags): "
            "a middlebox, an attack or a connection already gone; see nstat -az TcpExt*",
    "IPV6_NDISC_": "malformed or unexpected IPv6 neighbour discovery messages",
    "VXLAN_": "VXLAN could not take them (header, VNI or forwarding entry); see bridge fdb",
    "CAN": "malformed CAN frames",
    "PSP_": "PSP encryption refused them",
}
# Where the place decides the cause: (reason, function).
PLACE_HINTS = {
    ("IP_INHDR", "ip_forward"): "the TTL ran out while forwarding: a routing loop or a too-small TTL; "
                                "see traceroute and ip route",
    ("IP_INNOROUTES", "ip_error"): "no route while forwarding them; see ip route (and ip rule) on that hop",
    ("NOT_SPECIFIED", "__dev_forward_skb2"): "a veth's peer (or another forwarding device's target) is down "
                                             "or cannot take them; see ip link, and devices: below",
    ("NO_SOCKET", "__udp4_lib_rcv"): "nothing listens on that UDP port; see ss -lnu (nstat UdpNoPorts)",
    ("NO_SOCKET", "__udp6_lib_rcv"): "nothing listens on that UDP port; see ss -lnu (nstat Udp6NoPorts)",
}


def is_qdisc_drop(reason):
    """Whether a queueing discipline dropped them (reasons QDISC_*): the verdict names its kind."""
    return reason.startswith("QDISC_")


def hint(reason, location="", qdisc=None):
    """What to check for drops of this reason at this location ("function+0xoff"), or None.
    qdisc: the kind of the root qdisc of the device they were dropped at, where known."""
    if qdisc and is_qdisc_drop(reason):
        return "the %s qdisc %s" % (qdisc, QDISC_DROPPED)
    found = PLACE_HINTS.get((reason, location.split("+")[0]))
    if found:
        return found
    if reason in HINTS:
        return HINTS[reason]
    for prefix, text in HINT_PREFIXES.items():
        if reason.startswith(prefix):
            return text
    return None
