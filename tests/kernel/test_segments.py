"""Every stage counts segments, the unit nstat and tc count: a GSO packet a
sender's TCP hands its device, and a packet a receiver's GRO merged, count
the segments they carry. A bulk TCP transfer, checked hop by hop against the
kernel's own counters in the namespace where each count was made."""
import json
import time

import pytest

from procfs_fuse.drop_packet.model.not_lost import BY_PLACE
from tests.kernel.conftest import report, write
from tests.support.mounts import flow_header
from tests.support.delivery import Delivery
from tests.support.netns import HANG_SECONDS, Hosts

pytestmark = pytest.mark.root

BULK = 3000000  # bytes: some 2,070 segments of a 1448-byte MSS
RATE_LIMIT = "tbf rate 20mbit burst 80kb limit 100kb"  # A's qdisc in the rate-limited case (and its reproducer's)
ISSUE_RATE_LIMIT = "tbf rate 20mbit burst 8kb limit 16kb"  # #34's: a burst below a GSO packet


def nstat(hosts, ns, *counters):
    """{counter: value} of a namespace's SNMP counters, absolute (-a), zeros
    too (-z), nstat's history left alone (-s): the namespace's whole life."""
    lines = hosts.run(ns, "nstat -asz %s" % " ".join(counters)).stdout.splitlines()
    return {name: int(value) for name, value, *_ in (line.split() for line in lines if not line.startswith("#"))}


def transfer(hosts, dport, sport):
    """BULK bytes over TCP from A to B."""
    sink = hosts.start_peer(hosts.b, "tcp-sink", dport)
    hosts.finish(hosts.start_peer(hosts.a, "tcp-bulk", hosts.B_ADDR, dport, BULK, sport), timeout=120)
    assert hosts.finish(sink) == str(BULK)


def flow_at(f, hosts, dport, sport):
    """The report's flow from A to B and its two device hops."""
    flow = report(f)["flows"][flow_header("TCP", hosts.A_ADDR, sport, hosts.B_ADDR, dport)]
    at_a, at_b = "netns %s, dev %s" % (hosts.a, hosts.a_dev), "netns %s, dev %s" % (hosts.b, hosts.b_dev)
    return flow, flow["hops"][at_a], flow["hops"][at_b]


def bulk(f, hosts, dport, sport):
    """BULK bytes over TCP from A to B: the flow's report and its two device hops."""
    transfer(hosts, dport, sport)
    return flow_at(f, hosts, dport, sport)


ATTEMPTS = 8  # rate-limited transfers at most, while the kernel skipped a program's run or none dropped
TCP_SENT = ("TcpOutSegs", "TcpRetransSegs", "TcpExtTCPRetransFail")


def drained(hosts, sport):
    """tc's stats of A's qdisc once A's last packet of the connection from
    sport left it: A's socket in TIME-WAIT (A closed first; it sent its ACK of
    B's FIN, which may wait in the qdisc for tokens, before) and the qdisc empty."""
    for _ in range(HANG_SECONDS * 20):  # bounds a hang only
        (qdisc,) = json.loads(hosts.run(hosts.a, "tc -s -j qdisc show dev %s" % hosts.a_dev).stdout)
        states = hosts.run(hosts.a, "ss -Htan 'sport = :%d'" % sport).stdout.split("\n")
        if qdisc["qlen"] == 0 and all(line.startswith("TIME-WAIT") for line in states if line.strip()):
            return qdisc
        time.sleep(0.05)
    pytest.fail("A's connection from port %d did not end: %s" % (sport, qdisc))


