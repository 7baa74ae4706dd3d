"""The monitoring a fleet already has: Debian's node_exporter reads the .prom
view through its textfile collector, and a Prometheus server scraping it
answers PromQL with the report's numbers. Both run on loopback, started and
ended by the test, their data in a temporary directory."""
import json
import socket
import subprocess
import urllib.parse
import urllib.request

import pytest

from tests.kernel.conftest import send_udp, write
from tests.support.mounts import flow_header, prometheus_samples, sh, wait_for

pytestmark = pytest.mark.root
STARTUP_SECONDS = 120  # only bounds a hang: each server is up in a second or two


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


class Server:
    """A Debian program listening on a loopback port; ended on exit."""

    def __init__(self, argv, port, ready_path, log):
        self.argv, self.url, self.ready_path, self.log = argv, "http://127.0.0.1:%d" % port, ready_path, log

    def __enter__(self):
        self.process = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            assert self.process.poll() is None, "%s exited" % self.argv[0]
            try:
                http_get(self.url + self.ready_path)
                return True
            except OSError:
                return False
        wait_for(up, self.argv[0], seconds=STARTUP_SECONDS)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)


def test_node_exporter_and_prometheus_see_the_reports_numbers(f, hosts, tmp_path):
    total, dport, sport = 1000, 7793, 40070
    dropped = hosts.nft_rule(hosts.b, "input", "udp dport %d numgen inc mod 4 == 0" % dport, "drop")
    write(f, "dest-port %d" % dport)
    write(f, "activate")
    send_udp(hosts, total, dport, sport, expect_received=total * 3 // 4)
    assert dropped() == total // 4
    report = json.loads(sh("cat %s.json" % f, check=True).stdout)
    flow, = report["flows"]
    assert (flow["source_port"], flow["dest_port"]) == (sport, dport)
    assert sh("cat %s" % f, check=True).stdout.count(flow_header("UDP", hosts.A_ADDR, sport, hosts.B_ADDR, dport)) == 1
    (site, ) = [s for s in report["drops"]["sites"] if s["reason"] == "NETFILTER_DROP"]
    assert site["count"] == total // 4

    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    (textfiles / "drop-packet.prom").symlink_to("%s.prom" % f)
    exporter_port, prometheus_port = free_port(), free_port()
    log = open(tmp_path / "servers.log", "w")
    exporter = Server(["prometheus-node-exporter", "--collector.disable-defaults", "--collector.textfile",
                       "--collector.textfile.directory=%s" % textfiles,
                       "--web.listen-address=127.0.0.1:%d" % exporter_port], exporter_port, "/metrics", log)
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                      "scrape_configs:\n  - job_name: node\n    static_configs:\n"
                      "      - targets: ['127.0.0.1:%d']\n" % exporter_port)
    prometheus = Server(["prometheus", "--config.file=%s" % config, "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                         "--web.listen-address=127.0.0.1:%d" % prometheus_port], prometheus_port, "/-/ready", log)
    with exporter:
        scraped = http_get(exporter.url + "/metrics")
        assert prometheus_samples(scraped, "node_textfile_scrape_error") == {"node_textfile_scrape_error": 0}
        ours = prometheus_samples(scraped, "drop_packet_")
        assert ours["drop_packet_active"] == 1
        at = lambda hop: 'dev="%s",netns="%s"' % (hop["dev"], hop["netns"])  # as node_exporter orders labels
        for hop in flow["hops"]:  # one flow passes the filter: its counts per hop are the sums per hop
            for stage, count in hop["stages"].items():
                series = 'drop_packet_packets_total{%s,stage="%s"}' % (at(hop), stage)
                assert ours.get(series, 0) == (count or 0), series
        b_hop, = [hop for hop in flow["hops"] if hop["drops"]]
        assert b_hop["netns"] == hosts.b and b_hop["dev"] == hosts.b_dev
        assert ours['drop_packet_drops_total{dev="%s",location="%s",netns="%s",reason="NETFILTER_DROP"}' % (
            b_hop["dev"], site["location"], b_hop["netns"])] == total // 4
        with prometheus:
            query = "sum by (reason) (drop_packet_drops_total)"

            def answered():
                answer = json.loads(http_get(prometheus.url + "/api/v1/query?" + urllib.parse.urlencode(
                    {"query": query})))
                by_reason = {r["metric"].get("reason"): float(r["value"][1]) for r in answer["data"]["result"]}
                return by_reason.get("NETFILTER_DROP") == total // 4
            wait_for(answered, "Prometheus to answer %s with %d" % (query, total // 4), seconds=STARTUP_SECONDS)
            rate = json.loads(http_get(prometheus.url + "/api/v1/query?" + urllib.parse.urlencode(
                {"query": 'drop_packet_packets_total{stage="SEND_SKB"}'})))["data"]["result"]
            assert [float(r["value"][1]) for r in rate] == [total]
