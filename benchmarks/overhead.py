#!/usr/bin/env python3
"""Cost of watching: what drop-packet costs the traffic it watches.

Run as root from a checkout set up by mount.sh or test.sh:
    sudo .venv/bin/python benchmarks/overhead.py [--rounds 5] [--seconds 3]

Two network namespaces joined by veth (tests/kernel/netns.py), iperf3 between
them. In interleaved rounds it measures TCP bulk throughput and UDP 64-byte
packets/s for: no hooks (baseline); the floor (empty BPF programs on exactly
the attach points an activation uses, from the hook plan); active with no
filter; active with a filter that excludes the measured traffic; and bpftrace
counting on the same tracepoints, where bpftrace is installed. Then the time
of an activation and of `cat` with 10,000 flows. Medians, and ratios to the
baseline and the floor (each the median of the per-round ratios). It exits
non-zero only when the set-up fails: this is a measurement, not a test.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procfs_fuse.drop_packet import hooks as hookplan  # noqa: E402
from procfs_fuse.drop_packet.tracer import attach  # noqa: E402
from procfs_fuse.kernel import headers, tracefs  # noqa: E402
from tests.kernel.netns import Hosts  # noqa: E402
from tests.mounts import ENTRY, sh  # noqa: E402

IPERF_PORT = 5201
FLOOR_C = r"""
#include <uapi/linux/ptrace.h>
int dp_floor_raw(struct bpf_raw_tracepoint_args *ctx) { return 0; }
int dp_floor_record(void *ctx) { return 0; }
int dp_floor_kprobe(struct pt_regs *ctx) { return 0; }
"""


def planned_hooks():
    tracefs.ensure_mounted()
    return [h.chosen for h in hookplan.plan(tracefs.KernelHooks().why_unavailable) if h.chosen]


class Floor:
    """Empty programs on the attach points an activation would use."""

    def __enter__(self):
        from bcc import BPF
        headers.point_bcc_at_headers()
        self.bpf = BPF(text=FLOOR_C)
        for c in planned_hooks():
            empty = "dp_floor_kprobe" if c.kind == hookplan.KPROBE else (
                "dp_floor_record" if c.record else "dp_floor_raw")
            attach(self.bpf, c, empty)
        return self

    def __exit__(self, *exc):
        self.bpf.cleanup()


class Bpftrace:
    """The minimal peer: bpftrace counting the same tracepoints."""

    def __enter__(self):
        probes = ", ".join("tracepoint:%s" % c.target if c.kind == hookplan.TRACEPOINT else "kprobe:%s" % c.target
                           for c in planned_hooks())
        self.process = subprocess.Popen(["bpftrace", "-B", "line", "-e", "%s { @[probe] = count(); }" % probes],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("Attaching"):
            self.process.kill()
            raise RuntimeError("bpftrace did not attach: %r" % line)
        time.sleep(1)  # it prints before the last probe is attached
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)


class Mounted:
    """The real product: mount.sh, then commands through the file."""

    def __init__(self, commands):
        self.commands = commands

    def __enter__(self):
        for command in self.commands:
            write(command)
        return self

    def __exit__(self, *exc):
        write("deactivate")
        for word in ("dest-port", "max-flows"):
            write(word)


class Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


ENTRY_FILE = None


def write(command):
    with open(ENTRY_FILE, "w") as f:
        f.write(command + "\n")


def iperf(hosts, seconds, udp):
    args = "-c %s -p %d -t %d -J -A 0" % (hosts.B_ADDR, IPERF_PORT, seconds)  # pinned: less noise
    if udp:
        args += " -u -b 0 -l 64"
    result = json.loads(hosts.run(hosts.a, "iperf3 " + args).stdout)
    if udp:
        total = result["end"]["sum"]
        return (total["packets"] - total["lost_packets"]) / total["seconds"]
    return result["end"]["sum_received"]["bits_per_second"]


def bpf_run_time(hosts, config, seconds):
    """(ns per program run, runs per UDP packet) of our programs (names dp_*)
    during a UDP run under config, from the kernel's own BPF statistics: the
    CPU time of the programs themselves, which the drifting speed of this VM
    does not blur as it blurs throughput."""
    stats_file = Path("/proc/sys/kernel/bpf_stats_enabled")
    was = stats_file.read_text().strip()

    def totals():
        programs = json.loads(sh("bpftool -j prog show", check=True).stdout or "[]")
        ours = [p for p in programs if p.get("name", "").startswith("dp_")]
        return sum(p.get("run_time_ns", 0) for p in ours), sum(p.get("run_cnt", 0) for p in ours)

    stats_file.write_text("1")
    try:
        with config():
            time_before, runs_before = totals()
            packets = iperf(hosts, seconds, udp=True) * seconds
            time_after, runs_after = totals()
    finally:
        stats_file.write_text(was)
    runs = max(runs_after - runs_before, 1)
    return (time_after - time_before) / runs, runs / packets


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main():
    global ENTRY_FILE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    for tool in ("iperf3", "bpftool"):  # bpftool reads the programs' run times
        if not subprocess.run(["which", tool], capture_output=True).returncode == 0:
            subprocess.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq " + tool, shell=True, check=True)
    have_bpftrace = subprocess.run(["which", "bpftrace"], capture_output=True).returncode == 0

    base = Path(tempfile.mkdtemp(prefix="dp-bench-"))
    mountpoint = base / "mnt"
    sh("%s/mount.sh %s" % (REPO, mountpoint), check=True, timeout=900)
    ENTRY_FILE = mountpoint / ENTRY
    configs = {"baseline": Nothing, "floor": Floor,
               "active": lambda: Mounted(["activate"]),
               "active, filtered out": lambda: Mounted(["dest-port 1", "activate"])}
    if have_bpftrace:
        configs["bpftrace"] = Bpftrace
    results = {name: {"tcp": [], "udp": []} for name in configs}
    try:
        with Hosts() as hosts:
            server = subprocess.Popen(["ip", "netns", "exec", hosts.b, "iperf3", "-s", "-A", "1",
                                       "-p", str(IPERF_PORT)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
            try:
                for round_number in range(args.rounds):
                    order = list(configs)
                    order = order[round_number % len(order):] + order[:round_number % len(order)]
                    for name in order:
                        with configs[name]():
                            results[name]["tcp"].append(iperf(hosts, args.seconds, udp=False))
                            results[name]["udp"].append(iperf(hosts, args.seconds, udp=True))
                    print("round %d of %d done" % (round_number + 1, args.rounds), file=sys.stderr)

                run_times = {name: bpf_run_time(hosts, configs[name], args.seconds)
                             for name in ("floor", "active", "active, filtered out")}

                activations = []
                for _ in range(args.rounds):
                    activations.append(timed(lambda: write("activate")))
                    write("deactivate")
                write("max-flows 20000")
                write("activate")
                hosts.finish(hosts.start_peer(hosts.a, "udp-flood", hosts.B_ADDR, 10000), timeout=120)
                cats = [timed(lambda: ENTRY_FILE.read_bytes()) for _ in range(args.rounds)]
                flows = ENTRY_FILE.read_text().count("\nprotocol: ")
                write("deactivate")
                write("max-flows")
            finally:
                server.terminate()
    finally:
        sh("%s/mount.sh -u %s" % (REPO, mountpoint))

    median = {name: {kind: statistics.median(v) for kind, v in r.items()} for name, r in results.items()}

    def ratio(name, reference, kind):
        """The median of the per-round ratios: a round measures every configuration
        within seconds, while this VM's speed drifts over tens of seconds."""
        return statistics.median(a / b for a, b in zip(results[name][kind], results[reference][kind]))

    print("machine: %s, %d CPUs, kernel %s; %d rounds of %d s, medians"
          % (os.uname().machine, os.cpu_count(), os.uname().release, args.rounds, args.seconds))
    print("%-22s %10s %7s %7s %10s %7s %7s" % ("", "TCP Gb/s", "/base", "/floor", "UDP kpps", "/base", "/floor"))
    for name, m in median.items():
        print("%-22s %10.2f %7.3f %7.3f %10.1f %7.3f %7.3f" % (
            name, m["tcp"] / 1e9, ratio(name, "baseline", "tcp"), ratio(name, "floor", "tcp"),
            m["udp"] / 1e3, ratio(name, "baseline", "udp"), ratio(name, "floor", "udp")))
    floor_ns = run_times["floor"][0]
    packet_ns = 1e9 / median["floor"]["udp"]
    print("BPF run time per event (kernel.bpf_stats_enabled, one UDP run each; it counts its own clock reads):")
    for name, (ns, per_packet) in run_times.items():
        print("  %-20s %5.1f ns x %.2f events per packet%s" % (
            name, ns, per_packet, "" if name == "floor" else
            ": %+.1f ns per packet over the floor, %.1f%% of a packet's time at the floor's rate"
            % ((ns - floor_ns) * per_packet, 100 * (ns - floor_ns) * per_packet / packet_ns)))
    print("activation: %.2f s (median of %d)" % (statistics.median(activations), len(activations)))
    print("cat with %d flows: %.0f ms (median of %d; the first, before the daemon knows the flows: %.0f ms)"
          % (flows, statistics.median(cats) * 1000, len(cats), cats[0] * 1000))
    goals = [
        ("active/floor TCP >= 0.97", ratio("active", "floor", "tcp") >= 0.97),
        ("active/floor UDP >= 0.97", ratio("active", "floor", "udp") >= 0.97),
        ("active/baseline TCP >= 0.95", ratio("active", "baseline", "tcp") >= 0.95),
        ("active/baseline UDP >= 0.85", ratio("active", "baseline", "udp") >= 0.85),
        ("filtered/floor TCP >= 0.99", ratio("active, filtered out", "floor", "tcp") >= 0.99),
        ("filtered/floor UDP >= 0.99", ratio("active, filtered out", "floor", "udp") >= 0.99),
        ("activation <= 2 s", statistics.median(activations) <= 2),
        ("cat with 10,000 flows <= 100 ms", statistics.median(cats) <= 0.1),
    ]
    for goal, met in goals:
        print("goal %-34s %s" % (goal, "met" if met else "NOT met"))


if __name__ == "__main__":
    main()
