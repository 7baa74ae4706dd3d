#!/usr/bin/env python3
"""Cost of watching: what drop-packet costs the traffic it watches.

Run as root from a checkout set up by mount.sh or test.sh:
    sudo .venv/bin/python benchmarks/overhead.py [--rounds 25] [--seconds 1] [--tcp-seconds 3]
and, for a long run that tells the UDP ratios against the floor apart (one ratio
of 25 rounds varies by 1-2% on a VM):
    sudo .venv/bin/python benchmarks/overhead.py --udp-only --rounds 120 \
        --only "floor again" --only "active, filtered out" --only "reading headers only"

Two network namespaces joined by veth (tests/kernel/netns.py), iperf3 between
them: first a UDP flood of 64-byte packets, then a TCP bulk transfer, each one
long run. While it runs, interleaved rounds switch through the configurations
(in a shuffled order, each between two windows of the floor) and count what
the receiving veth took in during a window under each: no hooks (baseline);
the floor (an empty BPF program on each attach point an activation uses, from
the hook plan); the floor again, a second copy of it loaded apart (what this
method measures where there is no difference at all); active with no filter;
active with a filter that excludes the measured traffic; for reference, our
programs reduced to reading the headers (the parse every stage runs, nothing
else); and bpftrace counting on the same tracepoints, where bpftrace is
installed (in the first rounds only). A compile disturbs this VM's traffic for
a second or more, so every configuration of ours is compiled once, by the
product's own tracer (BccSession, as an activation builds it), and only
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
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procfs_fuse.drop_packet import hooks as hookplan  # noqa: E402
from procfs_fuse.drop_packet.flows import Filters  # noqa: E402
from procfs_fuse.drop_packet.tracer import BccSession, attach  # noqa: E402
from procfs_fuse.kernel import headers, tracefs  # noqa: E402
from tests.kernel.netns import Hosts  # noqa: E402
from tests.mounts import ENTRY, sh  # noqa: E402

IPERF_PORT = 5201
SETTLE = 0.5  # seconds after an attach, detach or filter switch before the window
COMPILE_SETTLE = 2  # after bpftrace starts or stops: its compile and teardown disturb the traffic
RUN_TIME_ROUNDS = 5  # rounds of BPF run time windows (one of each configuration per round)
PEER_ROUNDS = 5  # rounds that measure bpftrace too: a reference, and each start costs it a compile
CHANGED_CATS = 5  # cats after a flood that changed every flow
FLOOD_PORT = 40100  # the floods' source port: each flood meets the same 10,000 flows
SENDER_CPU = 0  # iperf3's client; the server runs on SENDER_CPU + 1


def planned_hooks():
    tracefs.ensure_mounted()
    return [h.chosen for h in hookplan.plan(tracefs.KernelHooks().why_unavailable) if h.chosen]


def empty_program(name, candidate):
    if candidate.kind == hookplan.KPROBE:
        return "int %s(struct pt_regs *ctx) { return 0; }" % name
    if candidate.record:
        return "int %s(void *ctx) { return 0; }" % name
    return "int %s(struct bpf_raw_tracepoint_args *ctx) { return 0; }" % name


def detach(bpf, candidate):
    """Undoes tracer.attach."""
    if candidate.kind == hookplan.KPROBE:
        bpf.detach_kprobe(event=candidate.target.encode())
    elif candidate.record:
        bpf.detach_tracepoint(tp=candidate.target.encode())
    else:
        bpf.detach_raw_tracepoint(tp=candidate.target.split(":")[1].encode())


class Loaded:
    """Programs loaded once, attached for a window and detached after it: no
    compile between windows."""

    def __init__(self, bpf, functions):
        """functions: [(candidate, name of the function to attach to it)]."""
        self.bpf, self.functions = bpf, functions

    @contextlib.contextmanager
    def attached(self):
        for candidate, function in self.functions:
            attach(self.bpf, candidate, function)
        try:
            yield
        finally:
            for candidate, _function in self.functions:
                detach(self.bpf, candidate)


def floor_programs():
    """An empty program on each attach point an activation would use, as an
    activation attaches a program on each."""
    from bcc import BPF
    headers.point_bcc_at_headers()
    hooks = planned_hooks()
    names = ["dp_floor_%d" % i for i in range(len(hooks))]
    bpf = BPF(text="#include <uapi/linux/ptrace.h>\n" + "\n".join(
        empty_program(name, c) for name, c in zip(names, hooks)))
    return Loaded(bpf, list(zip(hooks, names)))


def session_programs(extra_cflags=()):
    """The programs an activation compiles (BccSession), detached, to be
    attached window by window: (session, Loaded)."""
    session = BccSession(Filters(), extra_cflags=extra_cflags)
    chosen = [h.chosen for h in session.hooks if h.chosen]
    for candidate in chosen:
        detach(session.bpf, candidate)
    if chosen != planned_hooks():
        session.close()
        raise RuntimeError("the programs did not attach as the plan says")
    return session, Loaded(session.bpf, [(c, c.function) for c in chosen])


@contextlib.contextmanager
def filtered_out(session, programs):
    """Our programs with a filter that excludes the measured traffic."""
    session.set_filters(Filters(dest_port=1))
    try:
        with programs.attached():
            yield
    finally:
        session.set_filters(Filters())


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
        time.sleep(COMPILE_SETTLE)  # it prints before the last probe is attached
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        time.sleep(COMPILE_SETTLE)


ENTRY_FILE = None


def write(command):
    with open(ENTRY_FILE, "w") as f:
        f.write(command + "\n")


class Traffic:
    """One long iperf3 run from A to B (UDP 64-byte flood or TCP bulk), and
    what B's veth has received so far: packets for UDP, bits for TCP."""

    def __init__(self, hosts, udp):
        self.hosts, self.udp = hosts, udp

    def __enter__(self):
        h = self.hosts
        self.server = subprocess.Popen(["ip", "netns", "exec", h.b, "iperf3", "-s", "-1", "-A", str(SENDER_CPU + 1),
                                        "-p", str(IPERF_PORT)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        client = "iperf3 -c %s -p %d -t 86400 -A %d" % (h.B_ADDR, IPERF_PORT, SENDER_CPU)  # pinned: less noise
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


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def middle(values):
    """The median; NaN for a configuration or traffic this run left out."""
    return statistics.median(values) if values else math.nan


def median_interval(values):
    """(low, high): a 95% interval for the median of values, from their order
    statistics: by rank, counted from 1, n/2 - 0.98 sqrt(n) and 1 + n/2 + 0.98
    sqrt(n), rounded (the sign test's ranks, where n is not tiny); all of them
    where they are too few for that; NaN where there are none."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return math.nan, math.nan
    reach = 0.98 * math.sqrt(n)
    low, high = int(n / 2 - reach + 0.5), int(1 + n / 2 + reach + 0.5)
    return ordered[max(low, 1) - 1], ordered[min(high, n) - 1]


def measure(args, configs):
    """Runs the rounds and the timings: (rates, to_floor, run_times, activations,
    cats, flows). rates: every window's rate per configuration; to_floor: per
    round, each configuration's rate over the mean of the floor windows just
    before and after it."""
    rates = {name: {"tcp": [], "udp": []} for name in configs}
    to_floor = {name: {"tcp": [], "udp": []} for name in configs}

    window = {"udp": args.seconds, "tcp": args.tcp_seconds}
    with Hosts() as hosts:
        for kind in ("udp",) if args.udp_only else ("udp", "tcp"):
            with Traffic(hosts, udp=kind == "udp") as traffic:
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
                if kind == "udp":  # a window of each per round, for RUN_TIME_ROUNDS rounds: medians
                    timed_configs = [name for name in ("floor", "active", "active, filtered out",
                                                       "reading headers only") if name in configs]
                    samples = {name: [] for name in timed_configs}
                    for _ in range(RUN_TIME_ROUNDS):
                        for name in timed_configs:
                            samples[name].append(bpf_run_time(traffic, configs[name], args.seconds))
                    run_times = {name: tuple(statistics.median(column) for column in zip(*taken))
                                 for name, taken in samples.items()}

        activations = []
        for _ in range(args.rounds):
            activations.append(timed(lambda: write("activate")))
            write("deactivate")
        write("max-flows 20000")
        write("activate")

        def flood():  # one datagram to each of 10,000 ports: every flow's counts move on
            hosts.finish(hosts.start_peer(hosts.a, "udp-flood", hosts.B_ADDR, 10000, FLOOD_PORT), timeout=120)

        def cat():
            return timed(ENTRY_FILE.read_bytes)

        flood()
        cats = {"first": [cat()], "unchanged": [cat() for _ in range(args.rounds)], "changed": []}
        for _ in range(CHANGED_CATS):
            flood()
            cats["changed"].append(cat())
        flows = ENTRY_FILE.read_text().count("\nprotocol: ")
        write("deactivate")
        write("max-flows")
    return rates, to_floor, run_times, activations, cats, flows


def main():
    global ENTRY_FILE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=1, help="UDP window per configuration and round")
    parser.add_argument("--tcp-seconds", type=float, default=3,
                        help="TCP window (bulk TCP over veth swings more from second to second)")
    parser.add_argument("--udp-only", action="store_true",
                        help="no TCP rounds: the UDP ratios are the ones this VM's noise blurs most")
    parser.add_argument("--only", action="append", metavar="CONFIGURATION",
                        help="measure only this configuration against the floor (repeat it for more): "
                             "more rounds in the same time")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    for tool in ("iperf3", "bpftool"):  # bpftool reads the programs' run times
        if not subprocess.run(["which", tool], capture_output=True).returncode == 0:
            subprocess.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq " + tool, shell=True, check=True)
    have_bpftrace = subprocess.run(["which", "bpftrace"], capture_output=True).returncode == 0

    others = os.sched_getaffinity(0) - {SENDER_CPU}
    if others:  # attaching, reading counters and bpftool stay off the CPU that sends
        os.sched_setaffinity(0, others)

    base = Path(tempfile.mkdtemp(prefix="dp-bench-"))
    mountpoint = base / "mnt"
    sh("%s/mount.sh %s" % (REPO, mountpoint), check=True, timeout=900)
    ENTRY_FILE = mountpoint / ENTRY
    with contextlib.ExitStack() as cleanup:  # unmounts and unloads, also when the set-up fails
        cleanup.callback(sh, "%s/mount.sh -u %s" % (REPO, mountpoint))
        floor = floor_programs()
        cleanup.callback(floor.bpf.cleanup)
        floor_again = floor_programs()
        cleanup.callback(floor_again.bpf.cleanup)
        session, ours = session_programs()
        cleanup.callback(session.close)
        headers_session, headers_only = session_programs(["-DDP_PARSE_ONLY"])
        cleanup.callback(headers_session.close)
        configs = {"baseline": contextlib.nullcontext, "floor": floor.attached, "floor again": floor_again.attached,
                   "active": ours.attached,
                   "active, filtered out": lambda: filtered_out(session, ours),
                   "reading headers only": headers_only.attached}
        if have_bpftrace:
            configs["bpftrace"] = Bpftrace
        if args.only:
            unknown = set(args.only) - set(configs)
            if unknown:
                parser.error("no configuration %s; there are: %s" % (", ".join(map(repr, sorted(unknown))),
                                                                     ", ".join(map(repr, configs))))
            configs = {name: config for name, config in configs.items() if name == "floor" or name in args.only}
        rates, to_floor, run_times, activations, cats, flows = measure(args, configs)

    median = {name: {kind: middle(v) for kind, v in r.items()} for name, r in rates.items()}

    def per_round(name, reference, kind):
        """Per round, name's rate over reference's, both taken against the floor
        windows around them: this VM's speed drifts over seconds."""
        if name not in to_floor or reference not in to_floor:  # left out by --only
            return []
        return [a / b for a, b in zip(to_floor[name][kind], to_floor[reference][kind])]

    def ratio(name, reference, kind):
        return middle(per_round(name, reference, kind))

    def interval(name, reference, kind):
        return median_interval(per_round(name, reference, kind))

    print("machine: %s, %d CPUs, kernel %s; %d rounds (bpftrace in the first %d), a window of %g s (UDP) and "
          "%g s (TCP) per configuration, medians" % (os.uname().machine, os.cpu_count(), os.uname().release,
                                                     args.rounds, min(args.rounds, PEER_ROUNDS), args.seconds,
                                                     args.tcp_seconds))
    print("%-22s %10s %7s %7s %10s %7s %7s" % ("", "TCP Gb/s", "/base", "/floor", "UDP kpps", "/base", "/floor"))
    for name, m in median.items():
        print("%-22s %10.2f %7.3f %7.3f %10.1f %7.3f %7.3f" % (
            name, m["tcp"] / 1e9, ratio(name, "baseline", "tcp"), ratio(name, "floor", "tcp"),
            m["udp"] / 1e3, ratio(name, "baseline", "udp"), ratio(name, "floor", "udp")))
    print("95% intervals of the median ratios to the floor (\"floor again\": what this run measures for no difference):")
    for name in rates:
        print("  %-20s TCP %.3f-%.3f, UDP %.3f-%.3f" % (name, *interval(name, "floor", "tcp"),
                                                       *interval(name, "floor", "udp")))
    floor_ns = run_times["floor"][0]
    packet_ns = 1e9 / median["floor"]["udp"]
    print("BPF run time per event (kernel.bpf_stats_enabled; medians of %d UDP windows each, interleaved; it counts "
          "its own clock reads):" % RUN_TIME_ROUNDS)
    for name, (ns, per_packet) in run_times.items():
        print("  %-20s %5.1f ns x %.2f events per packet%s" % (
            name, ns, per_packet, "" if name == "floor" else
            ": %+.1f ns per packet over the floor, %.1f%% of a packet's time at the floor's rate"
            % ((ns - floor_ns) * per_packet, 100 * (ns - floor_ns) * per_packet / packet_ns)))
    print("activation: %.2f s (median of %d)" % (statistics.median(activations), len(activations)))
    cat_ms = {case: statistics.median(times) * 1000 for case, times in cats.items()}
    print("cat with %d flows: %.0f ms after every flow changed (median of %d), %.0f ms unchanged since the "
          "last cat (median of %d), %.0f ms the first (the daemon meets the flows)"
          % (flows, cat_ms["changed"], len(cats["changed"]), cat_ms["unchanged"], len(cats["unchanged"]),
             cat_ms["first"]))

    def ratio_goal(name, reference, kind, least):
        """Met or not by the median, as the goals are set; with its 95%
        interval, and a word where that holds the threshold."""
        median_ratio, (low, high) = ratio(name, reference, kind), interval(name, reference, kind)
        if math.isnan(median_ratio):
            return "not measured"
        return "%s (%.4f, 95%% interval %.4f-%.4f%s)" % (  # 4 places: 0.9896 would print as 0.990
            "met" if median_ratio >= least else "NOT met", median_ratio, low, high,
            ": it holds the goal, this run cannot tell" if low < least <= high else "")

    goals = [
        ("active/floor TCP >= 0.97", ratio_goal("active", "floor", "tcp", 0.97)),
        ("active/floor UDP >= 0.97", ratio_goal("active", "floor", "udp", 0.97)),
        ("active/baseline TCP >= 0.95", ratio_goal("active", "baseline", "tcp", 0.95)),
        ("active/baseline UDP >= 0.85", ratio_goal("active", "baseline", "udp", 0.85)),
        ("filtered/floor TCP >= 0.99", ratio_goal("active, filtered out", "floor", "tcp", 0.99)),
        ("filtered/floor UDP >= 0.99", ratio_goal("active, filtered out", "floor", "udp", 0.99)),
        ("activation <= 2 s", "met" if statistics.median(activations) <= 2 else "NOT met"),
        ("cat with 10,000 flows <= 100 ms", "met" if cat_ms["changed"] <= 100 else "NOT met"),
    ]
    for goal, verdict in goals:
        print("goal %-34s %s" % (goal, verdict))


if __name__ == "__main__":
    main()
