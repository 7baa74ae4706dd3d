#!/usr/bin/env python3
"""What reading every namespace's links costs at `cat` time: the daemon's own
netlink dump (model/devices.py, in a thread that setns'es: model/names.py)
against pyroute2's (#36 asked whether it can take that work over): its
NetNS, and its IPRoute in the daemon's own setns thread. Makes N namespaces
with a veth each, and deletes them. Root; pyroute2 from Debian's
python3-pyroute2 (scripts/setup.sh --bench installs it).
    sudo .venv/bin/python benchmarks/netlink.py [--namespaces 40] [--rounds 5]"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyroute2 import IPRoute, NetNS  # noqa: E402

from procfs_fuse.drop_packet.model.devices import devices_in, in_namespaces  # noqa: E402


def timed(rounds, read):
    """(median seconds of rounds reads, the last read's {namespace: sorted link names})."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        names = read()
        times.append(time.perf_counter() - started)
    return statistics.median(times), names


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespaces", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    spaces = ["dpnl%d" % n for n in range(args.namespaces)]
    subprocess.run(" && ".join("ip netns add %s && ip -n %s link add va type veth peer name vb" % (ns, ns)
                               for ns in spaces), shell=True, check=True)
    paths = {"/run/netns/" + ns: ns for ns in spaces}
    try:
        ours, by_ours = timed(args.rounds, lambda: {paths[path]: sorted(link.name for link in links.values())
                                                    for path, links in devices_in(list(paths)).items()})

        def by_netns():
            names = {}
            for ns in spaces:
                with NetNS(ns) as ipr:
                    names[ns] = sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links())
            return names

        def in_our_thread():
            with IPRoute() as ipr:
                return sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links())
        netns, by_theirs = timed(args.rounds, by_netns)
        ipr, by_ipr = timed(args.rounds, lambda: {paths[path]: names
                                                  for path, names in in_namespaces(list(paths), in_our_thread).items()})
        assert by_ours == by_theirs == by_ipr, "the three reads disagree"
        print("links of %d namespaces, medians of %d reads: ours %.1f ms; pyroute2 NetNS %.1f ms (%.0fx), "
              "pyroute2 IPRoute in our setns thread %.1f ms (%.0fx)" % (
                  args.namespaces, args.rounds, ours * 1000, netns * 1000, netns / ours, ipr * 1000, ipr / ours))
    finally:
        subprocess.run(" ; ".join("ip netns del %s" % ns for ns in spaces), shell=True)


if __name__ == "__main__":
    main()
