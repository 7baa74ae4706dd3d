"""Fixtures of the kernel tests: one real mount (mount.sh) for the session,
the drop-packet file reset before each test, and two fresh test hosts."""
import json
from pathlib import Path

import pytest

from tests.support.netns import QUIET_SECONDS, Hosts
from procfs_fuse.drop_packet.capture.settings import FILTERS
from procfs_fuse.drop_packet.capture.stages import TABLE
from tests.support.mounts import ENTRY, flow_of_header, parse_report, sh, wait_for

# our own logic, proven in lane 1: lane 2 (tests/qemu/guest.sh) leaves it out
SAME_ON_EVERY_KERNEL = pytest.mark.same_on_every_kernel

REPO = Path(__file__).resolve().parents[2]
N = 1000


def our_bpf_objects():
    """Names of loaded BPF programs and maps that are ours (prefix dp_)."""
    progs = json.loads(sh("bpftool -j prog show", check=True).stdout or "[]")
    maps = json.loads(sh("bpftool -j map show", check=True).stdout or "[]")
    return sorted(o.get("name", "") for o in progs + maps if o.get("name", "").startswith("dp_"))


def wait_no_bpf_objects():
    """The kernel frees programs and maps after an RCU grace period: allow it a moment."""
    wait_for(lambda: our_bpf_objects() == [], "our BPF programs and maps to be freed", seconds=10)


def daemon_files(mountpoint):
    """mount.sh's pid and log files for a mount point."""
    state = REPO / ".run" / str(Path(mountpoint).resolve()).replace("/", "_")
    return Path(str(state) + ".pid"), Path(str(state) + ".log")


def daemon_pid(mountpoint):
    return int(daemon_files(mountpoint)[0].read_text())


@pytest.fixture(scope="session")
def mnt(tmp_path_factory):
    mountpoint = tmp_path_factory.mktemp("kernel") / "mnt"
    sh("%s/mount.sh %s" % (REPO, mountpoint), check=True, timeout=900)
    yield mountpoint
    sh("%s/mount.sh -u %s" % (REPO, mountpoint), check=True)
    log = daemon_files(mountpoint)[1].read_text()
    assert "Traceback" not in log, log  # a normal run logs no traceback


@pytest.fixture
def f(mnt):
    path = mnt / ENTRY
    sh("echo deactivate > {0}; echo clear > {0}; for w in {1}; do echo $w > {0}; done".format(
        path, " ".join(FILTERS)), check=True)
    wait_no_bpf_objects()
    yield path
    sh("echo deactivate > %s" % path, check=True)


@pytest.fixture
def hosts():
    with Hosts() as h:
        yield h


def write(f, command):
    sh("echo '%s' > %s" % (command, f), check=True)


def report(f):
    return parse_report(sh("cat %s" % f, check=True).stdout)


class _AnyCount:
    """The count of a stage a test does not name (one added to the table after
    the test was written): its line must be there, with any count."""

    def __eq__(self, other):
        return other is not None

    def __repr__(self):
        return "<any count>"


def expected(rep, header, counts):
    """The stage lines the flow of header must show, over its hops: one per
    place on the path the stage table lets such a flow reach, with counts where
    given, and None where this kernel attached nothing; events (RETRANS,
    DROPPED) where counts gives them a number (a hop shows them where not 0)."""
    flow = flow_of_header(header)
    assert set(counts) <= {row.name for row in TABLE if row.applies(flow)}, counts
    reached = [row.name for row in TABLE if row.applies(flow) and (row.path or counts.get(row.name))]
    hooks = rep["hooks"]
    return {stage: (None if hooks[stage].startswith("unavailable") else counts.get(stage, _AnyCount()))
            for stage in reached}


def send_udp(hosts, count, dport, sport, dst=None, expect_received=None, size=64, ip_options="", cpu=None):
    """count datagrams from A to B; checks how many the application got.
    ip_options: IPv4 options as hex. cpu: the sender's (over veth, the
    receiving stages run on it too)."""
    receiver = hosts.start_peer(hosts.b, "udp-recv", dport, count, QUIET_SECONDS)
    hosts.finish(hosts.start_peer(hosts.a, "udp-send", dst or hosts.B_ADDR, dport, count, sport, size,
                                  *([ip_options] if ip_options else []), cpu=cpu))
    received = int(hosts.finish(receiver, say="sender done\n"))
    assert received == (count if expect_received is None else expect_received)
    return received


