"""Hop names from canned /run/netns and /proc trees."""
import errno
import json
import os

import pytest

from procfs_fuse.drop_packet.model.devices import Link
from procfs_fuse.drop_packet.errors import ErrnoError
from procfs_fuse.drop_packet.capture.flows import Hop
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.names import HopNames, workload_fields
from procfs_fuse.drop_packet.model.workloads import NodeFiles, containers, pod_uid, pods


@pytest.fixture
def tree(tmp_path):
    """/run/netns/mhA (a bind mount there: here a file, its inode the namespace's),
    /proc/self in the daemon's namespace 100 (as is pid 7), pid 42 nginx in 200."""
    (tmp_path / "netns").mkdir()
    (tmp_path / "netns" / "mhA").write_text("")
    for pid, inode, comm in (("self", 100, "python3"), ("7", 100, "sshd"), ("42", 200, "nginx"),
                             ("43", 200, "nginx-worker")):
        (tmp_path / "proc" / pid / "ns").mkdir(parents=True)
        os.symlink("net:[%d]" % inode, tmp_path / "proc" / pid / "ns" / "net")
        (tmp_path / "proc" / pid / "comm").write_text(comm + "\n")
    (tmp_path / "proc" / "meminfo").write_text("")
    return tmp_path


def links(**names_by_index):
    return {int(i[1:]): Link(int(i[1:]), name, {"tx_dropped": int(i[1:]) * 10}) for i, name in names_by_index.items()}


def names(tree):
    devices = {str(tree / "netns" / "mhA"): links(i2="vA"), str(tree / "proc" / "42" / "ns" / "net"): links(i3="eth0")}
    qdiscs = {str(tree / "netns" / "mhA"): {2: "tbf"}, str(tree / "proc" / "42" / "ns" / "net"): {3: "htb"}}
    return HopNames(proc=str(tree / "proc"), netns_dirs=(str(tree / "netns"), str(tree / "missing")),
                    devices=lambda paths: {path: devices.get(path) for path in paths},  # None: not entered
                    host_devices=lambda: links(i1="lo"),
                    qdiscs=lambda paths: {path: qdiscs.get(path) for path in paths},
                    host_qdiscs=lambda: {1: "noqueue"},
                    node=NodeFiles(str(tree / "node")))  # the node's kubelet and Docker files, where a test makes them


def test_a_namespace_by_its_ip_netns_name_then_as_host_then_by_a_process_then_by_inode(tree):
    mh_a = os.stat(tree / "netns" / "mhA").st_ino
    hops = [Hop(mh_a, 2), Hop(mh_a, 9), Hop(mh_a, 0), Hop(100, 1), Hop(200, 3), Hop(300, 5)]
    assert names(tree).resolve(hops) == {
        Hop(mh_a, 2): HopName("mhA", "vA"),
        Hop(mh_a, 9): HopName("mhA", None),  # that device is gone
        Hop(mh_a, 0): HopName("mhA", None),  # no device: a drop at a socket
        Hop(100, 1): HopName("host", "lo"),
        Hop(200, 3): HopName("pid 42 nginx", "eth0"),  # the lowest pid living there
        Hop(300, 5): HopName("net:[300]", None),  # nothing names it any more
    }


def test_the_root_qdisc_of_each_hop_in_its_namespace_where_it_has_one(tree):
    mh_a = os.stat(tree / "netns" / "mhA").st_ino
    hops = [Hop(mh_a, 2), Hop(mh_a, 9), Hop(100, 1), Hop(200, 3), Hop(300, 5)]
    assert names(tree).root_qdiscs(hops) == {Hop(mh_a, 2): "tbf", Hop(100, 1): "noqueue", Hop(200, 3): "htb"}


def test_a_deleted_namespace_is_named_by_its_inode_from_then_on(tree):
    resolver = names(tree)
    mh_a = os.stat(tree / "netns" / "mhA").st_ino
    assert resolver.resolve([Hop(mh_a, 2)]) == {Hop(mh_a, 2): HopName("mhA", "vA")}
    (tree / "netns" / "mhA").unlink()
    assert resolver.resolve([Hop(mh_a, 2)]) == {Hop(mh_a, 2): HopName("net:[%d]" % mh_a, None)}
    (tree / "proc" / "42" / "ns" / "net").unlink()  # pid 42 left: the next process living there names it
    assert resolver.resolve([Hop(200, 1)])[Hop(200, 1)].netns == "pid 43 nginx-worker"


