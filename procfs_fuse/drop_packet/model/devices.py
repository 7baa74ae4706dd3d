"""Drops no freed packet shows: device counters (netlink link statistics, in
each network namespace, entered with setns) and the per-CPU softnet backlog
(/proc/net/softnet_stat), as changes since the measurement started. Read at
`cat` time, never sampled in the background. Parsing is pure (canned bytes
in the tests)."""
import ctypes
import os
import socket
import struct
import threading
from dataclasses import dataclass

# struct rtnl_link_stats64 (IFLA_STATS64): the counters shown, by their index
# among its __u64 members (linux/if_link.h; the order is ABI)
LINK_COUNTERS = {"rx_dropped": 6, "tx_dropped": 7, "rx_over_errors": 11, "rx_fifo_errors": 14,
                 "rx_missed_errors": 15, "tx_fifo_errors": 18}
SOFTNET_COUNTERS = {"dropped": 1, "time_squeeze": 2}  # columns of /proc/net/softnet_stat (hex)
SOFTNET_CPU_COLUMN = 12  # the CPU's number, where the kernel prints it (4.x+: lines skip offline CPUs)

RTM_GETLINK, RTM_NEWLINK, NLMSG_DONE, NLMSG_ERROR = 18, 16, 3, 2
RTM_GETQDISC, RTM_NEWQDISC, TCA_KIND, TC_H_ROOT = 38, 36, 1, 0xFFFFFFFF
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
IFLA_IFNAME, IFLA_STATS64 = 3, 23
_NLMSG = struct.Struct("=IHHII")      # len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")    # family, type, index, flags, change
_TCMSG = struct.Struct("=BxxxiIII")   # family, ifindex, handle, parent, info
_RTA = struct.Struct("=HH")           # len, type
CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)  # setns: Python has os.setns only from 3.12


@dataclass(frozen=True)
class Link:
    ifindex: int
    name: str
    counters: dict  # {name in LINK_COUNTERS: value}


def dump_request(kind, header, seq=1):
    """A netlink dump request of that message type, its body a header of any family (ifinfomsg, tcmsg)."""
    body = header.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return _NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def link_dump_request(seq=1):
    """An RTM_GETLINK dump request."""
    return dump_request(RTM_GETLINK, _IFINFO, seq)


def _messages(data, kind_wanted, what):
    """([the bodies of data's messages of that type], done): netlink messages as received."""
    bodies, at, done = [], 0, False
    while at + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, at)
        if length < _NLMSG.size:
            break
        if kind == NLMSG_DONE:
            done = True
        elif kind == NLMSG_ERROR:
            error = -struct.unpack_from("=i", data, at + _NLMSG.size)[0]
            raise OSError(error, "%s: %s" % (what, os.strerror(error)))
        elif kind == kind_wanted:
            bodies.append(data[at + _NLMSG.size:at + length])
        at += (length + 3) & ~3
    return bodies, done


def _attributes(message, at):
    """(type, value) of the route attributes of message from offset at."""
    while at + _RTA.size <= len(message):
        length, kind = _RTA.unpack_from(message, at)
        if length < _RTA.size:
            break
        yield kind, message[at + _RTA.size:at + length]
        at += (length + 3) & ~3


def parse_links(data):
    """([Link] of the RTM_NEWLINK messages in data, done): netlink messages as received."""
    bodies, done = _messages(data, RTM_NEWLINK, "RTM_GETLINK")
    return [_link(body) for body in bodies], done


def _link(message):
    _family, _type, index, _flags, _change = _IFINFO.unpack_from(message)
    name, counters = "", {}
    for kind, value in _attributes(message, _IFINFO.size):
        if kind == IFLA_IFNAME:
            name = value.split(b"\0", 1)[0].decode(errors="replace")
        elif kind == IFLA_STATS64:
            words = struct.unpack_from("=%dQ" % (len(value) // 8), value)
            counters = {counter: words[i] for counter, i in LINK_COUNTERS.items() if i < len(words)}
    return Link(index, name, counters)


def parse_root_qdiscs(data):
    """({ifindex: kind} of the root qdiscs among the RTM_NEWQDISC messages in data, done)."""
    bodies, done = _messages(data, RTM_NEWQDISC, "RTM_GETQDISC")
    roots = {}
    for body in bodies:
        _family, ifindex, _handle, parent, _info = _TCMSG.unpack_from(body)
        if parent == TC_H_ROOT:
            roots.update((ifindex, value.split(b"\0", 1)[0].decode(errors="replace"))
                         for kind, value in _attributes(body, _TCMSG.size) if kind == TCA_KIND)
    return roots, done


def _dump(request, parse):
    """What parse finds in the answer to a netlink dump request, in the calling thread's network namespace."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as s:
        s.sendall(request)
        found, done = [], False
        while not done:
            batch, done = parse(s.recv(1 << 16))
            found.append(batch)
        return found


def own_devices():
    """{ifindex: Link} of the calling thread's network namespace, by netlink."""
    return {link.ifindex: link for batch in _dump(link_dump_request(), parse_links) for link in batch}


def root_qdiscs():
    """{ifindex: kind} of the root qdiscs of the calling thread's network namespace (none: noqueue)."""
    return {ifindex: kind for batch in _dump(dump_request(RTM_GETQDISC, _TCMSG), parse_root_qdiscs)
            for ifindex, kind in batch.items()}


def parse_softnet(text):
    """{cpu: {counter: value}} of /proc/net/softnet_stat."""
    per_cpu = {}
    for line, columns in enumerate(row.split() for row in text.splitlines() if row.strip()):
        cpu = int(columns[SOFTNET_CPU_COLUMN], 16) if len(columns) > SOFTNET_CPU_COLUMN else line
        per_cpu[cpu] = {counter: int(columns[i], 16) for counter, i in SOFTNET_COUNTERS.items()}
    return per_cpu


def changes(now, start):
    """{key: {counter: change}} of the counters that moved since start
    ({key: {counter: value}} each); a key new since start counts from 0, and a
    counter that went back (a device made again) from 0 too."""
    changed = {}
    for key, counters in now.items():
        before = start.get(key, {})
        delta = {c: v - before.get(c, 0) if v >= before.get(c, 0) else v for c, v in counters.items()}
        delta = {c: n for c, n in delta.items() if n}
        if delta:
            changed[key] = delta
    return changed


def in_namespaces(paths, function):
    """{path: function()'s result} in each network namespace of paths (nsfs
    files), run in one thread that enters them in turn (setns moves only
    the calling thread; a thread each cost twice the dump, measured); None
    where it cannot enter (gone meanwhile). The thread ends with the batch,
    so it holds no namespace after it."""
    results = {}

    def run():
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    if _LIBC.setns(fd, CLONE_NEWNET):
                        raise OSError(ctypes.get_errno(), "setns %s" % path)
                finally:
                    os.close(fd)
                results[path] = function()
            except OSError:
                results[path] = None

    thread = threading.Thread(target=run, name="dp-netns")
    thread.start()
    thread.join()
    return results


def devices_in(paths):
    """{path: own_devices() there, None where it could not enter} of the network namespaces at paths."""
    return in_namespaces(paths, own_devices)


def qdiscs_in(paths):
    """{path: root_qdiscs() there, None where it could not enter} of the network namespaces at paths."""
    return in_namespaces(paths, root_qdiscs)
