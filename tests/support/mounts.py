"""Mounting, shell and report-parsing helpers shared by the tests and the benchmark."""
import ipaddress
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from procfs_fuse.drop_packet.capture.flows import PROTOCOL_NAMES, Flow

ENTRY = "mooc/net/drop-packet"


def sh(command, check=False, timeout=120):
    """Run a bash command as a user would; returns the CompletedProcess (text)."""
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (%d): %s%s" % (command, result.returncode, result.stdout,
                                                       result.stderr))
    return result


def wait_for(predicate, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def is_mounted(mountpoint):
    return sh("mountpoint -q %s" % mountpoint).returncode == 0


def start_fake_daemon(mountpoint, log_path, *options):
    """The real file system over a fake session, in its own process
    (options: fake_daemon.py's, e.g. "--fail-read-port", "13")."""
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "fake_daemon.py"), str(mountpoint)]
                               + [str(o) for o in options], stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: os.path.exists(os.path.join(mountpoint, ENTRY)) or process.poll() is not None,
             "the fake daemon's mount")
    assert process.poll() is None, Path(log_path).read_text()
    return process


def unmount(mountpoint, process=None):
    if is_mounted(mountpoint):
        tool = shutil.which("fusermount3") or shutil.which("fusermount")  # fuse3's, or fuse 2's
        sh("%s -u %s" % (tool, mountpoint) if tool else "umount %s" % mountpoint, check=True)
    if process is not None:
        process.wait(timeout=30)


def report_sections(text):
    """{section name: (the text after "name: " on its header line, [its lines])}.
    A section starts at a line without indent (`settings:`, `flows: 2`, ...),
    but a flow's `protocol: ...` line, which belongs to `flows`."""
    sections, lines = {}, None
    for line in text.splitlines():
        if line and not line.startswith((" ", "protocol: ")):
            name, _, value = line.partition(":")
            lines = []
            sections[name] = (value.strip(), lines)
        elif lines is not None:
            lines.append(line)
    return sections


def _use_and_location(text):
    """"N at PLACE" -> (N, PLACE)."""
    count, location = text.split(" at ")
    return int(count), location


def _parse_flows(lines):
    """{header: {'hops': {"netns X, dev Y": {'stages': {...}, 'drops': {...}}} in path order,
    'stages' and 'drops': summed over the hops (None: "-" wherever shown), 'verdict': str,
    'nat': {"netns X: dest A -> B, ...": how many hops come before it}}}."""
    flows, flow, hop = {}, None, None
    for line in lines:
        if line.startswith("protocol: "):
            flow = flows.setdefault(line, {"hops": {}, "stages": {}, "drops": {}, "verdict": None, "nat": {}})
        elif line.startswith("    verdict: "):
            flow["verdict"] = line[len("    verdict: "):]
        elif line.startswith("    nat: "):
            flow["nat"][line[len("    nat: "):]] = len(flow["hops"])
        elif line.startswith("    hop: "):
            hop = flow["hops"].setdefault(line[len("    hop: "):], {"stages": {}, "drops": {}})
        elif line.startswith("            "):
            reason, rest = line.strip().split(": ")
            count, location = _use_and_location(rest)
            site = "%s at %s" % (reason, location)
            hop["drops"][site] = count
            flow["drops"][site] = flow["drops"].get(site, 0) + count
        else:
            stage, value = line.strip().split(": ")
            count = None if value == "-" else int(value)
            hop["stages"][stage] = count
            if count is not None or stage not in flow["stages"]:
                flow["stages"][stage] = (flow["stages"].get(stage) or 0) + count if count is not None else None
    return flows


def parse_report(text):
    """{'settings': {k: v}, 'hooks': {stage: text}, 'tables': {name: (held, capacity, evicted)},
        'flows': _parse_flows (per flow its hops, and stages and drops summed over them),
        'drops': {'total': int|None, 'unattributed': int, 'lines': {"REASON at loc": n}, and where some
                  drops are not loss, 'not_lost': int, 'not_lost_lines': {"REASON at loc": n}},
        'devices': {"netns X, dev Y" or "cpu N": {counter: change}},
        'sections': report_sections(text)}: each section read by its header, so
    sections added later (after `drops:` or between) leave these as they are."""
    sections = report_sections(text)
    pairs = lambda name: dict(line.strip().split(": ", 1) for line in sections.get(name, ("", []))[1]
                              if ": " in line)
    report = {"settings": pairs("settings"), "hooks": pairs("hooks"), "tables": {}, "sections": sections,
              "flows": _parse_flows(sections.get("flows", ("", []))[1]), "drops": {"lines": {}}}
    for name, use in pairs("tables").items():
        held, _of, capacity, _evicted, evicted = use.replace(",", "").split()[:5]
        report["tables"][name] = (int(held), int(capacity), int(evicted))
    report["devices"] = {}  # {"netns X, dev Y" or "cpu N": {counter: change}}
    for line in sections.get("devices", ("", []))[1]:
        if not line.strip().startswith("("):
            label, counters = line.strip().rsplit(": ", 1)
            report["devices"][label] = {c: int(n) for c, n in (pair.split() for pair in counters.split(", "))}
    if "drops" in sections:
        total, lines = sections["drops"]
        report["drops"]["total"] = None if total == "-" else int(total)
        for line in lines:
            reason, rest = line.strip().split(": ")
            if reason == "unattributed":
                report["drops"]["unattributed"] = int(rest)
            elif reason == "not lost":  # then its sites, indented deeper
                report["drops"]["not_lost"], report["drops"]["not_lost_lines"] = int(rest), {}
            elif line.startswith("    "):
                count, location = _use_and_location(rest)
                report["drops"]["not_lost_lines"]["%s at %s" % (reason, location)] = count
            else:
                count, location = _use_and_location(rest)
                report["drops"]["lines"]["%s at %s" % (reason, location)] = count
    return report


def flow_header(protocol, saddr, sport, daddr, dport):
    return "protocol: %s, Source IP: %s, Source Port: %d, Dest IP: %s, Dest Port: %d" % (
        protocol, saddr, sport, daddr, dport)


def flow_of_header(header):
    """The Flow of a report's flow header line."""
    fields = dict(part.split(": ") for part in header.split(", "))
    protocol = {name: number for number, name in PROTOCOL_NAMES.items()}[fields["protocol"]]
    return Flow(protocol, ipaddress.ip_address(fields["Source IP"]), int(fields.get("Source Port", 0)),
                ipaddress.ip_address(fields["Dest IP"]), int(fields.get("Dest Port", 0)))


def prometheus_samples(text, prefix=""):
    """{series: value} of a Prometheus exposition's sample lines that start with prefix."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#") and line.startswith(prefix)}