def test_a_netns_filter_takes_the_names_the_report_prints_or_an_inode(tree):
    resolver = names(tree)
    assert resolver.inode_of("mhA") == os.stat(tree / "netns" / "mhA").st_ino
    assert resolver.inode_of("host") == 100
    assert resolver.inode_of("pid 42 nginx") == resolver.inode_of("pid 42") == 200
    assert resolver.inode_of("net:[300]") == resolver.inode_of("300") == 300
    with pytest.raises(ErrnoError, match="no network namespace 'mhZ'") as raised:
        resolver.inode_of("mhZ")
    assert raised.value.errno == errno.EINVAL


def test_a_survey_names_and_counts_every_device_of_every_named_namespace_and_of_the_hops(tree):
    mh_a = os.stat(tree / "netns" / "mhA").st_ino
    names_of, counters = names(tree).survey([Hop(200, 3), Hop(300, 5)])
    assert counters == {Hop(mh_a, 2): {"tx_dropped": 20}, Hop(100, 1): {"tx_dropped": 10},
                        Hop(200, 3): {"tx_dropped": 30}}  # 300 is gone: no devices
    assert names_of[Hop(mh_a, 2)] == HopName("mhA", "vA") and names_of[Hop(300, 5)] == HopName("net:[300]", None)


UID = "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f"
CGROUPS = {  # /proc/PID/cgroup of a pod's process, as each kubelet cgroup driver writes it
    "systemd": "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/"
               "cri-containerd-0a1b2c.scope\n" % UID.replace("-", "_"),
    "cgroupfs": "12:memory:/kubepods/besteffort/pod%s/0a1b2c\n0::/kubepods/besteffort/pod%s/0a1b2c\n" % (UID, UID),
}


def node_with(tree, cgroup):
    """The tree, its pid 42's namespace (200) a pod's: its cgroup, the kubelet's log
    directory for default/web-0; a Docker container "api" whose sandbox is /run/netns/mhA."""
    (tree / "proc" / "42" / "cgroup").write_text(cgroup)
    (tree / "proc" / "7" / "cgroup").write_text("0::/system.slice/sshd.service\n")
    (tree / "node" / "var" / "log" / "pods" / ("default_web-0_%s" % UID)).mkdir(parents=True)
    config = tree / "node" / "var" / "lib" / "docker" / "containers" / "4b1e07c5a3f2"
    config.mkdir(parents=True)
    (config / "config.v2.json").write_text(json.dumps(
        {"Name": "/api", "NetworkSettings": {"SandboxKey": str(tree / "netns" / "mhA")}}))
    return names(tree)


@pytest.mark.parametrize("driver", sorted(CGROUPS))
def test_a_namespace_by_its_pod_or_container_first(tree, driver):
    assert pod_uid(CGROUPS[driver]) == UID
    resolver = node_with(tree, CGROUPS[driver])
    mh_a = os.stat(tree / "netns" / "mhA").st_ino
    assert resolver.resolve([Hop(200, 3), Hop(mh_a, 2), Hop(100, 1)]) == {
        Hop(200, 3): HopName("pod default/web-0", "eth0"),
        Hop(mh_a, 2): HopName("container api", "vA"),  # before its `ip netns` name
        Hop(100, 1): HopName("host", "lo"),  # the daemon's own stays host, whatever runs there
    }
    assert workload_fields("pod default/web-0") == {"pod_namespace": "default", "pod": "web-0"}
    assert workload_fields("container api") == {"container": "api"} and workload_fields("mhA") == {}
    assert resolver.inode_of("pod default/web-0") == 200 and resolver.inode_of("container api") == mh_a


def test_a_pod_gone_while_active_keeps_its_last_name(tree):
    resolver = node_with(tree, CGROUPS["systemd"])
    assert resolver.resolve([Hop(200, 3)])[Hop(200, 3)].netns == "pod default/web-0"
    for pid in ("42", "43"):  # its processes ended: the namespace is gone
        (tree / "proc" / pid / "ns" / "net").unlink()
    assert resolver.resolve([Hop(200, 3)]) == {Hop(200, 3): HopName("pod default/web-0", None)}
    with pytest.raises(ErrnoError):
        resolver.inode_of("pod default/web-1")


def test_node_files_that_are_not_there_or_not_what_they_should_be_name_nothing(tmp_path):
    node = NodeFiles(str(tmp_path))
    assert pods(node) == {} and containers(node) == {}
    (tmp_path / "var" / "log" / "pods" / "not-a-pod-dir").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "docker" / "containers" / "x").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "docker" / "containers" / "x" / "config.v2.json").write_text("{not json")
    assert pods(node) == {} and containers(node) == {}
    assert pod_uid("0::/system.slice/sshd.service\n") is None
