"""Names of hops a person recognises, resolved in user space.

A network namespace is named by its workload where it has one (`pod
NAMESPACE/NAME`, `container NAME`: workloads.py), else by its `ip netns` name
(a bind mount under /run/netns, or where container runtimes keep theirs),
else by a process living in it (`pid 4242 nginx`), else `net:[4026532281]`
as `ls -l /proc/PID/ns/net` prints it; the daemon's own is `host`. A device
by its name in its namespace; None where there is none or it is gone. A
namespace that is deleted keeps its counts, and its workload's name if it
had one, else its inode's from then on.
"""
import errno
import os
import re

from . import devices, workloads
from ..errors import ErrnoError
from ..capture.flows import Hop
from .diagnosis import HopName

NETNS_DIRS = ("/run/netns", "/run/docker/netns", "/var/run/docker/netns")
HOST = "host"
_INODE_NAME = re.compile(r"net:\[(\d+)\]$")
_PID_NAME = re.compile(r"pid (\d+)( .*)?$")
_WORKLOAD_NAME = re.compile(r"(?:pod (?P<pod_namespace>[^/]+)/(?P<pod>.+)|container (?P<container>.+))$")


def workload_fields(name):
    """{pod_namespace, pod} or {container} of a namespace's name where it is a workload's, else {}."""
    found = _WORKLOAD_NAME.match(name)
    return {k: v for k, v in found.groupdict().items() if v} if found else {}


def inode_name(inode):
    return "net:[%d]" % inode


