"""A flow followed through NAT, as its sender sent it: a service's DNAT and a
masquerade on a router, a redirect to a local port, TCP both ways. One path
per direction, every hop's counts exact, the translation where it happened,
drops after it on the flow as sent, and the filters on either address."""
import contextlib

import pytest

from tests.kernel.conftest import N, SAME_ON_EVERY_KERNEL, report, write
from tests.kernel.test_segments import ATTEMPTS, nstat
from tests.support.delivery import Delivery
from tests.support.mounts import flow_header, wait_for
from tests.support.netns import QUIET_SECONDS, Routed

pytestmark = pytest.mark.root

VIP = "198.18.99.1"  # the service's address: no host has it


@contextlib.contextmanager
def translating():
    """A -> R -> C, R translating: VIP's UDP port 80 and TCP port 80 to C's
    7042 (DNAT, as a Service's), its UDP port 81 to R's own 7043 (a redirect),
    and what leaves R to C from R's address (masquerade)."""
    with Routed() as r:
        for command in (
                "add table ip dpnat",
                "add chain ip dpnat pre '{ type nat hook prerouting priority -100; }'",
                "add chain ip dpnat post '{ type nat hook postrouting priority 100; }'",
                "add rule ip dpnat pre ip daddr %s meta l4proto { tcp, udp } th dport 80 dnat to %s:7042"
                % (VIP, r.C_ADDR),
                "add rule ip dpnat pre ip daddr %s udp dport 81 redirect to :7043" % VIP,
                "add rule ip dpnat post oifname %s masquerade" % r.rc_dev):
            r.run(r.r, "nft " + command)
        yield r


@pytest.fixture
def routed():
    with translating() as r:
        yield r


def at(ns, dev):
    return "netns %s, dev %s" % (ns, dev)


def measured(rep, stage, count):
    return None if rep["hooks"][stage].startswith("unavailable") else count


def receive(n):
    return {"ETH_RECV": n, "GRO_RECV": 0, "RECV_SKB": n}  # veth without NAPI: never GRO


def send(n):
    return {"QUEUE_XMIT": n, "SEND_SKB": n}


def udp(r, receiver_ns, port, count, expected, dst, dport, sport):
    """count datagrams from A to dst:dport, received on port in receiver_ns: checks how many arrived."""
    receiver = r.start_peer(receiver_ns, "udp-recv", port, expected, QUIET_SECONDS)
    r.finish(r.start_peer(r.a, "udp-send", dst, dport, count, sport))
    assert int(r.finish(receiver, say="sender done\n")) == expected


