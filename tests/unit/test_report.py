import ipaddress
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from procfs_fuse.drop_packet.capture.flows import Drop, Flow, Hop, Snapshot, TableUse
from procfs_fuse.drop_packet.capture.settings import Filters, Netns
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.reading import reading_of
from procfs_fuse.drop_packet.capture.hooks import plan
from procfs_fuse.drop_packet.model.diagnosis import by_count, verdict
from procfs_fuse.drop_packet.views import text
from procfs_fuse.drop_packet.capture.stages import CGROUP_SKB, KPROBE, STAGES

A, B = ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")


def hooks_without_kprobes(cgroup_skb=True):
    """As on this project's kernel: no kprobes, tracepoint fallbacks, and the
    socket stages on cgroup_skb (or, cgroup_skb=False, unavailable)."""
    why = {KPROBE: "kprobes not supported", CGROUP_SKB: None if cgroup_skb else "attach failed: EPERM"}
    return plan(lambda c: why.get(c.kind))


def counts(**by_stage):
    return tuple(by_stage.get(stage, 0) for stage in STAGES)


def reading(snapshot, hooks=None, active=True, filters=Filters(), max_flows=100, last_error=None, names=None,
            devices=None, softnet=None):
    return reading_of(snapshot, active, filters, max_flows, last_error, hooks, names=NAMES if names is None else names,
                      devices=devices, softnet=softnet)


def render(reading):
    return text.render(reading).decode()


# The routed host: A -> R (forwarding) -> C, and a loopback host L.
VA, VRA, VRC, VC, LO = Hop(11, 2), Hop(12, 2), Hop(12, 3), Hop(13, 2), Hop(14, 1)
NAMES = {VA: HopName("mhA", "vA"), VRA: HopName("mhR", "vRa"), VRC: HopName("mhR", "vRc"),
         VC: HopName("mhC", "vC"), LO: HopName("host", "lo")}
SETTINGS = ("settings:\n"
            "  activated: y\n"
            "  source-addr: *\n"
            "  source-port: *\n"
            "  dest-addr: *\n"
            "  dest-port: *\n"
            "  netns: *\n"
            "  dev: *\n"
            "  max-flows: 100\n"
            "  last-error: none\n")


def test_inactive_never_attached():
    assert render(reading(Snapshot(), active=False, max_flows=16384)) == (
        SETTINGS.replace("activated: y", "activated: N").replace("max-flows: 100", "max-flows: 16384") +
        "hooks:\n"
        "  (never attached)\n"
        "tables:\n"
        "  (none)\n"
        "flows: 0\n"
        "drops: 0\n"
        "  unattributed: 0\n"
        "devices:\n"
        "  (read while active)\n")


