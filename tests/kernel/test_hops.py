"""Per hop (network namespace, device), through real routed, bridged and
loopback paths: exact counts at every hop, the hop that lost them, the hop
filters, a namespace deleted while active, and the kernel's own counters
(nstat) for the causes it counts."""
import os

import pytest

from tests.kernel.conftest import N, SAME_ON_EVERY_KERNEL, report, write
from tests.support.mounts import flow_header, wait_for
from tests.support.netns import Bridged, Routed



@pytest.fixture
def routed():
    with Routed() as r:
        yield r


@pytest.fixture
def bridged():
    with Bridged() as b:
        yield b


def at(ns, dev):
    return "netns %s, dev %s" % (ns, dev)


def measured(rep, stage, count):
    """count where this kernel attached the stage, else None (its line reads "-")."""
    return None if rep["hooks"][stage].startswith("unavailable") else count


def receive(rep, n, socket_stage=None):
    stages = {"ETH_RECV": n, "GRO_RECV": 0, "RECV_SKB": n}  # veth without NAPI: never GRO
    if socket_stage:
        stages[socket_stage] = measured(rep, socket_stage, n)
    return stages


def send(n):
    return {"QUEUE_XMIT": n, "SEND_SKB": n}


def nstat(hosts, ns, counter):
    """The kernel's absolute counter in namespace ns (nstat -a: no history kept or used)."""
    for line in hosts.run(ns, "nstat -asz %s" % counter).stdout.splitlines():
        if line.split()[0] == counter:
            return int(line.split()[1])
    raise AssertionError("no %s in nstat of %s" % (counter, ns))


