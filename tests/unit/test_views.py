"""The JSON and Prometheus views of a canned reading: the same numbers as the
text report, in the forms jq and Prometheus take (promtool checks the latter)."""
import ipaddress
import json
import shutil
import subprocess

from procfs_fuse.drop_packet.views import json_view, prometheus as metrics
from procfs_fuse.drop_packet.capture.flows import Drop, Flow, Hop, Snapshot, TableUse
from procfs_fuse.drop_packet.capture.settings import Filters
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.reading import reading_of
from tests.unit.test_report import render
from tests.support.mounts import parse_report, prometheus_samples
from tests.unit.test_report import counts, hooks_without_kprobes

VA, VB, GONE = Hop(11, 2), Hop(12, 3), Hop(13, 4)
NAMES = {VA: HopName("mhA", "vA"), VB: HopName("mhB", "vB"), GONE: HopName("net:[13]", None)}

A, B = ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")
UDP = Flow(17, A, 40000, B, 7777)
ICMP = Flow(1, B, 0, A, 0)


def reading(active=True, hooks=None, since=1700000000.25):
    flows = {UDP: ((VA, counts(QUEUE_XMIT=2000, SEND_SKB=2000)),
                   (VB, counts(ETH_RECV=2000, RECV_SKB=2000, DROPPED=500))),
             ICMP: ((VB, counts(QUEUE_XMIT=1, SEND_SKB=1)), (GONE, counts(ETH_RECV=1, RECV_SKB=1)))}
    drops = (Drop(UDP, VB, "NETFILTER_DROP", "nft_do_chain+0x4c4", 500),
             Drop(None, None, "NOT_SPECIFIED", "skb_release+0x10", 3))
    tables = (TableUse("flows", 4, 100, 7), TableUse("drops", 2, 4096, 0), TableUse("slots", 1, 512, 0))
    return reading_of(Snapshot.of_paths(flows, drops, tables), active, Filters(dest_addr=B, source_port=40000), 100, None,
                      hooks_without_kprobes(cgroup_skb=False) if hooks is None else hooks, since, NAMES,
                      {VA: {"tx_dropped": 7}}, {1: {"dropped": 3}})


