"""Two test hosts, A and B, in network namespaces joined by a veth pair.

Addresses come from the benchmarking range 198.18.0.0/15 (and 2001:db8::/32
for IPv6); everything is torn down on exit.
"""
import os
import subprocess
import sys
from pathlib import Path

from tests.mounts import sh

PEER = str(Path(__file__).parent / "peer.py")


class Hosts:
    A_ADDR, B_ADDR = "198.18.0.1", "198.18.0.2"

    def __init__(self):
        tag = os.getpid() % 100000
        self.a, self.b = "dpt-a-%d" % tag, "dpt-b-%d" % tag
        self.a_dev, self.b_dev = "dpta%d" % tag, "dptb%d" % tag

    def __enter__(self):
        sh("ip netns add {a} && ip netns add {b} && "
           "ip link add {ad} netns {a} type veth peer name {bd} netns {b} && "
           "ip -n {a} addr add {aa}/24 dev {ad} && ip -n {b} addr add {ba}/24 dev {bd} && "
           "ip -n {a} link set lo up && ip -n {b} link set lo up && "
           "ip -n {a} link set {ad} up && ip -n {b} link set {bd} up".format(
               a=self.a, b=self.b, ad=self.a_dev, bd=self.b_dev, aa=self.A_ADDR, ba=self.B_ADDR),
           check=True)
        return self

    def __exit__(self, *exc):
        sh("ip netns del %s; ip netns del %s" % (self.a, self.b))

    def run(self, ns, command):
        """A shell command inside a namespace."""
        return sh("ip netns exec %s %s" % (ns, command), check=True)

    def start_peer(self, ns, *args):
        """peer.py in a namespace; returns once its socket is ready."""
        process = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, PEER] + [str(a) for a in args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        assert line == "ready\n", (line, process.stderr.read())
        return process

    @staticmethod
    def finish(process, timeout=60):
        """Wait for a peer; its last printed line."""
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err
        lines = out.split()
        return lines[-1] if lines else ""

    def nft_counter(self, ns, hook, rule):
        """Packets counted by one nft rule in a fresh table of that namespace."""
        table = "dpt_%s" % hook
        self.run(ns, "nft add table inet %s" % table)
        self.run(ns, "nft add chain inet %s c '{ type filter hook %s priority 0; }'" % (table, hook))
        self.run(ns, "nft add rule inet %s c %s counter" % (table, rule))
        return lambda: int(self.run(ns, "nft list chain inet %s c" % table).stdout.split(
            "counter packets ")[1].split()[0])
