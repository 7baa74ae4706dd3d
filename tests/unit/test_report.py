import ipaddress
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from procfs_fuse.drop_packet.flows import Drop, Filters, Flow, Snapshot, TableUse
from procfs_fuse.drop_packet.hooks import plan
from procfs_fuse.drop_packet.reasons import HINT_PREFIXES, HINTS
from procfs_fuse.drop_packet.report import FlowTexts, render, verdict
from procfs_fuse.drop_packet.stages import CGROUP_SKB, KPROBE, STAGES

A, B = ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")


def hooks_without_kprobes(cgroup_skb=True):
    """As on this project's kernel: no kprobes, tracepoint fallbacks, and the
    socket stages on cgroup_skb (or, cgroup_skb=False, unavailable)."""
    why = {KPROBE: "kprobes not supported", CGROUP_SKB: None if cgroup_skb else "attach failed: EPERM"}
    return plan(lambda c: why.get(c.kind))


def counts(**by_stage):
    return [by_stage.get(stage, 0) for stage in STAGES]


def test_inactive_never_attached():
    assert render(False, Filters(), 16384, None, None, Snapshot()) == (
        "settings:\n"
        "  activated: N\n"
        "  source-addr: *\n"
        "  source-port: *\n"
        "  dest-addr: *\n"
        "  dest-port: *\n"
        "  max-flows: 16384\n"
        "  last-error: none\n"
        "hooks:\n"
        "  (never attached)\n"
        "tables:\n"
        "  (none)\n"
        "flows: 0\n"
        "drops: 0\n"
        "  unattributed: 0\n")


