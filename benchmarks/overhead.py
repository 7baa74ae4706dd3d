#!/usr/bin/env python3
"""Cost of watching: what drop-packet costs the traffic it watches.

Run as root from a checkout set up by mount.sh or test.sh:
    sudo .venv/bin/python benchmarks/overhead.py [--rounds 25] [--seconds 1] [--tcp-seconds 3]
and, for a long run that tells the UDP ratios against the floor apart (one ratio
of 25 rounds varies by 1-2% on a VM):
    sudo .venv/bin/python benchmarks/overhead.py --udp-only --rounds 120 \
        --only "floor again" --only "active, filtered out" --only "100 register adds"
and with the traffic through conntrack and a DNAT (what following a flow through NAT costs):
    sudo .venv/bin/python benchmarks/overhead.py --nat --udp-only --only active --only "active, filtered out"

Two network namespaces joined by veth (tests/support/netns.py), iperf3 between
them: first a UDP flood of 64-byte packets, then a TCP bulk transfer, each one
long run. While it runs, interleaved rounds switch through the configurations
(in a shuffled order, each between two windows of the floor) and count what
the receiving veth took in during a window under each: no hooks (baseline);
the floor (an empty BPF program on each attach point an activation uses, from
the hook plan); the floor again, a second copy of it loaded apart (what this
method measures where there is no difference at all); active with no filter;
active with every slot held by another flow (the measured flow counts in the
shared table, as flows past the slots do on a host with many); active with a
filter that excludes the measured traffic; for reference, our
programs reduced to reading the headers (the parse every stage runs, nothing
else); programs that do 100 register additions an event and nothing else
(what this method charges for a few ns of plain work: about the run time of
our filtered-out path); and bpftrace counting on the same tracepoints, where
bpftrace is installed (in the first rounds only). A compile disturbs this VM's traffic for
a second or more, so every configuration of ours is compiled once, by the
product's own session (BccSession, as an activation builds it), and only
attached and detached between windows; the filter is switched while detached.
This VM's speed drifts by several percent over tens of seconds: each window is
taken against the mean of the floor windows just before and after it, which
cancels a steady drift. Each median ratio comes with its 95% interval (from the
order statistics of the per-round ratios); a goal is met or not by the median,
and one whose interval holds its threshold is marked: this run cannot tell.
The benchmark itself runs off the sender's CPU. Then the time of an activation
and of `cat` with 10,000 flows (after every flow changed, which the goal
counts; unchanged since the last cat; the very first). Medians, and ratios to
the baseline and the floor (each the median of the per-round ratios). It exits
non-zero only when the set-up fails: this is a measurement, not a test.
"""
import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import configurations  # noqa: E402
from benchmarks.configurations import PEER_ROUNDS, RUN_TIME_ROUNDS  # noqa: E402
from benchmarks.results import print_results  # noqa: E402
from benchmarks.tables import flood_between, timed, view_timings, write  # noqa: E402
from tests.support.mounts import ENTRY, sh  # noqa: E402
from tests.support.netns import Hosts  # noqa: E402

IPERF_PORT = 5201
SETTLE = 0.5  # seconds after an attach, detach or filter switch before the window
CHANGED_CATS = 5  # cats after a flood that changed every flow
SENDER_CPU = 0  # iperf3's client; the server runs on SENDER_CPU + 1
RUN_TIMED = ("floor", "active", configurations.SHARED_TABLE, "active, filtered out", "reading headers only",
             configurations.ADDS_REFERENCE)


SERVICE = "198.18.99.1"  # --nat: the address A's client sends to, translated to B's in A's output


def translate_in_a(hosts):
    """A DNAT of SERVICE to B in A's output chain (conntrack and NAT on the
    measured path: A's send stages see the translation, B's follow it)."""
    hosts.run(hosts.a, "ip route add %s/32 dev %s" % (SERVICE, hosts.a_dev))
    for command in ("add table ip dpbench", "add chain ip dpbench out '{ type nat hook output priority -100; }'",
                    "add rule ip dpbench out ip daddr %s dnat to %s" % (SERVICE, hosts.B_ADDR)):
        hosts.run(hosts.a, "nft " + command)


