#!/usr/bin/env python3
"""The tables at scale, on the running kernel: their kernel memory (each map's
memlock, at the default max-flows and at a million), and what reading 10,000
flows of two hops costs (cat, JSON, a scrape): between two namespaces, and
from 200 namespaces to a hub, every hop named as a container host's are;
beside the offline render of the same size (benchmarks/render.py: no kernel)
to compare machines by. As root,
from a checkout set up by mount.sh or test.sh:
    .venv/bin/python benchmarks/tables.py [--rounds 5]
and in a guest with 64 possible CPUs on this machine's 2 (lane 2's, under TCG):
    .venv/bin/python tests/qemu/lane.py --run benchmarks/tables.py
Prints the README's kernel memory table: measured for this kernel's possible
CPUs, computed for others from the measured sizes (shared tables: per entry;
slots and memos: per CPU). A measurement, not a test: tests/kernel/test_memory.py
holds the bounds."""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.render import offline_ms  # noqa: E402
from procfs_fuse.drop_packet.capture.settings import DEFAULT_MAX_FLOWS, MAX_FLOWS, MAX_MAX_FLOWS  # noqa: E402
from tests.support.kernel_memory import PER_CPU, SHARED, possible_cpus, table_memory  # noqa: E402
from tests.support.mounts import ENTRY, sh, wait_for  # noqa: E402
from tests.support.netns import Hosts, Spokes  # noqa: E402

FLOWS = 10000
FLOOD_PORT = 40100  # the floods' source port: each flood meets the same 10,000 flows
SPOKES = 200  # namespaces of the spread reading: a container host's pods
CPU_COUNTS = (2, 64, 256)
MB = 1 << 20


def write(entry, command):
    with open(entry, "w") as f:
        f.write(command + "\n")


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def flood_between(hosts):
    """A's flood of one datagram to each of 10,000 ports of B: 10,000 flows of two hops."""
    return lambda: hosts.finish(hosts.start_peer(hosts.a, "udp-flood", hosts.B_ADDR, FLOWS, FLOOD_PORT), timeout=600)