def test_active_with_flows_drops_filters_and_error():
    udp = Flow(17, A, 40000, B, 7777)
    tcp6 = Flow(6, ipaddress.ip_address("2001:2::1"), 5000, ipaddress.ip_address("2001:2::2"), 80)
    icmp = Flow(1, B, 0, A, 0)
    flows = {
        udp: counts(ETH_RECV=2000, RECV_SKB=2000, QUEUE_XMIT=2000, SEND_SKB=2000, DROPPED=500),
        tcp6: counts(ETH_RECV=10, RECV_SKB=10, QUEUE_XMIT=10, SEND_SKB=10, RETRANS=2),
        icmp: counts(ETH_RECV=1, RECV_SKB=1, QUEUE_XMIT=1, SEND_SKB=1),
    }
    drops = (Drop(udp, "NETFILTER_DROP", "nft_do_chain+0x4c4", 500),
             Drop(None, "NOT_SPECIFIED", "skb_release+0x10", 3))
    filters = Filters(dest_addr=B, source_port=40000)
    tables = (TableUse("flows", 3, 100, 7), TableUse("drops", 2, 4096, 0))
    text = render(True, filters, 100, "bad port '70000': want 0..65535", hooks_without_kprobes(),
                  Snapshot(flows, drops, tables))
    assert text == (
        "settings:\n"
        "  activated: y\n"
        "  source-addr: *\n"
        "  source-port: 40000\n"
        "  dest-addr: 198.18.0.2\n"
        "  dest-port: *\n"
        "  max-flows: 100\n"
        "  last-error: bad port '70000': want 0..65535\n"
        "hooks:\n"
        "  ETH_RECV: tracepoint net:netif_rx, approximate (kprobe eth_type_trans: kprobes not supported)\n"
        "  GRO_RECV: tracepoint net:napi_gro_receive_entry (kprobe napi_gro_receive: kprobes not supported)\n"
        "  RECV_SKB: tracepoint net:netif_receive_skb (kprobe __netif_receive_skb_core: kprobes not supported)\n"
        "  TCP_V4_RCV: cgroup_skb ingress, approximate: packets that found a socket "
        "(kprobe tcp_v4_rcv: kprobes not supported)\n"
        "  UDP_RCV: cgroup_skb ingress, approximate: packets that found a socket "
        "(kprobe udp_rcv: kprobes not supported)\n"
        "  TCP_V6_RCV: cgroup_skb ingress, approximate: packets that found a socket "
        "(kprobe tcp_v6_rcv: kprobes not supported)\n"
        "  UDP_V6_RCV: cgroup_skb ingress, approximate: packets that found a socket "
        "(kprobe udpv6_rcv: kprobes not supported)\n"
        "  QUEUE_XMIT: tracepoint net:net_dev_queue (kprobe dev_queue_xmit: kprobes not supported; "
        "kprobe __dev_queue_xmit: kprobes not supported)\n"
        "  SEND_SKB: tracepoint net:net_dev_xmit\n"
        "  RETRANS: tracepoint tcp:tcp_retransmit_skb\n"
        "  DROPPED: tracepoint skb:kfree_skb\n"
        "tables:\n"
        "  flows: 3 of 100, evicted 7\n"
        "  drops: 2 of 4096, evicted 0\n"
        "flows: 3\n"
        "protocol: ICMP, Source IP: 198.18.0.2, Dest IP: 198.18.0.1\n"
        "    ETH_RECV: 1\n"
        "    GRO_RECV: 0\n"
        "    RECV_SKB: 1\n"
        "    QUEUE_XMIT: 1\n"
        "    SEND_SKB: 1\n"
        "    DROPPED: 0\n"
        "    verdict: no drops seen\n"
        "protocol: TCP, Source IP: 2001:2::1, Source Port: 5000, Dest IP: 2001:2::2, Dest Port: 80\n"
        "    ETH_RECV: 10\n"
        "    GRO_RECV: 0\n"
        "    RECV_SKB: 10\n"
        "    TCP_V6_RCV: 0\n"
        "    QUEUE_XMIT: 10\n"
        "    SEND_SKB: 10\n"
        "    RETRANS: 2\n"
        "    DROPPED: 0\n"
        "    verdict: no drops seen\n"
        "protocol: UDP, Source IP: 198.18.0.1, Source Port: 40000, Dest IP: 198.18.0.2, Dest Port: 7777\n"
        "    ETH_RECV: 2000\n"
        "    GRO_RECV: 0\n"
        "    RECV_SKB: 2000\n"
        "    UDP_RCV: 0\n"
        "    QUEUE_XMIT: 2000\n"
        "    SEND_SKB: 2000\n"
        "    DROPPED: 500\n"
        "        NETFILTER_DROP: 500 at nft_do_chain+0x4c4\n"
        "    verdict: 500 of 2000 lost after RECV_SKB: NETFILTER_DROP at nft_do_chain+0x4c4 "
        "(a firewall rule drops them; see nft list ruleset / iptables -L)\n"
        "drops: 503\n"
        "  unattributed: 3\n"
        "  NETFILTER_DROP: 500 at nft_do_chain+0x4c4\n"
        "  NOT_SPECIFIED: 3 at skb_release+0x10\n")


def test_a_flows_kept_text_serves_only_while_its_counts_drops_and_hooks_stay():
    udp, tcp = Flow(17, A, 40000, B, 7777), Flow(6, A, 40001, B, 80)
    sent = counts(QUEUE_XMIT=5, SEND_SKB=5)
    tracing, untraced = hooks_without_kprobes(), [h for h in hooks_without_kprobes() if h.stage != "DROPPED"]
    steps = [
        (tracing, Snapshot({udp: sent, tcp: counts(SEND_SKB=2)})),
        (tracing, Snapshot({udp: sent, tcp: counts(SEND_SKB=3)})),  # one flow moved on
        (tracing, Snapshot({udp: sent, tcp: counts(SEND_SKB=3)}, (Drop(udp, "NO_SOCKET", "f+0x1", 1),))),
        (tracing, Snapshot({udp: sent, tcp: counts(SEND_SKB=3)}, (Drop(udp, "NO_SOCKET", "f+0x1", 2),))),
        (untraced, Snapshot({udp: sent, tcp: counts(SEND_SKB=3)})),  # another activation's hooks
        (untraced, Snapshot({udp: sent})),
    ]
    texts = FlowTexts()
    for hooks, snapshot in steps:
        assert render(True, Filters(), 100, None, hooks, snapshot, texts) == \
            render(True, Filters(), 100, None, hooks, snapshot)
    sent[STAGES.index("SEND_SKB")] += 1  # a caller's list changed in place: its text must not stay
    assert render(True, Filters(), 100, None, untraced, Snapshot({udp: sent}), texts) == \
        render(True, Filters(), 100, None, untraced, Snapshot({udp: sent}))