class Traffic:
    """One long iperf3 run from A to B (UDP 64-byte flood or TCP bulk), and
    what B's veth has received so far: packets for UDP, bits for TCP. nat:
    sent to SERVICE, which A translates to B (translate_in_a)."""

    def __init__(self, hosts, udp, nat=False):
        self.hosts, self.udp, self.nat = hosts, udp, nat

    def __enter__(self):
        h = self.hosts
        self.server = subprocess.Popen(["ip", "netns", "exec", h.b, "iperf3", "-s", "-1", "-A", str(SENDER_CPU + 1),
                                        "-p", str(IPERF_PORT)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        client = "iperf3 -c %s -p %d -t 86400 -A %d" % (  # pinned: less noise
            SERVICE if self.nat else h.B_ADDR, IPERF_PORT, SENDER_CPU)
        if self.udp:
            client += " -u -b 0 -l 64"
        self.client = subprocess.Popen(["ip", "netns", "exec", h.a] + client.split(),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        if self.client.poll() is not None:
            raise RuntimeError("iperf3 did not start")
        return self

    def __exit__(self, *exc):
        for process in (self.client, self.server):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def received(self):
        # the server runs in B: its /proc/PID/net/dev is B's
        for line in Path("/proc/%d/net/dev" % self.server.pid).read_text().splitlines():
            name, _, counters = line.partition(":")
            if name.strip() == self.hosts.b_dev:
                fields = counters.split()
                return int(fields[1]) if self.udp else 8 * int(fields[0])
        raise RuntimeError("no %s in B" % self.hosts.b_dev)

    def rate(self, seconds):
        """Packets/s (UDP) or bits/s (TCP) over the next `seconds`."""
        time.sleep(SETTLE)
        started, before = time.perf_counter(), self.received()
        time.sleep(seconds)
        return (self.received() - before) / (time.perf_counter() - started)


def bpf_run_time(traffic, config, seconds):
    """(ns per program run, runs per UDP packet) of our programs (names dp_*)
    under config, from the kernel's own BPF statistics: the CPU time of the
    programs themselves."""
    stats_file = Path("/proc/sys/kernel/bpf_stats_enabled")
    was = stats_file.read_text().strip()

    def totals():
        programs = json.loads(sh("bpftool -j prog show", check=True).stdout or "[]")
        ours = [p for p in programs if p.get("name", "").startswith("dp_")]
        return sum(p.get("run_time_ns", 0) for p in ours), sum(p.get("run_cnt", 0) for p in ours)

    stats_file.write_text("1")
    try:
        with config():
            time.sleep(SETTLE)
            time_before, runs_before = totals()
            packets_before = traffic.received()
            time.sleep(seconds)
            time_after, runs_after = totals()
            packets = traffic.received() - packets_before
    finally:
        stats_file.write_text(was)
    runs = max(runs_after - runs_before, 1)
    return (time_after - time_before) / runs, runs / max(packets, 1)


def measure(args, configs, entry):
    """Runs the rounds and the timings: (rates, to_floor, run_times, activations,
    cats, flows). rates: every window's rate per configuration; to_floor: per
    round, each configuration's rate over the mean of the floor windows just
    before and after it."""
    rates = {name: {"tcp": [], "udp": []} for name in configs}
    to_floor = {name: {"tcp": [], "udp": []} for name in configs}

    window = {"udp": args.seconds, "tcp": args.tcp_seconds}
    with Hosts() as hosts:
        if args.nat:
            translate_in_a(hosts)
        for kind in ("udp",) if args.udp_only else ("udp", "tcp"):
            with Traffic(hosts, udp=kind == "udp", nat=args.nat) as traffic:
                def rate(name):
                    with configs[name]():
                        rates[name][kind].append(traffic.rate(window[kind]))
                    return rates[name][kind][-1]

                shuffler = random.Random(1)  # each round in another order, the same in every run
                for round_number in range(args.rounds):
                    order = [name for name in configs
                             if name != "floor" and (name != "bpftrace" or round_number < PEER_ROUNDS)]
                    shuffler.shuffle(order)  # no configuration always follows the same one
                    floor_before = rate("floor")
                    for name in order:  # each between two floor windows: a drift of speed cancels out
                        measured = rate(name)
                        floor_after = rate("floor")
                        to_floor[name][kind].append(2 * measured / (floor_before + floor_after))
                        floor_before = floor_after
                    to_floor["floor"][kind].append(1.0)
                    print("%s round %d of %d done" % (kind, round_number + 1, args.rounds), file=sys.stderr)
                if kind == "udp":  # a window of each per round, in turns: [(ns, events per packet)] each
                    timed_configs = [name for name in RUN_TIMED if name in configs]
                    run_times = {name: [] for name in timed_configs}
                    for round_number in range(args.run_time_rounds):
                        for name in timed_configs[::1 if round_number % 2 == 0 else -1]:
                            run_times[name].append(bpf_run_time(traffic, configs[name], args.seconds))

        activations = []
        for _ in range(args.rounds):
            activations.append(timed(lambda: write(entry, "activate")))
            write(entry, "deactivate")
        cats, flows = view_timings(entry, flood_between(hosts), args.rounds, CHANGED_CATS)
    return rates, to_floor, run_times, activations, cats, flows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=1, help="UDP window per configuration and round")
    parser.add_argument("--tcp-seconds", type=float, default=3,
                        help="TCP window (bulk TCP over veth swings more from second to second)")
    parser.add_argument("--run-time-rounds", type=int, default=RUN_TIME_ROUNDS,
                        help="rounds of BPF run time windows (UDP), each configuration once a round")
    parser.add_argument("--udp-only", action="store_true",
                        help="no TCP rounds: the UDP ratios are the ones this VM's noise blurs most")
    parser.add_argument("--nat", action="store_true",
                        help="the traffic through conntrack and a DNAT on its path (in A's output): what "
                             "following a flow through NAT costs, active and filtered out")
    parser.add_argument("--only", action="append", metavar="CONFIGURATION",
                        help="measure only this configuration against the floor (repeat it for more): "
                             "more rounds in the same time")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    subprocess.run([str(REPO / "scripts" / "setup.sh"), "--bench"], check=True)  # iperf3, bpftool
    have_bpftrace = subprocess.run(["which", "bpftrace"], capture_output=True).returncode == 0

    others = os.sched_getaffinity(0) - {SENDER_CPU}
    if others:  # attaching, reading counters and bpftool stay off the CPU that sends
        os.sched_setaffinity(0, others)

    base = Path(tempfile.mkdtemp(prefix="dp-bench-"))
    mountpoint = base / "mnt"
    sh("%s/mount.sh %s" % (REPO, mountpoint), check=True, timeout=900)
    entry = mountpoint / ENTRY
    with contextlib.ExitStack() as cleanup:  # unmounts and unloads, also when the set-up fails
        cleanup.callback(sh, "%s/mount.sh -u %s" % (REPO, mountpoint))
        configs = configurations.build(cleanup, have_bpftrace)
        if args.only:
            unknown = set(args.only) - set(configs)
            if unknown:
                parser.error("no configuration %s; there are: %s" % (", ".join(map(repr, sorted(unknown))),
                                                                     ", ".join(map(repr, configs))))
            configs = {name: config for name, config in configs.items() if name == "floor" or name in args.only}
        results = measure(args, configs, entry)
    print_results(args, *results)


if __name__ == "__main__":
    main()
