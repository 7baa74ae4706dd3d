"""deploy/drop-packet.rules.yml, checked by promtool and tested on series the
.prom view wrote: a reading a minute for 40 minutes of a flow losing 5% of
its packets at a firewall, a table that starts evicting, and a deactivation."""
import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path

from procfs_fuse.drop_packet.capture.flows import Drop, Flow, Hop, Snapshot, TableUse
from procfs_fuse.drop_packet.capture.settings import Filters
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.reading import reading_of
from procfs_fuse.drop_packet.views import prometheus as metrics
from tests.unit.test_report import counts, hooks_without_kprobes

RULES = Path(__file__).resolve().parents[2] / "deploy" / "drop-packet.rules.yml"
VA, VB = Hop(11, 2), Hop(12, 3)
UDP = Flow(17, ipaddress.ip_address("198.18.0.1"), 40000, ipaddress.ip_address("198.18.0.2"), 7777)
MINUTES, DEACTIVATED_AT, EVICTING_FROM = 40, 25, 15
SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def reading_at(minute):
    """The reading after `minute` minutes: 1000 packets a minute, 50 of them dropped at B."""
    m = min(minute, DEACTIVATED_AT)  # deactivated: the counts stay
    flows = {UDP: ((VA, counts(QUEUE_XMIT=1000 * m, SEND_SKB=1000 * m)),
                   (VB, counts(ETH_RECV=1000 * m, RECV_SKB=1000 * m, DROPPED=50 * m)))}
    drops = (Drop(UDP, VB, "NETFILTER_DROP", "nft_do_chain+0x4c4", 50 * m),) if m else ()
    tables = (TableUse("flows", 2, 100, 5 * max(0, m - EVICTING_FROM)),)
    return reading_of(Snapshot.of_paths(flows, drops, tables), minute < DEACTIVATED_AT, Filters(), 100, None,
                      hooks_without_kprobes(), 1.0, {VA: HopName("mhA", "vA"), VB: HopName("mhB", "vB")})


def input_series():
    """promtool's input_series of the .prom view's samples, a minute apart, as one
    Prometheus would scrape them (instance="host1"); "_" where a series is absent."""
    values = {}
    for minute in range(MINUTES + 1):
        for line in metrics.render(reading_at(minute)).decode().splitlines():
            name, labels, value = SAMPLE.match(line).groups() if not line.startswith("#") else (None,) * 3
            if name:
                series = "%s{%s}" % (name, ",".join(filter(None, [labels, 'instance="host1"'])))
                values.setdefault(series, ["_"] * (MINUTES + 1))[minute] = value
    return [{"series": series, "values": " ".join(v)} for series, v in values.items()]


def alert(name, eval_minutes, labels=None, summary=None):
    expected = [{"exp_labels": dict(labels, instance="host1"), "exp_annotations": {"summary": summary}}] \
        if labels is not None else []
    if expected and name == "PacketsDropped":
        expected[0]["exp_annotations"]["description"] = \
            "See the host's drop-packet report: which flows, at which hop, after which stage."
    return {"eval_time": "%dm" % eval_minutes, "alertname": name, "exp_alerts": expected}


def test_promtool_checks_and_tests_the_rules(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup.sh --test installs prometheus"
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": input_series(), "alert_rule_test": [
            alert("PacketsDropped", 12, {"severity": "warning", "reason": "NETFILTER_DROP"},
                  "host1 drops packets: NETFILTER_DROP"),
            alert("PacketsDropped", 35),  # deactivated at 25: no new drops
            alert("HopLosingPackets", 15, {"severity": "warning", "netns": "mhB", "dev": "vB"},
                  "host1 loses 5% of packets at netns mhB, dev vB"),
            alert("DropPacketTableEvicting", 10),
            alert("DropPacketTableEvicting", 20, {"severity": "info", "table": "flows"},
                  "host1: drop-packet's flows table is full (raise max-flows)"),
            alert("DropPacketInactive", 30),  # not yet for 10 minutes
            alert("DropPacketInactive", 40, {"severity": "info"},
                  "host1: drop-packet is not counting (see last-error in its report)"),
        ]}]}
    (tmp_path / "tests.yml").write_text(json.dumps(tests))  # JSON is YAML
    tested = subprocess.run([promtool, "test", "rules", str(tmp_path / "tests.yml")], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