def test_json_has_the_text_reports_numbers_and_null_for_what_it_shows_as_dash():
    r = reading()
    doc = json.loads(json_view.render(r))
    text = parse_report(render(r))
    assert doc["version"] == 1
    assert doc["settings"] == {"activated": True, "source_addr": None, "source_port": 40000,
                               "dest_addr": "198.18.0.2", "dest_port": None, "netns": None, "dev": None,
                               "max_flows": 100, "last_error": None}
    assert doc["measurement_start"] == 1700000000.25
    assert doc["hooks"]["TCP_V4_RCV"] == {"attached": None, "approximate": False, "skipped": [
        {"hook": "kprobe tcp_v4_rcv", "why": "kprobes not supported"},
        {"hook": "cgroup_skb ingress", "why": "attach failed: EPERM"}]}
    assert doc["hooks"]["ETH_RECV"]["attached"] == "tracepoint net:netif_rx" and doc["hooks"]["ETH_RECV"]["approximate"]
    assert doc["tables"]["flows"] == {"held": 4, "capacity": 100, "evicted": 7}
    by_header = {header: flow for header, flow in text["flows"].items()}
    assert len(doc["flows"]) == len(by_header) == 2
    for flow, header in zip(doc["flows"], by_header):  # same order as the text
        shown = by_header[header]["stages"]  # what the text shows at some hop; the rest is 0
        assert {k: v for k, v in flow["stages"].items() if k in shown} == shown
        assert not any(v for k, v in flow["stages"].items() if k not in shown)
        assert flow["verdict"] == by_header[header]["verdict"]
        assert {"%s at %s" % (d["reason"], d["location"]): d["count"] for d in flow["drops"]} == \
            by_header[header]["drops"]
        # each hop as the text shows it, in its order
        assert ["netns %s, dev %s" % (hop["netns"], hop["dev"] or "-") for hop in flow["hops"]] == \
            list(by_header[header]["hops"])
        for hop, (_name, shown) in zip(flow["hops"], by_header[header]["hops"].items()):
            assert hop["stages"] == shown["stages"]
            assert {"%s at %s" % (d["reason"], d["location"]): d["count"] for d in hop["drops"]} == shown["drops"]
    udp = doc["flows"][1]
    assert (udp["protocol"], udp["source"], udp["source_port"], udp["dest"], udp["dest_port"], udp["ip_version"]) == \
        ("UDP", "198.18.0.1", 40000, "198.18.0.2", 7777, 4)
    assert udp["stages"]["UDP_RCV"] is None and "TCP_V4_RCV" not in udp["stages"]
    assert udp["stages"]["SEND_SKB"] == udp["stages"]["RECV_SKB"] == 2000  # summed over hops, as in version 1
    assert udp["hops"][1]["netns"] == "mhB" and udp["hops"][1]["netns_inode"] == 12 and udp["hops"][1]["ifindex"] == 3
    assert doc["flows"][0]["hops"][1] == {"netns": "net:[13]", "netns_inode": 13, "dev": None, "ifindex": 4,
                                          "stages": {"ETH_RECV": 1, "GRO_RECV": 0, "RECV_SKB": 1}, "drops": []}
    assert doc["flows"][0]["source_port"] is None  # ICMP: no ports
    assert doc["drops"]["total"] == text["drops"]["total"] == 503
    assert doc["drops"]["unattributed"] == 3
    assert doc["drops"]["sites"][0] == {"reason": "NETFILTER_DROP", "location": "nft_do_chain+0x4c4", "count": 500}
    assert doc["devices"] == [{"netns": "mhA", "netns_inode": 11, "dev": "vA", "ifindex": 2, "tx_dropped": 7}]
    assert doc["softnet"] == [{"cpu": 1, "dropped": 3}]
    assert text["devices"] == {"netns mhA, dev vA": {"tx_dropped": 7}, "cpu 1": {"dropped": 3}}


def test_json_of_the_inactive_never_attached_state():
    doc = json.loads(json_view.render(reading_of(Snapshot(), False, Filters(), 16384, "bad port")))
    assert doc["settings"]["activated"] is False and doc["settings"]["last_error"] == "bad port"
    assert doc["hooks"] is None and doc["flows"] == [] and doc["measurement_start"] is None
    assert doc["drops"] == {"total": 0, "unattributed": 0, "sites": [], "not_lost": {"total": 0, "sites": []}}


def test_prometheus_exposition_sums_flows_per_stage_and_keeps_labels_bounded():
    text = metrics.render(reading()).decode()
    got = prometheus_samples(text)
    assert got["drop_packet_active"] == 1
    assert got["drop_packet_measurement_start_seconds"] == 1700000000.25
    assert got['drop_packet_packets_total{stage="ETH_RECV",netns="mhB",dev="vB"}'] == 2000
    assert got['drop_packet_packets_total{stage="ETH_RECV",netns="net:[13]",dev="-"}'] == 1
    assert got['drop_packet_packets_total{stage="SEND_SKB",netns="mhB",dev="vB"}'] == 1
    assert got['drop_packet_packets_total{stage="DROPPED",netns="mhB",dev="vB"}'] == 500
    assert not any('stage="UDP_RCV"' in series for series in got)  # not measured: no series, not 0
    assert 'drop_packet_packets_total{stage="ETH_RECV",netns="mhA",dev="vA"}' not in got  # 0 there: no series
    assert got['drop_packet_drops_total{reason="NETFILTER_DROP",location="nft_do_chain+0x4c4",netns="mhB",dev="vB"}'] \
        == 500
    assert got["drop_packet_unattributed_drops_total"] == 3
    assert got['drop_packet_table_evictions_total{table="flows"}'] == 7
    assert got["drop_packet_flows"] == 2
    assert got['drop_packet_device_drops_total{netns="mhA",dev="vA",counter="tx_dropped"}'] == 7
    assert got['drop_packet_softnet_total{cpu="1",counter="dropped"}'] == 3
    assert got['drop_packet_stage_hook_info{stage="ETH_RECV",hook="tracepoint net:netif_rx"}'] == 1
    # no flow's addresses or ports in any label
    assert "198.18.0.1" not in text and "40000" not in text
    for line in text.splitlines():
        if line.startswith("# TYPE") and line.endswith(" counter"):
            assert line.split()[2].endswith("_total"), line



