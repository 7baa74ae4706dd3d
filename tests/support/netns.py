"""Test hosts in network namespaces: A and B joined by a veth pair (Hosts),
A and C through a forwarding namespace R (Routed), A and B on a Linux bridge
in namespace H (Bridged), as a container host has them; many namespaces
each joined to one hub (Spokes), as a node's pods are.

Addresses come from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48;
neighbours are static, so no ARP or ND packet races the test traffic.
Everything is torn down on exit.
"""
import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from procfs_fuse.drop_packet.model.devices import in_namespaces
from tests.support.mounts import sh

PEER = str(Path(__file__).parent / "peer.py")
HANG_SECONDS = 600  # only bounds a hang; a healthy peer ends long before
QUIET_SECONDS = 2  # after the sender is done: how long a receiver waits for stragglers
COMMANDS_A_SHELL = 200  # set-up commands joined into one bash -c: its argument must stay under 128 KiB


class Namespaces:
    """Namespaces made by set-up commands, deleted on exit; peers run in them."""
    names = ()

    def __init__(self):
        self.tag = os.getpid() % 100000
        self._tables = itertools.count()

    def commands(self):
        raise NotImplementedError

    def __enter__(self):
        commands = ["ip netns add %s" % ns for ns in self.names] + self.commands()
        try:
            for first in range(0, len(commands), COMMANDS_A_SHELL):
                sh(" && ".join(commands[first:first + COMMANDS_A_SHELL]), check=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        sh("; ".join("ip netns del %s" % ns for ns in self.names))

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

    def send_udp(self, source_ns, dest_ns, dst, count, dport, sport):
        """count datagrams from source_ns to dst:dport in dest_ns: how many arrived."""
        receiver = self.start_peer(dest_ns, "udp-recv", dport, count, QUIET_SECONDS)
        self.finish(self.start_peer(source_ns, "udp-send", dst, dport, count, sport))
        return int(self.finish(receiver, say="sender done\n"))

    def nft_rule(self, ns, hook, match, verdict=""):
        """Adds `match counter verdict` in a fresh table of that namespace;
        returns a function that reads the rule's packet counter."""
        table = "dpt%d" % next(self._tables)
        self.run(ns, "nft add table inet %s" % table)
        self.run(ns, "nft add chain inet %s c '{ type filter hook %s priority 0; }'" % (table, hook))
        self.run(ns, "nft add rule inet %s c '%s counter %s'" % (table, match, verdict))
        return lambda: int(self.run(ns, "nft list chain inet %s c" % table).stdout.split(
            "counter packets ")[1].split()[0])


def veth(ns, dev, mac, peer_ns, peer, peer_mac):
    return "ip -n %s link add %s address %s type veth peer name %s netns %s address %s" % (
        ns, dev, mac, peer, peer_ns, peer_mac)


def up(ns, *devices):
    return ["ip -n %s link set %s up" % (ns, dev) for dev in ("lo",) + devices]


def neighbour(ns, dev, addr, mac):
    return "ip -n %s neigh replace %s lladdr %s dev %s nud permanent" % (ns, addr, mac, dev)


class Routed(Namespaces):
    """A -> R (forwarding) -> C. A's and C's devices have one name (as every
    container's eth0 has): only the namespace tells them apart."""
    A_ADDR, RA_ADDR, RC_ADDR, C_ADDR = "198.18.7.1", "198.18.7.254", "198.18.8.254", "198.18.8.1"
    A_MAC, RA_MAC, RC_MAC, C_MAC = ("02:00:c6:12:07:01", "02:00:c6:12:07:fe", "02:00:c6:12:08:fe",
                                    "02:00:c6:12:08:01")

    def __init__(self):
        super().__init__()
        self.a, self.r, self.c = ("dph-%s-%d" % (x, self.tag) for x in "arc")
        self.names = (self.a, self.r, self.c)
        self.a_dev = self.c_dev = "dpx%d" % self.tag
        self.ra_dev, self.rc_dev = "dpra%d" % self.tag, "dprc%d" % self.tag

    def commands(self):
        a, r, c = self.names
        return [veth(r, self.ra_dev, self.RA_MAC, a, self.a_dev, self.A_MAC),
                veth(r, self.rc_dev, self.RC_MAC, c, self.c_dev, self.C_MAC),
                "ip -n %s addr add %s/24 dev %s" % (a, self.A_ADDR, self.a_dev),
                "ip -n %s addr add %s/24 dev %s" % (r, self.RA_ADDR, self.ra_dev),
                "ip -n %s addr add %s/24 dev %s" % (r, self.RC_ADDR, self.rc_dev),
                "ip -n %s addr add %s/24 dev %s" % (c, self.C_ADDR, self.c_dev),
                *up(a, self.a_dev), *up(r, self.ra_dev, self.rc_dev), *up(c, self.c_dev),
                "ip -n %s route add default via %s" % (a, self.RA_ADDR),
                "ip -n %s route add default via %s" % (c, self.RC_ADDR),
                "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1" % r,
                neighbour(a, self.a_dev, self.RA_ADDR, self.RA_MAC),
                neighbour(r, self.ra_dev, self.A_ADDR, self.A_MAC),
                neighbour(r, self.rc_dev, self.C_ADDR, self.C_MAC),
                neighbour(c, self.c_dev, self.RC_ADDR, self.RC_MAC)]


class Bridged(Namespaces):
    """A and B on a Linux bridge in namespace H, each by a veth."""
    A_ADDR, B_ADDR = "198.18.9.1", "198.18.9.2"
    A_MAC, B_MAC, HA_MAC, HB_MAC = "02:00:c6:12:09:01", "02:00:c6:12:09:02", "02:00:c6:12:09:a1", "02:00:c6:12:09:b1"

    def __init__(self):
        super().__init__()
        self.a, self.h, self.b = ("dpb-%s-%d" % (x, self.tag) for x in "ahb")
        self.names = (self.a, self.h, self.b)
        self.a_dev, self.b_dev = "dpxa%d" % self.tag, "dpxb%d" % self.tag
        self.ha_dev, self.hb_dev, self.bridge = "dpha%d" % self.tag, "dphb%d" % self.tag, "dpbr%d" % self.tag

    def commands(self):
        a, h, b = self.names
        return [veth(h, self.ha_dev, self.HA_MAC, a, self.a_dev, self.A_MAC),
                veth(h, self.hb_dev, self.HB_MAC, b, self.b_dev, self.B_MAC),
                "ip -n %s link add %s type bridge" % (h, self.bridge),
                "ip -n %s link set %s master %s" % (h, self.ha_dev, self.bridge),
                "ip -n %s link set %s master %s" % (h, self.hb_dev, self.bridge),
                "ip -n %s addr add %s/24 dev %s" % (a, self.A_ADDR, self.a_dev),
                "ip -n %s addr add %s/24 dev %s" % (b, self.B_ADDR, self.b_dev),
                *up(a, self.a_dev), *up(h, self.ha_dev, self.hb_dev, self.bridge), *up(b, self.b_dev),
                neighbour(a, self.a_dev, self.B_ADDR, self.B_MAC),
                neighbour(b, self.b_dev, self.A_ADDR, self.A_MAC)]


class Spokes(Namespaces):
    """A hub namespace and `count` spokes, each joined to the hub by a veth of
    its own (eth0 in every spoke, as in every pod; a /30 each of 198.19.0.0/16)."""

    def __init__(self, count):
        super().__init__()
        assert count <= 256  # a byte of the MAC addresses
        self.hub = "dps-hub-%d" % self.tag
        self.spokes = ["dps-%d-%d" % (n, self.tag) for n in range(count)]
        self.names = (self.hub, *self.spokes)

    @staticmethod
    def addresses(n):
        """(spoke's, hub's) address of spoke n."""
        subnet = "198.19.%d.%%d" % (n // 64)
        return subnet % (4 * (n % 64) + 2), subnet % (4 * (n % 64) + 1)

    def commands(self):
        commands = []
        for n, spoke in enumerate(self.spokes):
            (mine, hubs), hub_dev = self.addresses(n), "dps%d" % n
            mac, hub_mac = "02:00:c6:13:%02x:02" % n, "02:00:c6:13:%02x:01" % n
            commands += [veth(self.hub, hub_dev, hub_mac, spoke, "eth0", mac),
                         "ip -n %s addr add %s/30 dev eth0" % (spoke, mine),
                         "ip -n %s addr add %s/30 dev %s" % (self.hub, hubs, hub_dev),
                         *up(spoke, "eth0"), "ip -n %s link set %s up" % (self.hub, hub_dev),
                         neighbour(spoke, "eth0", hubs, hub_mac), neighbour(self.hub, hub_dev, mine, mac)]
        return commands + up(self.hub)

    def flood(self, per_spoke, sport):
        """From every spoke, one datagram to each of per_spoke ports of its hub
        address (nothing listens there), from sport: the same flows each time."""
        hub_address = {os.stat("/run/netns/" + spoke).st_ino: self.addresses(n)[1]
                       for n, spoke in enumerate(self.spokes)}

        def send():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:  # made in the spoke: its socket
                sender.bind(("", sport))
                dest = hub_address[os.stat("/proc/thread-self/ns/net").st_ino]
                for port in range(10000, 10000 + per_spoke):
                    sender.sendto(b"f", (dest, port))
            return True

        sent = in_namespaces(["/run/netns/" + spoke for spoke in self.spokes], send)
        assert all(sent.values()), "a spoke could not send"


class Hosts(Namespaces):
    A_ADDR, B_ADDR = "198.18.0.1", "198.18.0.2"
    A_ADDR6, B_ADDR6 = "2001:2::1", "2001:2::2"
    A_MAC, B_MAC = "02:00:c6:12:00:01", "02:00:c6:12:00:02"

    def __init__(self):
        super().__init__()
        tag = self.tag
        self.a, self.b = "dpt-a-%d" % tag, "dpt-b-%d" % tag
        self.names = (self.a, self.b)
        self.a_dev, self.b_dev = "dpta%d" % tag, "dptb%d" % tag

    def commands(self):
        a, b, ad, bd = self.a, self.b, self.a_dev, self.b_dev
        commands = [
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
        return commands
