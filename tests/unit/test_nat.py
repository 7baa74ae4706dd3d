"""A flow translated on its way (NAT), rendered as a person reads it: the
translation before the first hop that saw it translated, what it changed,
the verdict's words for a hop after it; text and JSON byte for byte."""
import ipaddress
import json

from procfs_fuse.drop_packet.capture.flows import Drop, Flow, Hop, Snapshot, Translation
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.nat import after_nat, after_words, changes, placed
from procfs_fuse.drop_packet.views import json_view
from tests.unit.test_report import counts, hooks_without_kprobes, reading, render

ip = ipaddress.ip_address
# A -> R -> C; R translates the service 198.18.99.1:80 to C, and masquerades
A, RA, RC, C = Hop(21, 2), Hop(22, 2), Hop(22, 3), Hop(23, 2)
NAMES = {A: HopName("tA", "eth0"), RA: HopName("tR", "ra"), RC: HopName("tR", "rc"), C: HopName("tC", "eth0")}
SENT = Flow(17, ip("198.18.40.1"), 41042, ip("198.18.99.1"), 80)
TRANSLATED = Flow(17, ip("198.18.41.254"), 41042, ip("198.18.41.1"), 7042)
AT_R = Translation(SENT, RC, TRANSLATED)
HOPS = ((A, counts(QUEUE_XMIT=500, SEND_SKB=500)), (RA, counts(ETH_RECV=500, RECV_SKB=500)),
        (RC, counts(QUEUE_XMIT=500, SEND_SKB=500)), (C, counts(ETH_RECV=500, RECV_SKB=500, DROPPED=500)))


def translated_reading():
    drops = (Drop(SENT, C, "NO_SOCKET", "__udp4_lib_rcv+0x4bc", 500),)
    return reading(Snapshot.of_paths({SENT: HOPS}, drops, nats=(AT_R,)), hooks_without_kprobes(), names=NAMES)


def test_what_a_translation_changed_dest_first():
    assert changes(AT_R) == "dest 198.18.99.1:80 -> 198.18.41.1:7042, source 198.18.40.1:41042 -> 198.18.41.254:41042"
    v6 = Translation(Flow(6, ip("2001:2::1"), 5, ip("2001:2::99"), 80), RC, Flow(6, ip("2001:2::1"), 5, ip("2001:2::2"), 8080))
    assert changes(v6) == "dest [2001:2::99]:80 -> [2001:2::2]:8080"
    masqueraded_ping = Translation(Flow(1, ip("198.18.40.1"), 0, ip("198.18.41.1"), 0), RC,
                                   Flow(1, ip("198.18.41.254"), 0, ip("198.18.41.1"), 0))
    assert changes(masqueraded_ping) == "source 198.18.40.1 -> 198.18.41.254"
    assert after_words(AT_R.flow, AT_R.to) == "after NAT to 198.18.41.1:7042"
    assert after_words(masqueraded_ping.flow, masqueraded_ping.to) == "after NAT from 198.18.41.254"


def test_a_translation_goes_before_the_hop_that_first_saw_it_and_marks_the_hops_after():
    assert placed(HOPS, (AT_R,)) == ((2, AT_R),)
    assert placed(HOPS[:2], (AT_R,)) == ((2, AT_R),)  # its hop not shown (a hop filter): after the last
    assert after_nat(HOPS, ((2, AT_R),)) == {RC: "after NAT to 198.18.41.1:7042", C: "after NAT to 198.18.41.1:7042"}