def test_udp_to_a_service_is_one_path_from_what_its_sender_sent_to_where_it_died(f, routed):
    r = routed
    dropped_at_c = r.nft_rule(r.c, "input", "udp dport 7042 numgen inc mod 4 == 0", "drop")
    write(f, "dest-addr %s" % VIP)  # the filter a user sets: the address the client sent to
    write(f, "activate")
    assert report(f)["hooks"]["NAT"].startswith("conntrack ")
    udp(r, r.c, 7042, N, N * 3 // 4, VIP, 80, 41042)
    udp(r, r.r, 7043, 100, 100, VIP, 81, 41043)  # redirected to R's own port
    assert dropped_at_c() == N // 4
    rep = report(f)
    flow = rep["flows"][flow_header("UDP", r.A_ADDR, 41042, VIP, 80)]
    c_hop = at(r.c, r.c_dev)
    (site,) = flow["hops"][c_hop]["drops"]
    assert site.startswith("NETFILTER_DROP at ")
    assert [(hop, shown["stages"]) for hop, shown in flow["hops"].items()] == [
        (at(r.a, r.a_dev), send(N)), (at(r.r, r.ra_dev), receive(N)), (at(r.r, r.rc_dev), send(N)),
        (c_hop, dict(receive(N), UDP_RCV=measured(rep, "UDP_RCV", N * 3 // 4), DROPPED=N // 4))]
    # the translation, before the first hop that saw it translated
    assert flow["nat"] == {"netns %s: dest %s:80 -> %s:7042, source %s:41042 -> %s:41042" % (
        r.r, VIP, r.C_ADDR, r.A_ADDR, r.RC_ADDR): 2}
    assert flow["verdict"] == "%d of %d lost in %s (after NAT to %s:7042), after RECV_SKB: %s (%s)" % (
        N // 4, N, c_hop, r.C_ADDR, site, "a firewall rule drops them; see nft list ruleset / iptables -L")
    redirected = rep["flows"][flow_header("UDP", r.A_ADDR, 41043, VIP, 81)]
    if rep["hooks"]["UDP_RCV"].startswith("kprobe "):  # at udp_rcv the packet still has its conntrack entry
        assert redirected["nat"] == {"netns %s: dest %s:81 -> %s:7043" % (r.r, VIP, r.RA_ADDR): 1}
        at_socket = 100
    else:  # cgroup_skb runs after conntrack let go of it: the blind spot the hook line names
        assert rep["hooks"]["NAT"].startswith("conntrack built in, approximate: ")
        at_socket = 0
    assert [(hop, shown["stages"]) for hop, shown in redirected["hops"].items()] == [
        (at(r.a, r.a_dev), send(100)),
        (at(r.r, r.ra_dev), dict(receive(100), UDP_RCV=measured(rep, "UDP_RCV", at_socket)))]
    # no flow under a translated header: each is counted as sent
    assert [header for header in rep["flows"] if r.C_ADDR in header or r.RC_ADDR in header] == []
    # a filter on the translated address finds the flow too, at the hops after the translation
    write(f, "dest-addr %s" % r.C_ADDR)
    udp(r, r.c, 7042, 100, 75, VIP, 80, 41045)
    flow = report(f)["flows"][flow_header("UDP", r.A_ADDR, 41045, VIP, 80)]
    assert list(flow["hops"]) == [at(r.r, r.rc_dev), c_hop]
    assert flow["hops"][c_hop]["stages"]["DROPPED"] == 25


def test_tcp_through_a_service_is_one_path_each_way(f, routed):
    r = routed
    write(f, "activate")  # no filters: every flow there is
    server = r.start_peer(r.c, "tcp-serve", 7042)
    r.finish(r.start_peer(r.a, "tcp-pingpong", VIP, 80, 20, 41044))
    assert int(r.finish(server)) == 20
    rep = report(f)
    there = rep["flows"][flow_header("TCP", r.A_ADDR, 41044, VIP, 80)]
    back = rep["flows"][flow_header("TCP", r.C_ADDR, 7042, r.RC_ADDR, 41044)]  # as C sent it
    segments_there = there["hops"][at(r.a, r.a_dev)]["stages"]["SEND_SKB"]
    segments_back = back["hops"][at(r.c, r.c_dev)]["stages"]["SEND_SKB"]
    assert segments_there >= 23 and segments_back >= 22  # handshake, 20 requests or answers, close
    assert [(hop, shown["stages"]) for hop, shown in there["hops"].items()] == [
        (at(r.a, r.a_dev), send(segments_there)), (at(r.r, r.ra_dev), receive(segments_there)),
        (at(r.r, r.rc_dev), send(segments_there)),
        (at(r.c, r.c_dev), dict(receive(segments_there), TCP_V4_RCV=measured(rep, "TCP_V4_RCV", segments_there)))]
    # A's socket, closed first, frees C's FIN from its queue (QUEUE_PURGE; 6.1: NOT_SPECIFIED): on C's flow
    at_a_socket = back["hops"].pop(at(r.a, "-"), {"drops": {}})
    assert all(site.split(" at ")[1].startswith("sk_stream_kill_queues+") for site in at_a_socket["drops"])
    assert [(hop, shown["stages"]) for hop, shown in back["hops"].items()] == [
        (at(r.c, r.c_dev), send(segments_back)), (at(r.r, r.rc_dev), receive(segments_back)),
        (at(r.r, r.ra_dev), send(segments_back)),
        (at(r.a, r.a_dev), dict(receive(segments_back), TCP_V4_RCV=measured(rep, "TCP_V4_RCV", segments_back)))]
    assert there["nat"] == {"netns %s: dest %s:80 -> %s:7042, source %s:41044 -> %s:41044" % (
        r.r, VIP, r.C_ADDR, r.A_ADDR, r.RC_ADDR): 2}
    assert back["nat"] == {"netns %s: dest %s:41044 -> %s:41044, source %s:7042 -> %s:80" % (
        r.r, r.RC_ADDR, r.A_ADDR, r.C_ADDR, VIP): 2}
    assert there["verdict"] == "no drops seen"
    # the translated headers are no flows of their own
    assert flow_header("TCP", r.RC_ADDR, 41044, r.C_ADDR, 7042) not in rep["flows"]
    assert flow_header("TCP", VIP, 80, r.A_ADDR, 41044) not in rep["flows"]


@SAME_ON_EVERY_KERNEL  # RETRANS is read from the socket, the join after NAT is proven on both lanes above
def test_tcp_through_a_service_retransmits_and_drops_on_the_flow_as_sent(f):
    """C's firewall drops every 4th of the client's data segments, after R's
    DNAT and masquerade: the drops at C and each side's retransmissions are
    on that side's flow as it sent it, equal to nft's counter and to each
    side's TcpRetransSegs. In fresh namespaces again (up to ATTEMPTS) where
    the kernel ran no program for a hit (tests/support/delivery.py)."""
    rounds = 20
    write(f, "activate")
    hooks = report(f)["hooks"]
    for attempt in range(ATTEMPTS):
        write(f, "clear")
        with translating() as r:
            # pure ACKs are shorter than 100 bytes; retransmissions are counted by the rule too
            dropped_at_c = r.nft_rule(r.c, "input", "tcp dport 7042 meta length > 100 numgen inc mod 4 == 0", "drop")
            with Delivery(hooks) as delivery:
                server = r.start_peer(r.c, "tcp-serve", 7042)
                r.finish(r.start_peer(r.a, "tcp-pingpong", VIP, 80, rounds, 41046), timeout=120)
                assert int(r.finish(server)) == rounds
                dropped = dropped_at_c()
                retransmissions = lambda: {ns: nstat(r, ns, "TcpRetransSegs", "TcpExtTCPRetransFail")
                                           for ns in (r.a, r.c)}
                for _ in range(3):  # the report read between two equal readings of the kernel's counters
                    retransmitted, rep = retransmissions(), report(f)
                    if retransmissions() == retransmitted:
                        break
                skipped = delivery.skipped()
        if not skipped:
            break
        print("attempt %d: the kernel ran no program for %s (hits, runs: %s)" % (attempt + 1, skipped,
                                                                               delivery.counts))
    else:
        pytest.fail("the kernel skipped a program's run in %d attempts in a row" % ATTEMPTS)
    assert dropped >= rounds // 4
    there = rep["flows"][flow_header("TCP", r.A_ADDR, 41046, VIP, 80)]
    back = rep["flows"][flow_header("TCP", r.C_ADDR, 7042, r.RC_ADDR, 41046)]
    c_hop = at(r.c, r.c_dev)
    (site,) = [site for site in there["hops"][c_hop]["drops"] if site.startswith("NETFILTER_DROP at ")]
    assert there["hops"][c_hop]["drops"][site] == dropped
    assert there["stages"]["RETRANS"] == retransmitted[r.a]["TcpRetransSegs"] - retransmitted[r.a][
        "TcpExtTCPRetransFail"] >= dropped
    # C's answers wait for an ACK riding on A's next request: when that dies, C sends its answer
    # again, from a dual-stack socket (AF_INET6, its peer ::ffff:...): on C's IPv4 flow all the same
    assert back["stages"].get("RETRANS", 0) == retransmitted[r.c]["TcpRetransSegs"] - retransmitted[r.c][
        "TcpExtTCPRetransFail"]
    assert [header for header in rep["flows"] if "::ffff:" in header] == []
    assert " lost in %s (after NAT to %s:7042), after RECV_SKB: %s " % (c_hop, r.C_ADDR, site) in there["verdict"]


@SAME_ON_EVERY_KERNEL  # the same following as above; conntrack's module BTF is proven on both lanes
def test_a_service_translated_in_the_clients_own_namespace_then_masqueraded(f, routed):
    """As kube-proxy does on a node: the client's own output chain DNATs the
    service address, the router masquerades. One flow as the client sent it,
    exact at every hop, each translation before the first hop that saw it,
    C's drops on it."""
    r = routed
    for command in ("add table ip dpclient", "add chain ip dpclient out '{ type nat hook output priority -100; }'",
                    "add rule ip dpclient out ip daddr %s udp dport 82 dnat to %s:7042" % (VIP, r.C_ADDR)):
        r.run(r.a, "nft " + command)
    dropped_at_c = r.nft_rule(r.c, "input", "udp dport 7042 numgen inc mod 4 == 0", "drop")
    write(f, "dest-addr %s" % VIP)
    write(f, "activate")
    udp(r, r.c, 7042, N, N * 3 // 4, VIP, 82, 41047)
    assert dropped_at_c() == N // 4
    rep = report(f)
    flow = rep["flows"][flow_header("UDP", r.A_ADDR, 41047, VIP, 82)]
    c_hop = at(r.c, r.c_dev)
    assert [(hop, shown["stages"]) for hop, shown in flow["hops"].items()] == [
        (at(r.a, r.a_dev), send(N)), (at(r.r, r.ra_dev), receive(N)), (at(r.r, r.rc_dev), send(N)),
        (c_hop, dict(receive(N), UDP_RCV=measured(rep, "UDP_RCV", N * 3 // 4), DROPPED=N // 4))]
    assert flow["nat"] == {"netns %s: dest %s:82 -> %s:7042" % (r.a, VIP, r.C_ADDR): 0,
                           "netns %s: source %s:41047 -> %s:41047" % (r.r, r.A_ADDR, r.RC_ADDR): 2}
    assert flow["verdict"].startswith("%d of %d lost in %s (after NAT to %s:7042), after RECV_SKB: " % (
        N // 4, N, c_hop, r.C_ADDR))


@SAME_ON_EVERY_KERNEL  # the kernel side's record and memo; both lanes run the same C
def test_a_translated_tuple_handed_out_again_belongs_to_its_new_flow(f, routed):
    """R's masquerade hands A's port out again once the first flow's
    conntrack entry is gone: R's second hop and C count under the flow that
    now has it, though its header there is the first flow's."""
    r = routed
    r.run(r.r, "sysctl -qw net.netfilter.nf_conntrack_udp_timeout=1")
    r.run(r.r, "nft add rule ip dpnat pre ip daddr %s udp dport 83 dnat to %s:7042" % (VIP, r.C_ADDR))
    write(f, "activate")
    udp(r, r.c, 7042, 100, 100, VIP, 80, 41048)
    # listing the table ends entries that expired: gone once the listing no longer shows it
    wait_for(lambda: "sport=41048 " not in r.run(r.r, "cat /proc/net/nf_conntrack").stdout,
             "the first flow's conntrack entry to expire")
    udp(r, r.c, 7042, 100, 100, VIP, 83, 41048)  # past R the same header as the first: RC:41048 -> C:7042
    rep = report(f)
    for dport in (80, 83):
        flow = rep["flows"][flow_header("UDP", r.A_ADDR, 41048, VIP, dport)]
        assert [(hop, shown["stages"]) for hop, shown in flow["hops"].items()] == [
            (at(r.a, r.a_dev), send(100)), (at(r.r, r.ra_dev), receive(100)), (at(r.r, r.rc_dev), send(100)),
            (at(r.c, r.c_dev), dict(receive(100), UDP_RCV=measured(rep, "UDP_RCV", 100)))], dport
