"""TCP's own drops, made on purpose, each checked against the counter the
kernel keeps for it in the namespace where it happened, and the hint that
names it: data after the receiver closed (TCPAbortOnData), segments with a
timestamp PAWS rejects and data already received (PAWSEstab,
DelayedACKLost), the last two crafted on a raw socket in the connection's
own sequence space (its numbers read with TCP_REPAIR)."""
from collections import Counter

import pytest

from tests.kernel.conftest import report, write
from tests.kernel.test_segments import nstat
from tests.support.mounts import flow_header

pytestmark = pytest.mark.root


def drops_by_reason(flow):
    by_reason = Counter()
    for site, n in flow["drops"].items():
        by_reason[site.split(" at ")[0]] += n
    return by_reason


def test_data_after_the_receiver_closed_aborts_the_connection(f, hosts):
    connections = 10
    write(f, "activate")
    server = hosts.start_peer(hosts.b, "tcp-close-early", 7798, connections)
    hosts.finish(hosts.start_peer(hosts.a, "tcp-late-data", hosts.B_ADDR, 7798, connections, 40095))
    hosts.finish(server)
    flow = report(f)["flows"][flow_header("TCP", hosts.A_ADDR, 40095, hosts.B_ADDR, 7798)]
    aborted = nstat(hosts, hosts.b, "TcpExtTCPAbortOnData")["TcpExtTCPAbortOnData"]
    # 6.1 has no reason for it: NOT_SPECIFIED where tcp_v4_do_rcv resets the connection
    sites = {site: n for site, n in flow["drops"].items() if " at tcp_v4_do_rcv+" in site}
    assert (sum(sites.values()), aborted) == (aborted, aborted)
    assert 0 < aborted <= connections, aborted  # the counter says how many were aborted: each is one drop
    assert {site.split(" at ")[0] for site in sites} <= {"TCP_ABORT_ON_DATA", "NOT_SPECIFIED"}
    if "TCP_ABORT_ON_DATA" in drops_by_reason(flow):
        assert "after the application closed the socket" in flow["verdict"] and "TcpExtTCPAbortOnData" in flow["verdict"]


def test_old_timestamps_and_old_data_on_an_open_connection(f, hosts):
    stale, duplicates = 20, 15
    write(f, "activate")
    server = hosts.start_peer(hosts.b, "tcp-serve", 7797)
    holder = hosts.start_peer(hosts.a, "tcp-hold", hosts.B_ADDR, 7797, 40090)
    tsval, seq, ack = map(int, holder.stdout.readline().split())
    # a timestamp 100 s older than the connection's: PAWS; then 10 bytes B has already
    hosts.finish(hosts.start_peer(hosts.a, "tcp-raw", hosts.B_ADDR, 7797, 40090, stale, tsval - 100000, seq, ack))
    hosts.finish(hosts.start_peer(hosts.a, "tcp-raw", hosts.B_ADDR, 7797, 40090, duplicates, tsval, seq - 10, ack))
    flow = report(f)["flows"][flow_header("TCP", hosts.A_ADDR, 40090, hosts.B_ADDR, 7797)]
    counted = nstat(hosts, hosts.b, "TcpExtPAWSEstab", "TcpExtDelayedACKLost")
    hosts.finish(holder, say="done\n")
    hosts.finish(server)
    by_reason = drops_by_reason(flow)
    assert by_reason["TCP_RFC7323_PAWS"] == counted["TcpExtPAWSEstab"] == stale
    assert by_reason["TCP_OLD_DATA"] == counted["TcpExtDelayedACKLost"] == duplicates
    assert flow["verdict"].startswith("%d of " % sum(by_reason.values()))
    assert "TCP_RFC7323_PAWS at " in flow["verdict"] and "TcpExtPAWSEstab" in flow["verdict"]
