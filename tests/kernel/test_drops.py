"""Where and why packets die: drops made on purpose in the test hosts, found
with the exact count, reason and place."""
import json

import pytest

from tests.kernel.conftest import SAME_ON_EVERY_KERNEL, report, send_udp, write
from tests.support.mounts import flow_header
from tests.support.netns import QUIET_SECONDS

pytestmark = pytest.mark.root



def only_drops(flow, reason):
    """{location: count} of the flow's drops; asserts they all have that reason (or prefix)."""
    by_location = {}
    for where, count in flow["drops"].items():
        name, location = where.split(" at ")
        assert name.startswith(reason), flow
        by_location[location] = count
    return by_location


@pytest.mark.parametrize("family", ["ipv4", pytest.param("ipv6", marks=SAME_ON_EVERY_KERNEL)])
def test_firewall_drops_every_fourth_datagram(f, hosts, family):
    total = 2000
    src, dst = (hosts.A_ADDR, hosts.B_ADDR) if family == "ipv4" else (hosts.A_ADDR6, hosts.B_ADDR6)
    dropped_by_rule = hosts.nft_rule(hosts.b, "input", "udp dport 7780 numgen inc mod 4 == 0", "drop")
    write(f, "activate")
    received = send_udp(hosts, total, 7780, 40010, dst=dst, expect_received=total * 3 // 4)
    rep = report(f)
    flow = rep["flows"][flow_header("UDP", src, 40010, dst, 7780)]
    assert dropped_by_rule() == total // 4
    assert flow["stages"]["RECV_SKB"] == flow["stages"]["SEND_SKB"] == total
    assert flow["stages"]["DROPPED"] == total // 4 == total - received
    (location, count), = only_drops(flow, "NETFILTER_DROP").items()
    assert count == total // 4
    assert location.split("+0x")[0] in ("nf_hook_slow", "nft_do_chain"), location
    at_b = "netns %s, dev %s" % (hosts.b, hosts.b_dev)
    assert flow["hops"][at_b]["drops"] == {"NETFILTER_DROP at %s" % location: total // 4}  # at B, on its way in
    assert flow["verdict"] == ("500 of 2000 lost in %s, after RECV_SKB: NETFILTER_DROP at %s "
                               "(a firewall rule drops them; see nft list ruleset / iptables -L)" % (at_b, location))
    assert rep["drops"]["lines"]["NETFILTER_DROP at %s" % location] >= total // 4


def test_tcp_to_a_closed_port_is_no_socket_in_the_tcp_receive_path(f, hosts):
    write(f, "activate")
    hosts.finish(hosts.start_peer(hosts.a, "tcp-refused", hosts.B_ADDR, 7781, 5, 40020))
    flow = report(f)["flows"][flow_header("TCP", hosts.A_ADDR, 40020, hosts.B_ADDR, 7781)]
    assert flow["stages"]["DROPPED"] == 5 == flow["stages"]["RECV_SKB"]
    (location, count), = only_drops(flow, "NO_SOCKET").items()
    assert count == 5 and location.startswith("tcp_v4_rcv+0x"), location
    # the last stage that saw them: tcp_v4_rcv itself where a kprobe runs there;
    # its cgroup_skb stand-in counts only packets that found a socket: none
    assert flow["stages"]["TCP_V4_RCV"] in (0, 5)
    last = "TCP_V4_RCV" if flow["stages"]["TCP_V4_RCV"] == 5 else "RECV_SKB"
    assert flow["verdict"].startswith("5 of 5 lost in netns %s, dev %s, after %s: NO_SOCKET at tcp_v4_rcv+0x" % (
        hosts.b, hosts.b_dev, last))


def test_a_full_receive_buffer_drops_what_was_not_queued(f, hosts):
    total = 300
    holder = hosts.start_peer(hosts.b, "udp-hold", 7783)
    write(f, "activate")
    hosts.finish(hosts.start_peer(hosts.a, "udp-send", hosts.B_ADDR, 7783, total, 40030))
    queued = int(hosts.finish(holder, say="go\n"))
    assert 0 < queued < total
    flow = report(f)["flows"][flow_header("UDP", hosts.A_ADDR, 40030, hosts.B_ADDR, 7783)]
    assert flow["stages"]["DROPPED"] == total - queued
    assert sum(only_drops(flow, "SOCKET_RCVBUFF").values()) == total - queued
    assert "SOCKET_RCVBUFF" in flow["verdict"] and "receive buffer is full" in flow["verdict"]


def test_a_tiny_qdisc_drops_between_queue_xmit_and_send_skb(f, hosts):
    total = 500
    hosts.run(hosts.a, "tc qdisc add dev %s root tbf rate 1mbit burst 2kb limit 3kb" % hosts.a_dev)
    write(f, "activate")
    receiver = hosts.start_peer(hosts.b, "udp-recv", 7784, total, QUIET_SECONDS)
    hosts.finish(hosts.start_peer(hosts.a, "udp-send", hosts.B_ADDR, 7784, total, 40040))
    received = int(hosts.finish(receiver, say="sender done\n"))
    flow = report(f)["flows"][flow_header("UDP", hosts.A_ADDR, 40040, hosts.B_ADDR, 7784)]
    stages = flow["stages"]
    assert 0 < received < total
    assert stages["QUEUE_XMIT"] == total
    assert stages["SEND_SKB"] == stages["RECV_SKB"] == received
    assert stages["DROPPED"] == total - received == sum(only_drops(flow, "QDISC_").values())
    assert flow["verdict"].startswith("%d of %d lost in netns %s, dev %s, after QUEUE_XMIT: QDISC_" % (
        total - received, total, hosts.a, hosts.a_dev))  # at A, on its way out


def test_dropped_tcp_segments_are_retransmitted(f, hosts):
    rounds = 50
    # every 10th data segment to the server dies (pure ACKs are shorter than 100 bytes)
    dropped_by_rule = hosts.nft_rule(hosts.b, "input", "tcp dport 7782 meta length > 100 numgen inc mod 10 == 0",
                                     "drop")
    write(f, "activate")
    server = hosts.start_peer(hosts.b, "tcp-serve", 7782)
    hosts.finish(hosts.start_peer(hosts.a, "tcp-pingpong", hosts.B_ADDR, 7782, rounds, 40050), timeout=120)
    assert hosts.finish(server) == str(rounds)
    flow = report(f)["flows"][flow_header("TCP", hosts.A_ADDR, 40050, hosts.B_ADDR, 7782)]
    assert dropped_by_rule() >= rounds // 10
    assert sum(only_drops(flow, "NETFILTER_DROP").values()) == dropped_by_rule()
    assert flow["stages"]["RETRANS"] >= dropped_by_rule()


@SAME_ON_EVERY_KERNEL
def test_unparsable_drops_count_as_unattributed(f, hosts):
    """A drop the tool cannot put on a flow is still counted, host-wide."""
    frames = 40
    write(f, "activate")
    before = report(f)["drops"]
    hosts.finish(hosts.start_peer(hosts.a, "raw-send", hosts.a_dev, hosts.B_MAC, frames))
    after = report(f)["drops"]
    assert after["unattributed"] - before["unattributed"] >= frames  # the host may add its own
    unhandled = {where: n - before["lines"].get(where, 0) for where, n in after["lines"].items()
                 if where.startswith("UNHANDLED_PROTO at ")}
    assert sum(unhandled.values()) == frames, after
    assert after["total"] == sum(after["lines"].values())


def link_counter(hosts, ns, dev, counter):
    """A device counter as `ip -s link` prints it (its JSON form)."""
    (link,) = json.loads(hosts.run(ns, "ip -s -j link show dev %s" % dev).stdout)
    return link["stats64"][counter.split("_")[0]][counter.split("_", 1)[1]]


@SAME_ON_EVERY_KERNEL
def test_device_drops_show_under_devices_as_ip_s_link_counts_them(f, hosts):
    watched = ((hosts.a, hosts.a_dev, "tx_dropped"), (hosts.b, hosts.b_dev, "rx_dropped"))
    before = {key: link_counter(hosts, *key) for key in watched}
    write(f, "activate")
    assert "netns %s, dev %s" % (hosts.b, hosts.b_dev) not in report(f)["devices"]  # nothing moved yet
    # frames of an ethertype no stack handles: B's veth drops them as rx_dropped, on every kernel
    hosts.finish(hosts.start_peer(hosts.a, "raw-send", hosts.a_dev, hosts.B_MAC, 50))
    # then B's veth down while A sends 100: where they reach veth_xmit (6.18), veth counts them as A's
    # tx_dropped and B's rx_dropped; where the carrier's loss puts a noop qdisc in front (6.1), it drops them
    hosts.run(hosts.b, "ip link set %s down" % hosts.b_dev)
    hosts.finish(hosts.start_peer(hosts.a, "udp-send", hosts.B_ADDR, 7785, 100, 40050))
    rep = report(f)
    moved = {key: link_counter(hosts, *key) - n for key, n in before.items()}
    assert moved[(hosts.b, hosts.b_dev, "rx_dropped")] >= 50
    for (ns, dev, counter), n in moved.items():  # each as `ip -s link` says; not listed where 0
        assert rep["devices"].get("netns %s, dev %s" % (ns, dev), {}).get(counter, 0) == n, (ns, dev, counter)
    assert "netns %s, dev lo" % hosts.a not in rep["devices"]  # nothing changed there: not listed