def rate_limited_bulk(f, qdisc_spec, offloads=True):
    """A bulk transfer from A through qdisc_spec on its veth (A's segmentation
    offloads off where not offloads): (flow, A's hop, B's hop, nstat's
    TCP_SENT in A, tc's stats of the qdisc, A's names). In fresh namespaces
    each time, done again (up to ATTEMPTS) only where the kernel ran no
    program for some hit of a tracepoint or kprobe a stage is attached to, as
    the kernel's own counts show (tests/support/delivery.py), or the qdisc
    dropped nothing (nothing to check): a transfer with drops that the
    kernel ran them all for must count exactly. Each one done again is printed."""
    write(f, "activate")
    hooks = report(f)["hooks"]
    for attempt in range(ATTEMPTS):
        write(f, "clear")
        with Hosts() as hosts:
            hosts.run(hosts.a, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1")  # the qdisc sends the flow alone
            if not offloads:
                hosts.run(hosts.a, "ethtool -K %s tso off gso off" % hosts.a_dev)
            hosts.run(hosts.a, "tc qdisc add dev %s root %s" % (hosts.a_dev, qdisc_spec))
            with Delivery(hooks) as delivery:
                transfer(hosts, 7790, 40060 + attempt)
                qdisc = drained(hosts, 40060 + attempt)
                skipped = delivery.skipped()
            flow, a, b = flow_at(f, hosts, 7790, 40060 + attempt)
            tcp = nstat(hosts, hosts.a, *TCP_SENT)
            names = hosts.a, hosts.a_dev
        if not skipped and qdisc["drops"]:
            return flow, a, b, tcp, qdisc, names
        why = "the kernel ran no program for %s (hits, runs: %s)" % (skipped, delivery.counts) if skipped else \
            "the qdisc dropped nothing (a sender slower than the rate: lane 2's guest)"
        print("transfer %d: %s; A %s, B %s, nstat %s, tc sent %d" % (
            attempt + 1, why, a["stages"], b["stages"], tcp, qdisc["packets"]))
    pytest.fail("no transfer of %d the kernel ran every program for, with drops" % ATTEMPTS)


def assert_rate_limited_counts(flow, a, b, tcp, qdisc, names):
    """What a transfer through a rate limit counts, against the kernel's
    counters: at A, what TCP handed the device, what tbf sent and what it
    dropped; B's stages what A sent; RETRANS and the verdict."""
    lost = sum(n for site, n in a["drops"].items() if site.startswith("QDISC_DROP at "))
    # all TCP handed the device, fresh and again; segments TCP sends again after the
    # qdisc refused them were never sent, so they count as fresh (TcpOutSegs) again
    assert a["stages"]["QUEUE_XMIT"] == tcp["TcpOutSegs"] + tcp["TcpRetransSegs"]
    assert a["stages"]["SEND_SKB"] == qdisc["packets"]  # tc's Sent: segments (qdisc_bstats_update)
    assert a["stages"]["QUEUE_XMIT"] == a["stages"]["SEND_SKB"] + lost
    # the rest of DROPPED: GSO packets tbf cut into segments and dropped them all
    # (tbf_segment frees the packet once more): not loss, counted apart
    not_lost = {site: n for site, n in a["drops"].items() if not site.startswith("QDISC_DROP at ")}
    assert all(site.startswith("NOT_SPECIFIED at tbf_") for site in not_lost), a
    assert lost > 0 and a["stages"]["DROPPED"] == lost + sum(not_lost.values())
    # tc counts a dropped GSO packet once (qdisc_qstats_drop: qstats.drops++ per sk_buff)
    assert 0 < qdisc["drops"] < lost
    assert flow["stages"].get("RETRANS", 0) == tcp["TcpRetransSegs"] - tcp["TcpExtTCPRetransFail"]
    assert b["stages"]["ETH_RECV"] == b["stages"]["RECV_SKB"] == b["stages"]["TCP_V4_RCV"] == a["stages"]["SEND_SKB"]
    assert flow["verdict"].startswith("%d of %d lost in netns %s, dev %s, after QUEUE_XMIT: QDISC_DROP at " % (
        lost, a["stages"]["QUEUE_XMIT"], *names))
    assert "(the tbf qdisc dropped them " in flow["verdict"]  # its kind: A's root qdisc


def test_a_rate_limited_queue_drops_segments_of_gso_packets(f):
    """A's TCP hands its veth GSO packets of many segments (offloads on, as
    veth has them); tbf drops whole ones when its queue is full."""
    assert_rate_limited_counts(*rate_limited_bulk(f, RATE_LIMIT))


def test_with_offloads_off_a_burst_below_a_gso_packet_drops_segments(f):
    """The issue's case: A's segmentation offloads off, tbf's burst below a
    GSO packet (tbf cuts those it cannot send whole into segments, and drops
    them one by one when its queue is full). TCP hands the device packets of
    several segments all the same where the kernel gives every TCP socket GSO
    (sk_setup_caps: the device segments them after the qdisc); every count is
    in segments either way."""
    assert_rate_limited_counts(*rate_limited_bulk(f, ISSUE_RATE_LIMIT, offloads=False))


def test_a_receiver_with_gro_counts_the_segments_it_merged(f, hosts):
    """A sends one packet a segment (offloads off); B's GRO merges them: every
    stage of both hops counts the segments A's TCP sent."""
    hosts.run(hosts.a, "ethtool -K %s tso off gso off" % hosts.a_dev)
    hosts.run(hosts.b, "ethtool -K %s gro on" % hosts.b_dev)
    write(f, "activate")
    flow, a, b = bulk(f, hosts, 7791, 40061)
    sent = nstat(hosts, hosts.a, "TcpOutSegs", "TcpRetransSegs")
    merged = nstat(hosts, hosts.b, "TcpInSegs")["TcpInSegs"]  # tcp_v4_rcv counts the sk_buffs it takes
    segments = sent["TcpOutSegs"] + sent["TcpRetransSegs"]
    assert a["stages"]["QUEUE_XMIT"] == a["stages"]["SEND_SKB"] == segments
    assert b["stages"]["GRO_RECV"] == b["stages"]["RECV_SKB"] == b["stages"]["TCP_V4_RCV"] == segments
    assert merged < segments  # GRO merged some: their segments count all the same
    # 6.1 frees the sk_buffs of a merged packet's frag_list with kfree_skb once TCP
    # took their data (skb_release_data): counted, and not loss
    assert flow["verdict"] in ("no drops seen", "not lost: " + BY_PLACE["NOT_SPECIFIED", "skb_release_data"])