def test_verdict_names_the_last_stage_that_saw_everything():
    sent = {"QUEUE_XMIT": 1000, "SEND_SKB": 900, "ETH_RECV": 900, "RECV_SKB": 900}
    assert verdict(sent, Counter({("QDISC_DROP", "tbf_enqueue+0x1"): 100}), True) == (
        "100 of 1000 lost after QUEUE_XMIT: QDISC_DROP at tbf_enqueue+0x1 "
        "(the queueing discipline dropped them (queue full or over its rate); see tc -s qdisc)")


def test_verdict_with_several_reasons_and_unknown_ones():
    drops = Counter({("SOCKET_RCVBUFF", "sock_queue_rcv_skb+0x1"): 7, ("WEIRD_NEW_REASON", "f+0x2"): 3})
    assert verdict({"RECV_SKB": 10}, drops, True) == (
        "10 of 10 lost after RECV_SKB: SOCKET_RCVBUFF at sock_queue_rcv_skb+0x1 and 1 more "
        "(the application reads too slowly: its receive buffer is full; "
        "raise SO_RCVBUF / net.core.rmem_max or read faster)")
    assert verdict({}, Counter({("WEIRD_NEW_REASON", "f+0x2"): 3}), True) == (
        "3 of 3 lost: WEIRD_NEW_REASON at f+0x2")
    assert verdict({}, Counter(), False) == "unknown: drops are not traced on this kernel"


def test_every_hinted_reason_gets_its_hint_in_the_verdict():
    reasons = list(HINTS) + [prefix + "DROP" for prefix in HINT_PREFIXES]
    for reason in reasons:
        text = verdict({"RECV_SKB": 4}, Counter({(reason, "f+0x1"): 1}), True)
        expected_hint = HINTS.get(reason) or HINT_PREFIXES[reason.split("_")[0] + "_"]
        assert text == "1 of 4 lost after RECV_SKB: %s at f+0x1 (%s)" % (reason, expected_hint)
    for required in ("NETFILTER_DROP", "NO_SOCKET", "SOCKET_RCVBUFF", "SOCKET_BACKLOG",
                     "TCP_LISTEN_OVERFLOW", "QDISC_DROP", "OTHERHOST", "IP_RPFILTER", "TCP_CSUM",
                     "UDP_CSUM", "IP_CSUM", "NEIGH_FAILED", "PKT_TOO_SMALL", "IP_INHDR",
                     "TCP_OLD_DATA", "NOMEM"):
        assert "(" in verdict({}, Counter({(required, "f+0x1"): 1}), True), required


v4, v6 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address), st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
flows = st.one_of(*(st.builds(Flow, st.sampled_from([1, 6, 17, 58]), version, st.integers(0, 65535), version,
                              st.integers(0, 65535)) for version in (v4, v6)))


@settings(max_examples=300, deadline=None)
@given(st.lists(flows, max_size=30))
def test_flows_are_listed_by_protocol_version_source_then_dest(some):
    # sort_key is one bytes for speed; it must order as the fields do
    by_fields = sorted(some, key=lambda f: (f.protocol, f.saddr.version, f.saddr.packed, f.sport,
                                            f.daddr.packed, f.dport))
    assert sorted(some, key=lambda f: f.sort_key) == by_fields
