"""Two test hosts, A and B, in network namespaces joined by a veth pair.

Addresses come from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48;
neighbours are static, so no ARP or ND packet races the test traffic.
Everything is torn down on exit.
"""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.mounts import sh

PEER = str(Path(__file__).parent / "peer.py")
HANG_SECONDS = 600  # only bounds a hang; a healthy peer ends long before
QUIET_SECONDS = 2  # after the sender is done: how long a receiver waits for stragglers


class Hosts:
    A_ADDR, B_ADDR = "198.18.0.1", "198.18.0.2"
    A_ADDR6, B_ADDR6 = "2001:2::1", "2001:2::2"
    A_MAC, B_MAC = "02:00:c6:12:00:01", "02:00:c6:12:00:02"

    def __init__(self):
        tag = os.getpid() % 100000
        self.a, self.b = "dpt-a-%d" % tag, "dpt-b-%d" % tag
        self.a_dev, self.b_dev = "dpta%d" % tag, "dptb%d" % tag
        self._tables = itertools.count()

    def __enter__(self):
        a, b, ad, bd = self.a, self.b, self.a_dev, self.b_dev
        commands = [
            "ip netns add %s" % a, "ip netns add %s" % b,
            "ip link add %s netns %s address %s type veth peer name %s netns %s address %s"
            % (ad, a, self.A_MAC, bd, b, self.B_MAC),
        ]
        for ns, dev, addr, addr6, peer, peer6, peer_mac in (
                (a, ad, self.A_ADDR, self.A_ADDR6, self.B_ADDR, self.B_ADDR6, self.B_MAC),
                (b, bd, self.B_ADDR, self.B_ADDR6, self.A_ADDR, self.A_ADDR6, self.A_MAC)):
            commands += [
                "ip -n %s addr add %s/24 dev %s" % (ns, addr, dev),
                "ip -n %s addr add %s/64 dev %s nodad" % (ns, addr6, dev),
                "ip -n %s link set lo up" % ns,
                "ip -n %s link set %s up" % (ns, dev),
                "ip -n %s neigh replace %s lladdr %s dev %s nud permanent" % (ns, peer, peer_mac, dev),
                "ip -n %s neigh replace %s lladdr %s dev %s nud permanent" % (ns, peer6, peer_mac, dev),
            ]
        try:
            sh(" && ".join(commands), check=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        sh("ip netns del %s; ip netns del %s" % (self.a, self.b))

    def hop(self, ns, dev):
        """(netns inode, ifindex) of a device in a namespace: the kernel's key of that hop."""
        index = json.loads(self.run(ns, "ip -j link show dev %s" % dev).stdout)[0]["ifindex"]
        return os.stat("/run/netns/%s" % ns).st_ino, index

    def run(self, ns, command):
        """A shell command inside a namespace."""
        return sh("ip netns exec %s %s" % (ns, command), check=True)

    def start_peer(self, ns, *args, cpu=None):
        """peer.py in a namespace (on one CPU, if given); returns once its socket is ready."""
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        process = subprocess.Popen(["ip", "netns", "exec", ns] + pin + [sys.executable, PEER] + [str(a) for a in args],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        line = process.stdout.readline()
        assert line == "ready\n", (line, process.stderr.read())
        return process

    @staticmethod
    def finish(process, timeout=HANG_SECONDS, say=None):
        """Wait for a peer (telling it `say` on stdin first); its last printed line."""
        out, err = process.communicate(input=say, timeout=timeout)
        assert process.returncode == 0, err
        lines = out.split()
        return lines[-1] if lines else ""

    def nft_rule(self, ns, hook, match, verdict=""):
        """Adds `match counter verdict` in a fresh table of that namespace;
        returns a function that reads the rule's packet counter."""
        table = "dpt%d" % next(self._tables)
        self.run(ns, "nft add table inet %s" % table)
        self.run(ns, "nft add chain inet %s c '{ type filter hook %s priority 0; }'" % (table, hook))
        self.run(ns, "nft add rule inet %s c '%s counter %s'" % (table, match, verdict))
        return lambda: int(self.run(ns, "nft list chain inet %s c" % table).stdout.split(
            "counter packets ")[1].split()[0])