def flood_from_spokes(spokes):
    """Each spoke's flood to its hub: 10,000 flows of two hops over the spokes' namespaces and the hub's."""
    return lambda: spokes.flood(FLOWS // len(spokes.spokes), FLOOD_PORT)


def view_timings(entry, flood, rounds, changed_rounds=5):
    """{case: [seconds]} of reading entry with the 10,000 flows of flood()
    (each time the same ones; every flow's counts move on): a cat "first"
    (the daemon meets the flows), "unchanged" since the last, "changed" (after
    every flow's counts moved, which the goals count), and "scrape" and "json"
    (changed); and how many flows the text showed. Leaves it inactive."""
    write(entry, "%s %d" % (MAX_FLOWS, 4 * FLOWS))  # (flow, hop) entries: two hops each, and room
    write(entry, "activate")
    flood()
    cats = {"first": [timed(entry.read_bytes)], "unchanged": [timed(entry.read_bytes) for _ in range(rounds)],
            "changed": []}
    for _ in range(changed_rounds):
        flood()
        cats["changed"].append(timed(entry.read_bytes))
    for case, suffix in (("scrape", ".prom"), ("json", ".json")):  # .prom: what node_exporter's collector reads
        cats[case] = []
        for _ in range(changed_rounds):
            flood()
            cats[case].append(timed(Path(str(entry) + suffix).read_bytes))
    flows = entry.read_text().count("\nprotocol: ")
    write(entry, "deactivate")
    write(entry, MAX_FLOWS)
    return cats, flows


def kernel_allocations():
    """Bytes of the kernel's vmalloc and per-CPU allocations (/proc/meminfo), where big BPF maps live."""
    fields = dict(line.split(":") for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(fields[name].split()[0]) << 10 for name in ("VmallocUsed", "Percpu"))


def memory(entry):
    """{max_flows: ({map name: (max_entries, memlock)}, growth of kernel_allocations)} of an
    activation at the default and at a million, or (None, error) where it failed."""
    measured = {}
    for max_flows in (DEFAULT_MAX_FLOWS, MAX_MAX_FLOWS):
        write(entry, "%s %d" % (MAX_FLOWS, max_flows))
        wait_for(lambda: not table_memory(), "the last activation's maps to be freed")
        before = kernel_allocations()
        try:
            write(entry, "activate")
        except OSError as error:
            measured[max_flows] = (None, "activate: %s" % error)
            continue
        measured[max_flows] = (table_memory(), kernel_allocations() - before)
        write(entry, "deactivate")
    write(entry, MAX_FLOWS)
    return measured


def print_memory(measured, cpus):
    print("kernel memory of the tables (memlock), this kernel: %s, %d possible CPUs" % (os.uname().release, cpus))
    for max_flows, (tables, grown) in measured.items():
        print("  max-flows %d: %s" % (max_flows, grown if tables is None else
                                      "the kernel's vmalloc and per-CPU use grew %.1f MB at activation" % (grown / MB)))
    default, big = (measured[n][0] for n in (DEFAULT_MAX_FLOWS, MAX_MAX_FLOWS))
    if default is None or big is None:
        return
    for name, (entries, memlock) in sorted(default.items()):
        per = "%.0f bytes per CPU" % (memlock / cpus) if name in PER_CPU else "%.0f bytes per entry" % (
            big[name][1] / big[name][0])
        print("  %-12s %8d entries %10d bytes; at a million flows %8d entries %11d bytes: %s"
              % (name, entries, memlock, *big[name], per))
    per_cpu = sum(default[name][1] for name in PER_CPU) / cpus
    print("| possible CPUs | at the default %d flows | at max-flows %d |" % (DEFAULT_MAX_FLOWS, MAX_MAX_FLOWS))
    for count in sorted(set(CPU_COUNTS) | {cpus}):
        totals = ["%.1f MB" % ((sum(m[name][1] for name in SHARED if name in m) + per_cpu * count) / MB)
                  for m in (default, big)]
        print("| %d%s | %s | %s |" % (count, " (measured)" if count == cpus else "", *totals))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    mountpoint = Path(tempfile.mkdtemp(prefix="dp-tables-")) / "mnt"
    sh("%s/mount.sh %s" % (REPO, mountpoint), check=True, timeout=900)
    entry = mountpoint / ENTRY
    try:
        cpus = possible_cpus()
        print_memory(memory(entry), cpus)
        with Hosts() as hosts:
            cats, flows = view_timings(entry, flood_between(hosts), args.rounds)
        with Spokes(SPOKES) as spokes:
            spread = view_timings(entry, flood_from_spokes(spokes), args.rounds)
    finally:
        sh("%s/mount.sh -u %s" % (REPO, mountpoint))
    ms = {case: statistics.median(times) * 1000 for case, times in cats.items()}
    offline = offline_ms(args.rounds)
    for where, (timings, count) in (("between two namespaces", (cats, flows)),
                                    ("from %d namespaces to a hub, each hop named" % SPOKES, spread)):
        medians = {case: statistics.median(times) * 1000 for case, times in timings.items()}
        print("reading %d flows of 2 hops %s, %d possible CPUs (ms, medians): cat %.0f (unchanged %.0f, first %.0f), "
              "JSON %.0f, scrape %.0f" % (count, where, cpus, medians["changed"], medians["unchanged"],
                                          medians["first"], medians["json"], medians["scrape"]))
    print("the same size rendered offline (benchmarks/render.py, no kernel; compares machines): cat %.0f, JSON %.0f, "
          "scrape %.0f; so the reads cost %.2f, %.2f, %.2f times the offline render"
          % (offline["cat"], offline["json"], offline["scrape"], ms["changed"] / offline["cat"],
             ms["json"] / offline["json"], ms["scrape"] / offline["scrape"]))


if __name__ == "__main__":
    main()
