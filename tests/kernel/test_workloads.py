"""Hops named by their pod and container, as a node's own files say, made for
real without a cluster, on the bridged hosts (A and B on a bridge in H, as
a node's pods are on its CNI bridge): A's namespace gets a process in a
cgroup v2 path shaped as the kubelet makes it (systemd and cgroupfs
drivers) and a /var/log/pods directory; B's a Docker container's
config.v2.json whose sandbox key is its path. Both under a node root the
test's daemon is given (mount.sh --node-root)."""
import json
import os
import subprocess

import pytest

from procfs_fuse.kernel.cgroup import ensure_v2_root
from tests.kernel.conftest import REPO, SAME_ON_EVERY_KERNEL, daemon_files, send_udp
from tests.support.mounts import ENTRY, flow_header, parse_report, prometheus_samples, sh
from tests.support.netns import Bridged

pytestmark = pytest.mark.root

UID = "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f"
CGROUP_PATHS = {  # where each kubelet cgroup driver puts a besteffort pod's container
    "systemd": "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/"
               "cri-containerd-0a1b2c.scope" % UID.replace("-", "_"),
    "cgroupfs": "kubepods/besteffort/pod%s/0a1b2c" % UID,
}


@pytest.fixture
def bridged():
    with Bridged() as hosts:
        yield hosts


@pytest.fixture
def pod_and_container(f, bridged, tmp_path, request):
    """A's namespace the pod default/web-0, B's the container api; a daemon of their node's files."""
    driver, hosts = request.param, bridged
    node = tmp_path / "node"
    (node / "var" / "log" / "pods" / ("default_web-0_%s" % UID)).mkdir(parents=True)
    config = node / "var" / "lib" / "docker" / "containers" / "4b1e07c5a3f2"
    config.mkdir(parents=True)
    (config / "config.v2.json").write_text(json.dumps(
        {"Name": "/api", "NetworkSettings": {"SandboxKey": "/run/netns/%s" % hosts.b}}))
    cgroup = os.path.join(ensure_v2_root(), CGROUP_PATHS[driver])
    os.makedirs(cgroup)
    sleeper = subprocess.Popen(["ip", "netns", "exec", hosts.a, "sleep", "600"])
    mnt = tmp_path / "mnt"
    try:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(sleeper.pid))  # ip netns exec became sleep: the same process
        sh("%s/mount.sh --node-root %s %s" % (REPO, node, mnt), check=True, timeout=900)
        yield mnt / ENTRY
    finally:
        sh("%s/mount.sh -u %s" % (REPO, mnt))
        sleeper.kill()
        sleeper.wait()
        for depth in range(CGROUP_PATHS[driver].count("/"), -1, -1):  # the leaf first
            os.rmdir(os.path.join(ensure_v2_root(), *CGROUP_PATHS[driver].split("/")[:depth + 1]))
        daemon_files(mnt)[1].unlink(missing_ok=True)


# the kernel's part (a cgroup v2 path in /proc/PID/cgroup) is the same for both
# drivers' paths: lane 2 runs one (the parse of each is unit-tested)
@pytest.mark.parametrize("pod_and_container", ["cgroupfs", pytest.param("systemd", marks=SAME_ON_EVERY_KERNEL)],
                         indirect=True)
def test_hops_are_named_by_their_pod_and_container(pod_and_container, bridged):
    entry, hosts = pod_and_container, bridged
    pod, container = "pod default/web-0", "container api"
    sh("echo 'netns %s' > %s && echo activate > %s" % (pod, entry, entry), check=True)  # the filter takes it
    send_udp(hosts, 100, 7799, 40099)
    report = parse_report(sh("cat %s" % entry, check=True).stdout)
    assert report["settings"]["netns"] == pod
    flow = report["flows"][flow_header("UDP", hosts.A_ADDR, 40099, hosts.B_ADDR, 7799)]
    assert list(flow["hops"]) == ["netns %s, dev %s" % (pod, hosts.a_dev)]  # the filter: that hop only
    assert flow["stages"]["QUEUE_XMIT"] == flow["stages"]["SEND_SKB"] == 100
    sh("echo netns > %s" % entry, check=True)  # every hop again
    send_udp(hosts, 100, 7799, 40099)
    doc = json.loads(sh("cat %s.json" % entry, check=True).stdout)
    (hops,) = [f["hops"] for f in doc["flows"] if f["source_port"] == 40099]
    named = [(h["netns"], h.get("pod_namespace"), h.get("pod"), h.get("container")) for h in hops]
    assert named[0] == (pod, "default", "web-0", None) and named[-1] == (container, None, None, "api")
    assert {h["netns"] for h in hops[1:-1]} == {hosts.h}  # the bridge's ports: the node's own namespace
    samples = prometheus_samples(sh("cat %s.prom" % entry, check=True).stdout)
    # the hop's series, summed over its flows: neighbour discovery may share it
    assert samples['drop_packet_packets_total{stage="ETH_RECV",netns="%s",dev="%s"}' % (container, hosts.b_dev)] >= 100