def test_prometheus_sums_hops_that_carry_the_same_labels():
    """Two devices gone from one namespace are both dev="-": one series, their sum."""
    gone_too = Hop(13, 5)
    names = {**NAMES, gone_too: HopName("net:[13]", None)}
    flows = {UDP: ((GONE, counts(ETH_RECV=3, DROPPED=1)),), ICMP: ((gone_too, counts(ETH_RECV=4, DROPPED=2)),)}
    drops = (Drop(UDP, GONE, "NO_SOCKET", "f+0x1", 1), Drop(ICMP, gone_too, "NO_SOCKET", "f+0x1", 2))
    got = prometheus_samples(metrics.render(reading_of(Snapshot.of_paths(flows, drops, ()), True, Filters(), 100, None,
                                                       hooks_without_kprobes(), names=names)).decode())
    assert got['drop_packet_packets_total{stage="ETH_RECV",netns="net:[13]",dev="-"}'] == 7
    assert got['drop_packet_drops_total{reason="NO_SOCKET",location="f+0x1",netns="net:[13]",dev="-"}'] == 3
    assert got["drop_packet_unattributed_drops_total"] == 0

def test_prometheus_labels_are_escaped():
    odd = reading_of(Snapshot.of_paths({}, (Drop(None, None, 'A"B\\C', "f\n+0x1", 1),), ()), True, Filters(), 100, None,
                     hooks_without_kprobes())
    assert 'drop_packet_drops_total{reason="A\\"B\\\\C",location="f\\n+0x1",netns="-",dev="-"} 1' in \
        metrics.render(odd).decode()


def test_promtool_accepts_every_state():
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup.sh --test installs prometheus"
    for r in (reading(), reading(active=False), reading_of(Snapshot(), False, Filters(), 16384)):
        checked = subprocess.run([promtool, "check", "metrics"], input=metrics.render(r), capture_output=True)
        assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked


def test_the_json_is_byte_for_byte_what_json_dumps_writes_of_its_values():
    """The flows are written as text for speed (json_view): whatever the names
    hold (quotes, backslashes, %, non-ASCII), they must read back as written
    and be written as json.dumps would, so scripts see one JSON."""
    odd = {VA: HopName('pod default/we"b-0 \\ 100%', "vÄ"), VB: HopName("mhB", None), GONE: HopName("net:[13]", None)}
    flows = {UDP: ((VA, counts(QUEUE_XMIT=9, SEND_SKB=9)), (VB, counts(ETH_RECV=9, RECV_SKB=9, DROPPED=6)))}
    drops = (Drop(UDP, VB, "NETFILTER_DROP", "nft_do_chain+0x4c4", 4),
             Drop(UDP, VB, "NO_SOCKET", "__udp4_lib_rcv+0x1", 2))
    r = reading_of(Snapshot.of_paths(flows, drops, ()), True, Filters(), 100, 'a "bad" line', hooks_without_kprobes(),
                   1700000000.25, odd, {VA: {"tx_dropped": 7}}, {0: {"dropped": 1}})
    out = json_view.render(r)
    doc = json.loads(out)
    assert (json.dumps(doc, separators=(",", ":")) + "\n").encode() == out
    (flow,) = doc["flows"]
    assert flow["hops"][0]["netns"] == 'pod default/we"b-0 \\ 100%' and flow["hops"][0]["dev"] == "vÄ"
    assert [d["count"] for d in flow["hops"][1]["drops"]] == [4, 2] and flow["hops"][1]["dev"] is None
    assert '    hop: netns pod default/we"b-0 \\ 100%, dev vÄ\n' in render(r)  # the text's formats take no name