def test_a_dnat_in_the_clients_namespace_then_a_masquerade_are_one_flows():
    """kube-proxy's node: A's own output chain translates the service, R
    masquerades what it forwards: R's record is from what A's translated to."""
    at_a = Translation(SENT, A, Flow(17, ip("198.18.40.1"), 41042, ip("198.18.41.1"), 7042))
    at_r = Translation(at_a.to, RC, TRANSLATED)
    assert Snapshot((), (), nats=(at_r, at_a)).nats_of == {SENT.sort_key: (at_r, at_a)}
    at = placed(HOPS, (at_r, at_a))
    assert at == ((0, at_a), (2, at_r))
    assert changes(at_r) == "source 198.18.40.1:41042 -> 198.18.41.254:41042"
    # the verdict's words: the flow as sent against what the hop sees, not the last step alone
    assert after_nat(HOPS, at)[C] == "after NAT to 198.18.41.1:7042"


def test_a_translated_flow_renders_its_path_and_translation_as_text():
    text = render(translated_reading())
    assert text[text.index("\nflows: ") + 1:text.index("\ndrops: ") + 1] == (
        "flows: 1\n"
        "protocol: UDP, Source IP: 198.18.40.1, Source Port: 41042, Dest IP: 198.18.99.1, Dest Port: 80\n"
        "    hop: netns tA, dev eth0\n"
        "        QUEUE_XMIT: 500\n"
        "        SEND_SKB: 500\n"
        "    hop: netns tR, dev ra\n"
        "        ETH_RECV: 500\n"
        "        GRO_RECV: 0\n"
        "        RECV_SKB: 500\n"
        "    nat: netns tR: dest 198.18.99.1:80 -> 198.18.41.1:7042, source 198.18.40.1:41042 -> 198.18.41.254:41042\n"
        "    hop: netns tR, dev rc\n"
        "        QUEUE_XMIT: 500\n"
        "        SEND_SKB: 500\n"
        "    hop: netns tC, dev eth0\n"
        "        ETH_RECV: 500\n"
        "        GRO_RECV: 0\n"
        "        RECV_SKB: 500\n"
        "        UDP_RCV: 0\n"
        "        DROPPED: 500\n"
        "            NO_SOCKET: 500 at __udp4_lib_rcv+0x4bc\n"
        "    verdict: 500 of 500 lost in netns tC, dev eth0 (after NAT to 198.18.41.1:7042), after RECV_SKB: "
        "NO_SOCKET at __udp4_lib_rcv+0x4bc (nothing listens on that UDP port; see ss -lnu (nstat UdpNoPorts))\n")


def test_a_translated_flow_carries_its_translations_in_json():
    (flow,) = json.loads(json_view.render(translated_reading()))["flows"]
    assert json.dumps(flow["nat"]) == json.dumps([{
        "netns": "tR", "netns_inode": 22, "dev": "rc", "ifindex": 3,
        "from": {"source": "198.18.40.1", "source_port": 41042, "dest": "198.18.99.1", "dest_port": 80},
        "to": {"source": "198.18.41.254", "source_port": 41042, "dest": "198.18.41.1", "dest_port": 7042}}])
    assert flow["verdict"].startswith("500 of 500 lost in netns tC, dev eth0 (after NAT to 198.18.41.1:7042), ")


def test_the_nat_hook_line_says_where_following_is_approximate():
    from procfs_fuse.drop_packet.capture.activation import nat_hook
    from procfs_fuse.drop_packet.capture.conntrack import CONNTRACK, NAT
    from procfs_fuse.drop_packet.capture.hooks import StageHook
    from procfs_fuse.drop_packet.capture.stages import Candidate
    built_in = StageHook(NAT, Candidate(CONNTRACK, "built in", ""))
    assert nat_hook(built_in, hooks_without_kprobes(cgroup_skb=False)).describe() == "conntrack built in"
    assert nat_hook(built_in, hooks_without_kprobes()).describe().startswith(
        "conntrack built in, approximate: a flow translated to a local socket (a redirect) is counted at a "
        "cgroup_skb socket stage as translated")
    none = StageHook(NAT, None, ((Candidate(CONNTRACK, "nf_conn", ""), "conntrack is not loaded"),))
    assert nat_hook(none, hooks_without_kprobes()).describe() == "unavailable (conntrack nf_conn: conntrack is not loaded)"