def test_a_routed_flow_shows_each_hop_its_stages_and_the_hop_that_lost_them():
    udp = Flow(17, ipaddress.ip_address("198.18.7.1"), 40007, ipaddress.ip_address("198.18.8.1"), 7007)
    hops = ((VA, counts(QUEUE_XMIT=1000, SEND_SKB=1000)),
            (VRA, counts(ETH_RECV=1000, RECV_SKB=1000, DROPPED=250)),
            (VRC, counts(QUEUE_XMIT=750, SEND_SKB=750)),
            (VC, counts(ETH_RECV=750, RECV_SKB=750)))
    drops = (Drop(udp, VRA, "NETFILTER_DROP", "nft_do_chain+0x46f", 250),
             Drop(None, None, "NOT_SPECIFIED", "skb_release+0x10", 3))
    tables = (TableUse("flows", 4, 100, 0), TableUse("drops", 2, 4096, 0))
    text = render(reading(Snapshot.of_paths({udp: hops}, drops, tables), hooks_without_kprobes(cgroup_skb=False),
                          filters=Filters(netns=Netns(12, "mhR")),
                          devices={VRC: {"tx_dropped": 7, "tx_fifo_errors": 1}, VA: {"rx_missed_errors": 2}},
                          softnet={1: {"dropped": 3, "time_squeeze": 12}}))
    assert text == (SETTINGS.replace("netns: *", "netns: mhR") +
        "hooks:\n"
        "  ETH_RECV: tracepoint net:netif_rx, approximate (kprobe eth_type_trans: kprobes not supported)\n"
        "  GRO_RECV: tracepoint net:napi_gro_receive_entry (kprobe napi_gro_receive: kprobes not supported)\n"
        "  RECV_SKB: tracepoint net:netif_receive_skb (kprobe __netif_receive_skb_core: kprobes not supported)\n"
        "  TCP_V4_RCV: unavailable (kprobe tcp_v4_rcv: kprobes not supported; cgroup_skb ingress: attach failed: EPERM)\n"
        "  UDP_RCV: unavailable (kprobe udp_rcv: kprobes not supported; cgroup_skb ingress: attach failed: EPERM)\n"
        "  TCP_V6_RCV: unavailable (kprobe tcp_v6_rcv: kprobes not supported; cgroup_skb ingress: attach failed: EPERM)\n"
        "  UDP_V6_RCV: unavailable (kprobe udpv6_rcv: kprobes not supported; cgroup_skb ingress: attach failed: EPERM)\n"
        "  QUEUE_XMIT: tracepoint net:net_dev_queue (kprobe dev_queue_xmit: kprobes not supported; "
        "kprobe __dev_queue_xmit: kprobes not supported)\n"
        "  SEND_SKB: tracepoint net:net_dev_xmit\n"
        "  RETRANS: tracepoint tcp:tcp_retransmit_skb\n"
        "  DROPPED: tracepoint skb:kfree_skb\n"
        "tables:\n"
        "  flows: 4 of 100, evicted 0 (an entry per flow per hop)\n"
        "  drops: 2 of 4096, evicted 0\n"
        "flows: 1\n"
        "protocol: UDP, Source IP: 198.18.7.1, Source Port: 40007, Dest IP: 198.18.8.1, Dest Port: 7007\n"
        "    hop: netns mhA, dev vA\n"
        "        QUEUE_XMIT: 1000\n"
        "        SEND_SKB: 1000\n"
        "    hop: netns mhR, dev vRa\n"
        "        ETH_RECV: 1000\n"
        "        GRO_RECV: 0\n"
        "        RECV_SKB: 1000\n"
        "        DROPPED: 250\n"
        "            NETFILTER_DROP: 250 at nft_do_chain+0x46f\n"
        "    hop: netns mhR, dev vRc\n"
        "        QUEUE_XMIT: 750\n"
        "        SEND_SKB: 750\n"
        "    hop: netns mhC, dev vC\n"
        "        ETH_RECV: 750\n"
        "        GRO_RECV: 0\n"
        "        RECV_SKB: 750\n"
        "        UDP_RCV: -\n"
        "    verdict: 250 of 1000 lost in netns mhR, dev vRa, after RECV_SKB: NETFILTER_DROP at nft_do_chain+0x46f "
        "(a firewall rule drops them; see nft list ruleset / iptables -L)\n"
        "drops: 253\n"
        "  unattributed: 3\n"
        "  NETFILTER_DROP: 250 at nft_do_chain+0x46f\n"
        "  NOT_SPECIFIED: 3 at skb_release+0x10\n"
        "devices:\n"
        "  netns mhA, dev vA: rx_missed_errors 2\n"
        "  netns mhR, dev vRc: tx_dropped 7, tx_fifo_errors 1\n"
        "  cpu 1: dropped 3, time_squeeze 12\n")


def test_loopback_is_one_hop_with_both_sides_and_events_show_where_they_happened():
    tcp6 = Flow(6, ipaddress.ip_address("2001:2::1"), 5000, ipaddress.ip_address("2001:2::2"), 80)
    icmp = Flow(1, B, 0, A, 0)
    no_device = Hop(14, 0)  # the socket's namespace: a retransmission has no device yet
    snapshot = Snapshot.of_paths({
        tcp6: ((no_device, counts(RETRANS=2)), (LO, counts(ETH_RECV=10, RECV_SKB=10, TCP_V6_RCV=10, QUEUE_XMIT=10,
                                                          SEND_SKB=10))),
        icmp: ((LO, counts(ETH_RECV=1, RECV_SKB=1, QUEUE_XMIT=1, SEND_SKB=1)),)})
    text = render(reading(snapshot, hooks_without_kprobes()))
    assert text.split("flows: 2\n")[1] == (
        "protocol: ICMP, Source IP: 198.18.0.2, Dest IP: 198.18.0.1\n"
        "    hop: netns host, dev lo\n"
        "        ETH_RECV: 1\n"
        "        GRO_RECV: 0\n"
        "        RECV_SKB: 1\n"
        "        QUEUE_XMIT: 1\n"
        "        SEND_SKB: 1\n"
        "    verdict: no drops seen\n"
        "protocol: TCP, Source IP: 2001:2::1, Source Port: 5000, Dest IP: 2001:2::2, Dest Port: 80\n"
        "    hop: netns net:[14], dev -\n"
        "        RETRANS: 2\n"
        "    hop: netns host, dev lo\n"
        "        ETH_RECV: 10\n"
        "        GRO_RECV: 0\n"
        "        RECV_SKB: 10\n"
        "        TCP_V6_RCV: 10\n"
        "        QUEUE_XMIT: 10\n"
        "        SEND_SKB: 10\n"
        "    verdict: no drops seen\n"
        "drops: 0\n"
        "  unattributed: 0\n"
        "devices:\n"
        "  (no change since the counts started)\n")