class HopNames:
    """Hop -> HopName, over the namespaces of one moment (resolve())."""

    def __init__(self, proc="/proc", netns_dirs=NETNS_DIRS, devices=devices.devices_in,
                 host_devices=devices.own_devices, qdiscs=devices.qdiscs_in, host_qdiscs=devices.root_qdiscs,
                 node=workloads.NodeFiles()):
        """devices, qdiscs: {path: what is in the namespace at each path, None where it
        could not enter}; host_*: the daemon's own."""
        self._proc, self._dirs, self._node = proc, netns_dirs, node
        self._devices, self._host_devices = devices, host_devices
        self._qdiscs, self._host_qdiscs = qdiscs, host_qdiscs
        self._pid_of = {}  # inode -> the pid last found living in it
        self._workload_of = {}  # inode -> its workload's name, kept once its namespace is gone
        self._looked_up = set()  # inodes whose workload was looked up (when they were new)

    def _host_inode(self):
        return self._link_inode(os.path.join(self._proc, "self/ns/net"))

    @staticmethod
    def _link_inode(link):
        """The inode of a /proc/PID/ns/net link, None where it is gone."""
        try:
            found = _INODE_NAME.match(os.readlink(link))
        except OSError:
            return None
        return int(found.group(1)) if found else None

    def _named(self):
        """{inode: (name, path)} of the namespaces with a name: bind mounts, host."""
        named = {}
        for directory in self._dirs:
            try:
                entries = sorted(os.listdir(directory))
            except OSError:
                continue
            for entry in entries:
                path = os.path.join(directory, entry)
                try:
                    named.setdefault(os.stat(path).st_ino, (entry, path))
                except OSError:
                    pass
        host = self._host_inode()
        if host is not None:
            named[host] = (HOST, None)  # None: the daemon's own, no need to enter it
        return named

    def _process_in(self, inodes, remember):
        """{inode: pid} of a process living in each of these namespaces, where one does;
        remember: they are all the namespaces of a survey (so the cache forgets gone ones)."""
        found = {}
        for inode in inodes:  # the one found last time, if it still lives there
            pid = self._pid_of.get(inode)
            if pid and self._link_inode(os.path.join(self._proc, pid, "ns/net")) == inode:
                found[inode] = pid
        missing = set(inodes) - set(found)
        if missing:
            pids = sorted((p for p in os.listdir(self._proc) if p.isdigit()), key=int)
            for pid in pids:
                inode = self._link_inode(os.path.join(self._proc, pid, "ns/net"))
                if inode in missing:
                    found[inode] = pid
                    missing.discard(inode)
                    if not missing:
                        break
        if remember:
            self._pid_of = found
        return found

    def _comm(self, pid):
        try:
            with open(os.path.join(self._proc, pid, "comm")) as f:
                return f.read().strip()
        except OSError:
            return "?"

    def _look_up_workloads(self, processes, known):
        """Notes in _workload_of the namespaces that are a workload's ("pod NAMESPACE/NAME",
        "container NAME"), of {inode: pid} of a process in each (its cgroup names its pod)
        and the node's pods known ({UID: (namespace, name)})."""
        self._workload_of.update((inode, "container " + name)
                                 for inode, name in workloads.containers(self._node).items())
        for inode, pid in processes.items() if known else ():
            try:
                with open(os.path.join(self._proc, pid, "cgroup")) as f:
                    uid = workloads.pod_uid(f.read())
            except OSError:
                continue
            if uid in known:
                self._workload_of[inode] = "pod %s/%s" % known[uid]

    def _places(self, inodes, named, remember=True):
        """{inode: (name, the nsfs path to enter: None for the daemon's own, "" for a gone one)}."""
        host = {inode for inode, (name, _path) in named.items() if name == HOST}
        # the node's files are read when a namespace is new to us, not at every survey
        new = [i for i in inodes if i not in self._looked_up and i not in host]
        known = workloads.pods(self._node) if new else {}
        # a process in each: the unnamed ones' name, and for a new one where the node runs pods, its pod
        processes = self._process_in([i for i in inodes if i not in named or (known and i in new)], remember)
        if new:
            self._look_up_workloads({i: pid for i, pid in processes.items() if i in new}, known)
            self._looked_up.update(new)
        places = {}
        for inode in inodes:
            if inode in named:
                places[inode] = named[inode]
            elif inode in processes:
                pid = processes[inode]
                places[inode] = ("pid %s %s" % (pid, self._comm(pid)), os.path.join(self._proc, pid, "ns/net"))
            else:
                places[inode] = (inode_name(inode), "")
            if inode in self._workload_of and inode not in host:  # a gone one keeps its last name
                places[inode] = (self._workload_of[inode], places[inode][1])
        return places

    @staticmethod
    def _in_each(places, in_paths, own):
        """{inode: own() in the daemon's namespace, in_paths(paths)[path] in an
        entered one, None in a gone one} of places (_places)."""
        paths = sorted({path for _name, path in places.values() if path})
        entered = in_paths(paths) if paths else {}
        return {inode: own() if path is None else entered.get(path) if path else None
                for inode, (_name, path) in places.items()}

    def namespaces(self, inodes, named=None):
        """{inode: (name, {ifindex: devices.Link})} of these namespaces: a gone
        one by its workload's last name or its inode, without devices."""
        places = self._places(inodes, self._named() if named is None else named)
        found = self._in_each(places, self._devices, self._host_devices)
        return {inode: (name, found[inode] or {}) for inode, (name, _path) in places.items()}

    def root_qdiscs(self, hops):
        """{Hop: the kind of its device's root qdisc} of these hops: a netlink dump in each namespace."""
        places = self._places(sorted({hop.netns for hop in hops}), self._named(), remember=False)
        kinds = self._in_each(places, self._qdiscs, self._host_qdiscs)
        return {hop: kinds[hop.netns][hop.ifindex] for hop in hops if hop.ifindex in (kinds[hop.netns] or {})}

    def resolve(self, hops):
        """{Hop: HopName} of these hops."""
        return self.survey(hops, every_named=False)[0]

    def survey(self, hops, every_named=True):
        """({Hop: HopName}, {Hop: {counter: value}}) of these hops and of every
        device of every namespace known (every_named: those with a name too):
        one netlink dump per namespace gives names and counters."""
        hops = set(hops)
        named = self._named()
        inodes = {hop.netns for hop in hops} | (set(named) if every_named else set())
        spaces = self.namespaces(sorted(inodes), named)
        names, counters = {}, {}
        for inode, (name, links) in spaces.items():
            for link in links.values():
                hop = Hop(inode, link.ifindex)
                names[hop], counters[hop] = HopName(name, link.name), link.counters
        for hop in hops:
            if hop not in names:  # no device (0), or gone
                names[hop] = HopName(spaces[hop.netns][0], None)
        return names, counters

    def inode_of(self, text):
        """The inode of a namespace named as the report names it (or by its
        inode number); ErrnoError EINVAL if no namespace has that name."""
        if text.isdigit():
            return int(text)
        by_inode = _INODE_NAME.match(text)
        if by_inode:
            return int(by_inode.group(1))
        by_pid = _PID_NAME.match(text)
        if by_pid:
            inode = self._link_inode(os.path.join(self._proc, by_pid.group(1), "ns/net"))
            if inode is not None:
                return inode
        named = self._named()
        for inode, (name, _path) in named.items():
            if name == text:
                return inode
        if workload_fields(text):
            every = {self._link_inode(os.path.join(self._proc, pid, "ns/net")) for pid in os.listdir(self._proc)
                     if pid.isdigit()} | set(named)
            for inode, (name, _path) in self._places(sorted(i for i in every if i is not None), named).items():
                if name == text:
                    return inode
        raise ErrnoError(errno.EINVAL, "no network namespace %r (want a pod NAMESPACE/NAME, a container NAME, "
                                       "an `ip netns` name, host, pid N, net:[INODE] or an inode number)" % text)
