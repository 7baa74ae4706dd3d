"""Drops that are not loss: the rule, walked over every reason of two kernels,
and how each view keeps them apart from loss."""
import ipaddress
import json
from pathlib import Path

import pytest

from procfs_fuse.drop_packet.capture.flows import Drop, Flow, Hop, Snapshot
from procfs_fuse.drop_packet.capture.reasons import reason_names
from procfs_fuse.drop_packet.capture.settings import Filters
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.not_lost import why_not_lost
from procfs_fuse.drop_packet.model.reading import reading_of
from procfs_fuse.drop_packet.views import json_view, prometheus as metrics
from tests.support.mounts import parse_report, prometheus_samples
from tests.unit.test_report import counts, hooks_without_kprobes, render

DATA = Path(__file__).parent / "data"
UNICAST, GROUP = ipaddress.ip_address("2001:2::2"), ipaddress.ip_address("ff02::16")


@pytest.mark.parametrize("kernel", ["6.18", "6.1"])
def test_which_reasons_are_not_loss_on_a_kernel(kernel):
    reasons = reason_names((DATA / ("kfree_skb_%s.format" % kernel)).read_text()).values()
    spared = lambda dest, location="ip6_mc_input+0xd4": {r for r in reasons if why_not_lost(r, location, dest)}
    assert spared(UNICAST) == {"OTHERHOST"}  # every other reason is loss, to a host's own address
    assert spared(GROUP) == spared(ipaddress.ip_address("255.255.255.255")) == {"OTHERHOST", "NOT_SPECIFIED"}
    assert spared(None) == {"OTHERHOST"}  # unattributed: no destination to judge by
    # places where a kernel frees again what it counted already
    assert spared(UNICAST, "tbf_enqueue+0x192") == spared(UNICAST, "skb_release_data+0x12a") == {
        "OTHERHOST", "NOT_SPECIFIED"}
    assert why_not_lost("NOT_SPECIFIED", "ip6_mc_input+0xd4", GROUP) == \
        "multicast to ff02::16, no listener here joined the group"


A, B = Hop(11, 2), Hop(12, 3)
MLD = Flow(58, ipaddress.ip_address("fe80::1"), 0, GROUP, 0)
UDP = Flow(17, ipaddress.ip_address("2001:2::1"), 40000, UNICAST, 7777)


def reading():
    flows = {MLD: ((A, counts(QUEUE_XMIT=4, SEND_SKB=4)), (B, counts(ETH_RECV=4, RECV_SKB=4, DROPPED=4))),
             UDP: ((A, counts(QUEUE_XMIT=10, SEND_SKB=10)), (B, counts(ETH_RECV=10, RECV_SKB=10, DROPPED=2)))}
    drops = (Drop(MLD, B, "NOT_SPECIFIED", "ip6_mc_input+0xd4", 4), Drop(UDP, B, "NO_SOCKET", "__udp6_lib_rcv+0x4", 2))
    names = {A: HopName("hnA", "eth0"), B: HopName("hnB", "eth0")}
    return reading_of(Snapshot.of_paths(flows, drops), True, Filters(), 100, None, hooks_without_kprobes(), 1.0,
                      names)


def test_the_views_count_them_apart_from_loss():
    r = reading()
    text = parse_report(render(r))
    udp, mld = text["flows"].values()  # in the report's order: by protocol
    assert mld["drops"] == {"NOT_SPECIFIED at ip6_mc_input+0xd4": 4}  # counted, with its reason
    assert mld["verdict"] == "not lost: multicast to ff02::16, no listener here joined the group"
    assert udp["verdict"].startswith("2 of 10 lost in netns hnB, dev eth0")
    assert text["drops"]["total"] == sum(text["drops"]["lines"].values()) == 2
    assert text["drops"]["not_lost"] == 4 and text["drops"]["not_lost_lines"] == {
        "NOT_SPECIFIED at ip6_mc_input+0xd4": 4}
    doc = json.loads(json_view.render(r))
    assert doc["drops"]["total"] == 2 and doc["drops"]["not_lost"] == {"total": 4, "sites": [
        {"reason": "NOT_SPECIFIED", "location": "ip6_mc_input+0xd4", "count": 4}]}
    assert doc["flows"][1]["verdict"] == mld["verdict"]
    samples = prometheus_samples(metrics.render(r).decode())
    assert samples['drop_packet_not_lost_drops_total{reason="NOT_SPECIFIED",location="ip6_mc_input+0xd4",'
                   'netns="hnB",dev="eth0"}'] == 4
    assert [name for name in samples if name.startswith("drop_packet_drops_total")] == [
        'drop_packet_drops_total{reason="NO_SOCKET",location="__udp6_lib_rcv+0x4",netns="hnB",dev="eth0"}']
