"""The benchmark's printing: every configuration's rates and ratios to the
baseline and the floor with their 95% intervals, the BPF run times, the
timings, and the goals."""
import math
import os
import statistics

from benchmarks.configurations import PEER_ROUNDS
from benchmarks.stats import median_interval, middle

def print_results(args, rates, to_floor, run_times, activations, cats, flows):
    """Every configuration's rates and ratios with their intervals, the BPF
    run times, activation and cat, and the goals."""
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
          "%g s (TCP) per configuration, medians%s" % (os.uname().machine, os.cpu_count(), os.uname().release,
                                                       args.rounds, min(args.rounds, PEER_ROUNDS), args.seconds,
                                                       args.tcp_seconds,
                                                       "; the traffic through a DNAT (--nat)" if args.nat else ""))
    print("%-22s %10s %7s %7s %10s %7s %7s" % ("", "TCP Gb/s", "/base", "/floor", "UDP kpps", "/base", "/floor"))
    for name, m in median.items():
        print("%-22s %10.2f %7.3f %7.3f %10.1f %7.3f %7.3f" % (
            name, m["tcp"] / 1e9, ratio(name, "baseline", "tcp"), ratio(name, "floor", "tcp"),
            m["udp"] / 1e3, ratio(name, "baseline", "udp"), ratio(name, "floor", "udp")))
    print("95% intervals of the median ratios to the floor (\"floor again\": what this run measures for no difference):")
    for name in rates:
        print("  %-20s TCP %.3f-%.3f, UDP %.3f-%.3f" % (name, *interval(name, "floor", "tcp"),
                                                       *interval(name, "floor", "udp")))
    if args.run_time_rounds:  # --run-time-rounds 0: none measured
        print_run_times(args, run_times, 1e9 / median["floor"]["udp"])
    print("activation: %.2f s (median of %d)" % (statistics.median(activations), len(activations)))
    cat_ms = {case: statistics.median(times) * 1000 for case, times in cats.items()}
    print("cat with %d flows: %.0f ms after every flow changed (median of %d), %.0f ms unchanged since the "
          "last cat (median of %d), %.0f ms the first (the daemon meets the flows)"
          % (flows, cat_ms["changed"], len(cats["changed"]), cat_ms["unchanged"], len(cats["unchanged"]),
             cat_ms["first"]))
    for case, name in (("scrape", "drop-packet.prom"), ("json", "drop-packet.json")):
        print("%s (cat of %s) with %d flows: %.0f ms after every flow changed (median of %d)"
              % (case, name, flows, cat_ms[case], len(cats[case])))

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
        ("cat, 10,000 flows of 2 hops <= 150 ms", "met" if cat_ms["changed"] <= 150 else "NOT met"),
        ("JSON, 10,000 flows of 2 hops <= 200 ms", "met" if cat_ms["json"] <= 200 else "NOT met"),
        ("scrape with 10,000 flows <= 100 ms", "met" if cat_ms["scrape"] <= 100 else "NOT met"),
    ]
    for goal, verdict in goals:
        print("goal %-34s %s" % (goal, verdict))


def print_run_times(args, run_times, packet_ns):
    """The BPF run time per event of each configuration, against the floor's."""
    medians = {name: tuple(statistics.median(column) for column in zip(*taken)) for name, taken in run_times.items()}
    floor_ns = medians["floor"][0]
    print("BPF run time per event (kernel.bpf_stats_enabled; medians of %d UDP windows each, in turns; it counts "
          "its own clock reads):" % args.run_time_rounds)
    for name, (ns, per_packet) in medians.items():
        print("  %-20s %5.1f ns x %.2f events per packet%s" % (
            name, ns, per_packet, "" if name == "floor" else
            ": %+.1f ns per packet over the floor, %.1f%% of a packet's time at the floor's rate"
            % ((ns - floor_ns) * per_packet, 100 * (ns - floor_ns) * per_packet / packet_ns)))
