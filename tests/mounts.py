"""Mounting and shell helpers shared by the FUSE and kernel tests."""
import os
import subprocess
import sys
import time
from pathlib import Path

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


def start_fake_daemon(mountpoint, log_path):
    """The real file system over a fake tracer, in its own process."""
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "fuse" / "fake_daemon.py"),
                                str(mountpoint)], stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: os.path.exists(os.path.join(mountpoint, ENTRY)) or process.poll() is not None,
             "the fake daemon's mount")
    assert process.poll() is None, Path(log_path).read_text()
    return process


def unmount(mountpoint, process=None):
    if is_mounted(mountpoint):
        sh("fusermount -u %s" % mountpoint, check=True)
    if process is not None:
        process.wait(timeout=30)


def parse_report(text):
    """{'settings': {k: v}, 'hooks': {stage: text}, 'tables': {name: (held, capacity, evicted)},
        'flows': {header: {'stages': {stage: int|None}, 'drops': {"REASON at loc": n}, 'verdict': str}},
        'drops': {'total': int|None, 'unattributed': int, 'lines': {"REASON at loc": n}}}."""
    report = {"settings": {}, "hooks": {}, "tables": {}, "flows": {}, "drops": {"lines": {}}}
    section, flow = None, None
    for line in text.splitlines():
        if line in ("settings:", "hooks:", "tables:"):
            section = line[:-1]
        elif line.startswith("flows: "):
            section = "flows"
        elif line.startswith("drops: "):
            section = "drops"
            total = line.split(": ")[1]
            report["drops"]["total"] = None if total == "-" else int(total)
        elif line.startswith("protocol: "):
            flow = report["flows"].setdefault(line, {"stages": {}, "drops": {}, "verdict": None})
        elif section == "flows" and line.startswith("    verdict: "):
            flow["verdict"] = line[len("    verdict: "):]
        elif section == "flows" and line.startswith("        "):
            reason, rest = line.strip().split(": ")
            count, location = rest.split(" at ")
            flow["drops"]["%s at %s" % (reason, location)] = int(count)
        elif section == "flows":
            stage, value = line.strip().split(": ")
            flow["stages"][stage] = None if value == "-" else int(value)
        elif section == "drops" and line.startswith("  unattributed: "):
            report["drops"]["unattributed"] = int(line.split(": ")[1])
        elif section == "drops":
            reason, rest = line.strip().split(": ")
            count, location = rest.split(" at ")
            report["drops"]["lines"]["%s at %s" % (reason, location)] = int(count)
        elif section == "tables" and ": " in line:
            name, use = line.strip().split(": ")
            held, _of, capacity, _evicted, evicted = use.replace(",", "").split()
            report["tables"][name] = (int(held), int(capacity), int(evicted))
        elif section in ("settings", "hooks") and ": " in line:
            key, value = line.strip().split(": ", 1)
            report[section][key] = value
    return report


def flow_header(protocol, saddr, sport, daddr, dport):
    return "protocol: %s, Source IP: %s, Source Port: %d, Dest IP: %s, Dest Port: %d" % (
        protocol, saddr, sport, daddr, dport)
