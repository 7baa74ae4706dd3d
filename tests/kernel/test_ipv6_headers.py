"""IPv6 extension headers followed to the transport header: an MLD report
(after hop-by-hop options) is ICMPv6, and its drop where nobody joined the
group not loss; a fragmented UDPv6 datagram's first fragment has its ports
and the later ones none. Counted against the namespaces' own counters (SNMP, nftables)."""
import time

import pytest

from tests.kernel.conftest import SAME_ON_EVERY_KERNEL, report, send_udp, write
from tests.kernel.test_segments import nstat
from tests.support.mounts import flow_header

pytestmark = pytest.mark.root


def settled(hosts, ns, counter, quiet=2.0, seconds=30):
    """The counter's value once it stopped moving for quiet seconds."""
    value, since, deadline = None, time.monotonic(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = nstat(hosts, ns, counter)[counter]
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
        time.sleep(0.2)
    raise AssertionError("%s kept moving in %s" % (counter, ns))


@SAME_ON_EVERY_KERNEL  # the parse is the project's own: lane 1
def test_a_fragmented_udpv6_datagram(f, hosts):
    datagrams = 100  # 3000 bytes each: three fragments over a 1500-byte MTU
    write(f, "activate")
    send_udp(hosts, datagrams, 7795, 40070, dst=hosts.B_ADDR6, size=3000)
    flows = report(f)["flows"]
    first = flows[flow_header("UDP", hosts.A_ADDR6, 40070, hosts.B_ADDR6, 7795)]["stages"]
    later = flows[flow_header("UDP", hosts.A_ADDR6, 0, hosts.B_ADDR6, 0)]["stages"]
    fragments = nstat(hosts, hosts.a, "Ip6FragCreates")["Ip6FragCreates"]
    assert fragments == 3 * datagrams
    assert first["QUEUE_XMIT"] == first["SEND_SKB"] == first["RECV_SKB"] == datagrams
    assert later["QUEUE_XMIT"] == later["SEND_SKB"] == later["RECV_SKB"] == fragments - datagrams
    assert first["UDP_V6_RCV"] == datagrams  # reassembled, the socket takes whole datagrams
    assert later["UDP_V6_RCV"] == 0
    assert nstat(hosts, hosts.b, "Ip6ReasmOKs")["Ip6ReasmOKs"] == datagrams


def test_an_mld_report_is_icmpv6(f, hosts):
    settled(hosts, hosts.a, "Icmp6OutMLDv2Reports")  # the address set-up's own reports are out
    reports_out = hosts.nft_rule(hosts.a, "output", "icmpv6 type mld2-listener-report")
    write(f, "activate")
    member = hosts.start_peer(hosts.a, "mld-join", hosts.a_dev, "ff02::1:ff00:dd")
    settled(hosts, hosts.a, "Icmp6OutMLDv2Reports")
    sent, flows = reports_out(), report(f)["flows"]
    hosts.finish(member, say="done\n")  # after the counts: leaving the group sends a report too
    at_a = "netns %s, dev %s" % (hosts.a, hosts.a_dev)
    reports = [flow for header, flow in flows.items() if at_a in flow["hops"]
               and header.startswith("protocol: ICMPv6, ") and header.endswith("Dest IP: ff02::16")]
    assert sent > 0
    assert sum(flow["hops"][at_a]["stages"]["QUEUE_XMIT"] for flow in reports) == sent
    # B joined no such group: it frees them, which is not loss
    at_b = "netns %s, dev %s" % (hosts.b, hosts.b_dev)
    assert sum(flow["hops"][at_b]["stages"]["DROPPED"] for flow in reports) == sent
    assert {flow["verdict"] for flow in reports} == {
        "not lost: multicast to ff02::16, no listener here joined the group"}