def at(name, stages, drops, qdisc=None):
    """A hop as verdict() takes it: where, its path stages' names and counts, its drops most
    first, the kind of its device's root qdisc."""
    return (name, tuple(stages), tuple(stages.values()), by_count(drops), qdisc)


def verdict_of(stages, drops, qdisc=None):
    """The verdict of a flow seen at one hop."""
    return verdict(max(stages.values(), default=0), [at(HopName("host", "lo"), stages, drops, qdisc)], True)


def test_verdict_names_the_last_stage_that_saw_everything():
    sent = {"QUEUE_XMIT": 1000, "SEND_SKB": 900, "ETH_RECV": 900, "RECV_SKB": 900}
    assert verdict_of(sent, Counter({("QDISC_DROP", "tbf_enqueue+0x1"): 100})) == (
        "100 of 1000 lost in netns host, dev lo, after QUEUE_XMIT: QDISC_DROP at tbf_enqueue+0x1 "
        "(the queueing discipline dropped them (queue full or over its rate); see tc -s qdisc)")


def test_the_verdict_names_the_qdisc_that_dropped_where_its_kind_is_known():
    sent = {"QUEUE_XMIT": 1000, "SEND_SKB": 900}
    assert verdict_of(sent, Counter({("QDISC_DROP", "__dev_queue_xmit+0xdd1"): 100}), "tbf") == (
        "100 of 1000 lost in netns host, dev lo, after QUEUE_XMIT: QDISC_DROP at __dev_queue_xmit+0xdd1 "
        "(the tbf qdisc dropped them (queue full or over its rate); see tc -s qdisc)")
    # another reason at that hop keeps its own hint
    assert verdict_of({"RECV_SKB": 10}, Counter({("NO_SOCKET", "__udp4_lib_rcv+0x1"): 10}), "tbf").endswith(
        "(nothing listens on that UDP port; see ss -lnu (nstat UdpNoPorts))")


def test_verdict_with_several_reasons_and_unknown_ones():
    drops = Counter({("SOCKET_RCVBUFF", "sock_queue_rcv_skb+0x1"): 7, ("WEIRD_NEW_REASON", "f+0x2"): 3})
    assert verdict_of({"RECV_SKB": 10}, drops) == (
        "10 of 10 lost in netns host, dev lo, after RECV_SKB: SOCKET_RCVBUFF at sock_queue_rcv_skb+0x1 "
        "and 1 more (the application reads too slowly: its receive buffer is full; "
        "raise SO_RCVBUF / net.core.rmem_max or read faster)")
    assert verdict_of({}, Counter({("WEIRD_NEW_REASON", "f+0x2"): 3})) == (
        "3 of 3 lost in netns host, dev lo: WEIRD_NEW_REASON at f+0x2 (no hint is known for WEIRD_NEW_REASON)")
    assert verdict(0, [], False) == "unknown: drops are not traced on this kernel"


def test_the_verdict_counts_what_the_first_hop_saw_and_names_the_hop_that_dropped_most():
    hops = [at(HopName("mhA", "vA"), {"QUEUE_XMIT": 200, "SEND_SKB": 200}, {}),
            at(HopName("mhR", "vRa"), {"ETH_RECV": 200, "RECV_SKB": 200}, {("IP_INHDR", "ip_forward+0x1c4"): 200})]
    assert verdict(200, [hop for hop in hops if hop[3]], True) == (
        "200 of 200 lost in netns mhR, dev vRa, after RECV_SKB: IP_INHDR at ip_forward+0x1c4 "
        "(the TTL ran out while forwarding: a routing loop or a too-small TTL; see traceroute and ip route)")


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


def test_dropped_packets_whose_drop_entries_were_evicted_say_so_in_the_verdict():
    udp = Flow(17, A, 40000, B, 7000)
    sent = ((VA, counts(QUEUE_XMIT=5, SEND_SKB=5)), (VC, counts(ETH_RECV=5, RECV_SKB=5, DROPPED=5)))
    evicted = (TableUse("drops", 4096, 4096, 12),)
    text = render(reading(Snapshot.of_paths({udp: sent}, (), evicted), hooks_without_kprobes()))
    assert ("    verdict: 5 of 5 lost in netns mhC, dev vC, after RECV_SKB: reason not kept "
            "(the drops table evicted it: see tables:)\n") in text
    # nothing evicted: DROPPED ahead of its drop entries is a read between the two adds
    assert "    verdict: no drops seen\n" in render(reading(Snapshot.of_paths({udp: sent}, (), ()), hooks_without_kprobes()))