def test_routed_every_hop_counts_exactly_and_the_verdict_names_the_router_and_its_ingress(f, routed):
    dropped_by_rule = routed.nft_rule(routed.r, "forward", "udp dport 7007 numgen inc mod 4 == 0", "drop")
    write(f, "activate")
    assert routed.send_udp(routed.a, routed.c, routed.C_ADDR, N, 7007, 40007) == N * 3 // 4
    assert dropped_by_rule() == N // 4
    rep = report(f)
    flow = rep["flows"][flow_header("UDP", routed.A_ADDR, 40007, routed.C_ADDR, 7007)]
    router_in = at(routed.r, routed.ra_dev)
    (site,) = flow["hops"][router_in]["drops"]
    assert site.startswith("NETFILTER_DROP at ")
    assert [(hop, shown["stages"]) for hop, shown in flow["hops"].items()] == [
        (at(routed.a, routed.a_dev), send(N)),
        (router_in, dict(receive(rep, N), DROPPED=N // 4)),
        (at(routed.r, routed.rc_dev), send(N * 3 // 4)),
        (at(routed.c, routed.c_dev), receive(rep, N * 3 // 4, "UDP_RCV"))]
    assert flow["hops"][router_in]["drops"] == {site: N // 4}
    assert flow["verdict"] == "%d of %d lost in %s, after RECV_SKB: %s (%s)" % (
        N // 4, N, router_in, site, "a firewall rule drops them; see nft list ruleset / iptables -L")


@SAME_ON_EVERY_KERNEL
def test_bridged_each_of_the_four_hops_counts_exactly_n(f, bridged):
    write(f, "activate")
    assert bridged.send_udp(bridged.a, bridged.b, bridged.B_ADDR, N, 7008, 40008) == N
    rep = report(f)
    flow = rep["flows"][flow_header("UDP", bridged.A_ADDR, 40008, bridged.B_ADDR, 7008)]
    assert [(hop, shown["stages"]) for hop, shown in flow["hops"].items()] == [
        (at(bridged.a, bridged.a_dev), send(N)),
        (at(bridged.h, bridged.ha_dev), receive(rep, N)),  # a bridge port takes it in ...
        (at(bridged.h, bridged.hb_dev), send(N)),  # ... the bridge sends it out of the other
        (at(bridged.b, bridged.b_dev), receive(rep, N, "UDP_RCV"))]
    assert flow["verdict"] == "no drops seen"


@SAME_ON_EVERY_KERNEL
def test_loopback_is_one_hop_on_lo_with_both_sides(f, routed):
    write(f, "activate")
    assert routed.send_udp(routed.a, routed.a, routed.A_ADDR, N, 7009, 40009) == N
    rep = report(f)
    flow = rep["flows"][flow_header("UDP", routed.A_ADDR, 40009, routed.A_ADDR, 7009)]
    assert list(flow["hops"]) == [at(routed.a, "lo")]
    assert flow["hops"][at(routed.a, "lo")]["stages"] == dict(send(N), **receive(rep, N, "UDP_RCV"))


@SAME_ON_EVERY_KERNEL
def test_hop_filters_netns_dev_and_both_count_only_the_hops_they_pick(f, routed):
    header = lambda sport: flow_header("UDP", routed.A_ADDR, sport, routed.C_ADDR, 7010)
    write(f, "activate")
    hops_of = {}
    for sport, filters in ((40010, ["netns %s" % routed.r]),
                           (40011, ["dev %s" % routed.a_dev]),  # A's and C's device: one name
                           (40012, ["netns %s" % routed.c, "dev %s" % routed.c_dev]),
                           (40013, ["netns %d" % os.stat("/run/netns/%s" % routed.a).st_ino])):  # by inode
        write(f, "netns\ndev\n" + "\n".join(filters))
        assert routed.send_udp(routed.a, routed.c, routed.C_ADDR, 100, 7010, sport) == 100
        hops_of[sport] = report(f)["flows"][header(sport)]["hops"]
    rep = report(f)
    assert rep["settings"]["netns"] == str(os.stat("/run/netns/%s" % routed.a).st_ino)
    a, ra, rc, c = (at(routed.a, routed.a_dev), at(routed.r, routed.ra_dev), at(routed.r, routed.rc_dev),
                    at(routed.c, routed.c_dev))
    assert {sport: {hop: shown["stages"] for hop, shown in hops.items()} for sport, hops in hops_of.items()} == {
        # R's ingress is the last hop this view saw the flow arrive at: its socket stage shows, 0
        40010: {ra: dict(receive(rep, 100), UDP_RCV=measured(rep, "UDP_RCV", 0)), rc: send(100)},
        40011: {a: send(100), c: receive(rep, 100, "UDP_RCV")},
        40012: {c: receive(rep, 100, "UDP_RCV")},
        40013: {a: send(100)},
    }


@SAME_ON_EVERY_KERNEL
def test_bad_hop_filters_are_refused_with_the_reason_and_change_nothing(f, routed):
    write(f, "netns %s" % routed.r)
    for bad, reason in (("netns no-such-namespace", "no network namespace 'no-such-namespace'"),
                        ("dev a/b", "bad device name 'a/b'")):
        result = os.system("echo '%s' > %s 2>/dev/null" % (bad, f))
        assert result != 0
        rep = report(f)
        assert rep["settings"]["netns"] == routed.r and rep["settings"]["dev"] == "*"
        assert rep["settings"]["last-error"].startswith(reason)


@SAME_ON_EVERY_KERNEL
def test_a_namespace_deleted_while_active_keeps_its_counts_under_its_inode(f, routed):
    write(f, "activate")
    assert routed.send_udp(routed.a, routed.c, routed.C_ADDR, 100, 7011, 40014) == 100
    inode = os.stat("/run/netns/%s" % routed.c).st_ino
    routed.run(routed.c, "true")
    os.system("ip netns del %s" % routed.c)  # C goes while active; R and A stay
    rep = report(f)
    hops = rep["flows"][flow_header("UDP", routed.A_ADDR, 40014, routed.C_ADDR, 7011)]["hops"]
    assert hops[at("net:[%d]" % inode, "-")]["stages"] == receive(rep, 100, "UDP_RCV")
    assert hops[at(routed.a, routed.a_dev)]["stages"] == send(100)


def test_ttl_expiry_while_forwarding_is_the_routers_and_nstat_agrees(f, routed):
    routed.run(routed.a, "sysctl -qw net.ipv4.ip_default_ttl=1")
    before = nstat(routed, routed.r, "IpInHdrErrors")
    write(f, "activate")
    assert routed.send_udp(routed.a, routed.c, routed.C_ADDR, 200, 7012, 40015) == 0
    flow = report(f)["flows"][flow_header("UDP", routed.A_ADDR, 40015, routed.C_ADDR, 7012)]
    expired = nstat(routed, routed.r, "IpInHdrErrors") - before
    router_in = at(routed.r, routed.ra_dev)
    (site, count), = flow["hops"][router_in]["drops"].items()
    assert count == expired == 200 and site.startswith("IP_INHDR at ip_forward+")
    assert flow["verdict"].startswith("200 of 200 lost in %s, after RECV_SKB: IP_INHDR at ip_forward+" % router_in)
    assert "TTL ran out while forwarding" in flow["verdict"]


def test_udp_to_a_closed_port_is_no_socket_at_the_last_hop_and_nstat_agrees(f, routed):
    before = nstat(routed, routed.c, "UdpNoPorts")
    write(f, "activate")
    routed.finish(routed.start_peer(routed.a, "udp-send", routed.C_ADDR, 7013, 50, 40016))
    last_hop = at(routed.c, routed.c_dev)

    def settled():
        flow = report(f)["flows"].get(flow_header("UDP", routed.A_ADDR, 40016, routed.C_ADDR, 7013))
        return flow and sum(flow["hops"].get(last_hop, {}).get("drops", {}).values()) == 50
    wait_for(settled, "the 50 datagrams to be dropped at C")
    flow = report(f)["flows"][flow_header("UDP", routed.A_ADDR, 40016, routed.C_ADDR, 7013)]
    (site, count), = flow["hops"][last_hop]["drops"].items()
    assert count == nstat(routed, routed.c, "UdpNoPorts") - before == 50 and site.startswith("NO_SOCKET at ")
    # the last stage that saw them: udp_rcv itself where a kprobe runs there (6.1); its
    # cgroup_skb stand-in counts only packets that found a socket: none
    last = "UDP_RCV" if flow["hops"][last_hop]["stages"]["UDP_RCV"] == 50 else "RECV_SKB"
    assert flow["verdict"].startswith("50 of 50 lost in %s, after %s: NO_SOCKET at " % (last_hop, last))


def test_no_route_while_forwarding_is_the_routers_and_nstat_agrees(f, routed):
    before = nstat(routed, routed.r, "IpExtInNoRoutes")
    write(f, "activate")
    nowhere = "198.18.10.1"  # A routes it to R, which has no route there
    routed.finish(routed.start_peer(routed.a, "udp-send", nowhere, 7014, 60, 40017))
    router_in = at(routed.r, routed.ra_dev)

    def settled():
        flow = report(f)["flows"].get(flow_header("UDP", routed.A_ADDR, 40017, nowhere, 7014))
        return flow and sum(flow["hops"].get(router_in, {}).get("drops", {}).values()) == 60
    wait_for(settled, "the 60 datagrams to be dropped at R")
    flow = report(f)["flows"][flow_header("UDP", routed.A_ADDR, 40017, nowhere, 7014)]
    (site, count), = flow["hops"][router_in]["drops"].items()
    assert count == nstat(routed, routed.r, "IpExtInNoRoutes") - before == 60
    assert site.startswith("IP_INNOROUTES at ")
    assert flow["verdict"].startswith("60 of 60 lost in %s, after RECV_SKB: IP_INNOROUTES at " % router_in)
