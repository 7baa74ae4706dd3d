"""The entry's state machine, with a fake session."""
import errno
import gc
import os
import time
import weakref

import pytest

from procfs_fuse.drop_packet.control.controller import DropPacketEntry
from procfs_fuse.drop_packet.errors import ErrnoError
from procfs_fuse.drop_packet.capture.stages import STAGES
from procfs_fuse.drop_packet.model.diagnosis import HopName
from tests.support.fakes import FLOW, HOP, FakeSessions
from tests.support.mounts import prometheus_samples

FAIL_ACTIVATION_PORT, FAIL_READ_PORT = 9, 13


@pytest.fixture
def sessions():
    return FakeSessions(fail_activation_port=FAIL_ACTIVATION_PORT, fail_read_port=FAIL_READ_PORT)


@pytest.fixture
def entry(sessions):
    return DropPacketEntry(sessions)


def report(entry):
    return entry.view().decode()


def test_activate_deactivate_and_their_no_ops(entry, sessions):
    entry.command(b"activate\n")
    entry.command(b"activate\n")  # no-op: still the one session
    assert len(sessions.opened) == 1
    assert "  activated: y\n" in report(entry)
    entry.command(b"deactivate\n")
    entry.command(b"deactivate\n")
    assert sessions.opened[0].closed
    assert report(entry).startswith("settings:\n  activated: N\n")


def test_deactivate_keeps_the_last_counters_and_activate_starts_from_zero(entry, sessions):
    entry.command(b"activate")
    sessions.opened[0].flows[FLOW][0] = 4242
    entry.command(b"deactivate")
    assert "    ETH_RECV: 4242\n" in report(entry)
    entry.command(b"clear")
    assert "flows: 0\n" in report(entry)
    entry.command(b"activate")
    assert sessions.opened[1].flows[FLOW][0] == 1000  # a new session, new counters


def test_clear_while_active(entry):
    entry.command(b"activate\nclear\n")
    assert "flows: 0\n" in report(entry)


def test_filters_reach_the_session_and_a_change_restarts_counting(entry, sessions):
    entry.command(b"activate\n")
    entry.command(b"dest-port 7777\nsource-addr 198.18.0.1\n")
    session = sessions.opened[0]
    assert session.filters.dest_port == 7777 and str(session.filters.source_addr) == "198.18.0.1"
    assert session.flows == {}
    text = report(entry)
    assert "  dest-port: 7777\n" in text and "  source-addr: 198.18.0.1\n" in text
    entry.command(b"dest-port\n")
    assert session.filters.dest_port is None and "  dest-port: *\n" in report(entry)


def test_filters_set_while_inactive_apply_at_activation(entry, sessions):
    entry.command(b"source-port 40000\nactivate\n")
    assert sessions.opened[0].filters.source_port == 40000


def test_bad_input_is_einval_changes_nothing_and_is_readable(entry):
    entry.command(b"activate\ndest-port 80\n")
    before = report(entry)
    for bad in (b"dest-port 1\nbogus\n", b"source-port 65536", b"\xff\xfe", b"x" * 5000):
        with pytest.raises(ErrnoError) as raised:
            entry.command(bad)
        assert raised.value.errno == errno.EINVAL
    after = report(entry)
    assert "  last-error: write of 5000 bytes is over the 4096-byte limit\n" in after
    without_error = lambda text: [l for l in text.splitlines() if "last-error" not in l]
    assert without_error(after) == without_error(before)
    entry.command(b"clear\n")
    assert "  last-error: none\n" in report(entry)  # a good write clears the error


def test_failed_activation_reports_and_rolls_back_the_batch(entry):
    with pytest.raises(ErrnoError) as raised:
        entry.command(b"dest-port %d\nactivate\n" % FAIL_ACTIVATION_PORT)
    assert raised.value.errno == errno.EOPNOTSUPP
    text = report(entry)
    assert "  activated: N\n" in text and "  dest-port: *\n" in text
    assert "  last-error: [Errno 95] injected activation failure\n" in text


def test_a_batch_failing_after_activate_detaches_what_it_attached(entry, sessions):
    entry.command(b"source-port %d\n" % FAIL_READ_PORT)
    with pytest.raises(ErrnoError):
        entry.command(b"activate\ndeactivate\n")  # deactivate reads the counters: raises
    assert sessions.opened[0].closed
    assert "  activated: N\n" in report(entry)


def test_close_detaches(entry, sessions):
    entry.command(b"activate")
    entry.close()
    assert sessions.opened[0].closed


def test_max_flows_applies_now_when_active_and_at_activation_otherwise(entry, sessions):
    entry.command(b"max-flows 100\nactivate\n")
    assert sessions.opened[0].max_flows == 100
    assert "  max-flows: 100\n" in report(entry) and "  flows: 1 of 100, evicted 0 " in report(entry)
    entry.command(b"max-flows 5000\n")  # a map's size is fixed: a new session
    assert sessions.opened[0].closed and sessions.opened[1].max_flows == 5000
    entry.command(b"max-flows\n")
    assert sessions.opened[2].max_flows == 16384


def prom(entry):
    return prometheus_samples(entry.view(".prom").decode())


def test_a_new_measurement_is_a_counter_reset_with_its_start_time(entry, sessions):
    eth = 'drop_packet_packets_total{stage="ETH_RECV",netns="host",dev="lo"}'
    assert "drop_packet_measurement_start_seconds" not in prom(entry)  # never active
    entry.command(b"activate")
    started = prom(entry)
    assert started[eth] == 1000 and started["drop_packet_active"] == 1
    for command in (b"clear", b"dest-port 80"):  # each starts counting again
        time.sleep(0.01)
        entry.command(command)
        sessions.opened[0].flows = {FLOW: [5] * len(STAGES)}
        now = prom(entry)
        assert now[eth] == 5  # lower than before: rate() takes it as a counter reset
        assert now["drop_packet_measurement_start_seconds"] > started["drop_packet_measurement_start_seconds"]
        started = now
    entry.command(b"deactivate")
    stopped = prom(entry)
    assert stopped["drop_packet_active"] == 0 and stopped[eth] == 5  # the last counts stay
    assert stopped["drop_packet_measurement_start_seconds"] == started["drop_packet_measurement_start_seconds"]


def test_hop_filters_reach_the_session_and_an_unknown_namespace_changes_nothing(entry, sessions):
    entry.command(b"activate\nnetns host\ndev lo\n")
    filters = sessions.opened[0].filters
    assert filters.netns.name == "host" and filters.netns.inode == os.stat("/proc/self/ns/net").st_ino
    assert filters.dev == "lo"
    assert "  netns: host\n  dev: lo\n" in report(entry)
    with pytest.raises(ErrnoError) as raised:
        entry.command(b"dev eth9\nnetns no-such-namespace\n")
    assert raised.value.errno == errno.EINVAL
    assert sessions.opened[0].filters == filters  # the batch changed nothing
    assert "  dev: lo\n" in report(entry)
    assert "  last-error: no network namespace 'no-such-namespace'" in report(entry)


class MovingCounters:
    """A HopNames whose one device's counters a test moves; softnet likewise."""

    def __init__(self):
        self.counters, self.softnet = {"tx_dropped": 5}, "00000001 00000002 00000003\n"

    def resolve(self, hops):
        return {hop: HopName("host", "lo") for hop in hops}

    def survey(self, hops):
        return {HOP: HopName("host", "lo"), **self.resolve(hops)}, {HOP: dict(self.counters)}


def test_devices_show_what_moved_since_the_counts_started():
    moving = MovingCounters()
    entry = DropPacketEntry(FakeSessions(), names=moving, softnet=lambda: moving.softnet)
    assert report(entry).endswith("devices:\n  (read while active)\n")
    entry.command(b"activate")
    assert report(entry).endswith("devices:\n  (no change since the counts started)\n")
    moving.counters["tx_dropped"] += 500
    moving.softnet = "00000001 00000009 00000003\n"
    assert report(entry).endswith("devices:\n  netns host, dev lo: tx_dropped 500\n  cpu 0: dropped 7\n")
    entry.command(b"clear")  # a new measurement: from here
    assert report(entry).endswith("devices:\n  (no change since the counts started)\n")


def test_a_view_leaves_the_cycle_collector_nothing_to_walk_and_every_64th_collects_old_cycles(entry):
    """What a read leaves alive is frozen (a collection after a big `cat`
    walked all of it: 19-48 ms); every SWEEP_EVERY-th read collects once, so
    a cycle left by other code is not kept forever."""
    class Cycle:
        pass
    entry.command(b"activate\n")
    gc.collect()  # from 0: no collection comes before the view
    try:
        cycle = Cycle()
        cycle.me = cycle
        gone = weakref.ref(cycle)
        del cycle
        entry.view()
        assert gc.get_count()[0] < 10 and gc.get_freeze_count() > 0
        assert gone() is not None  # frozen with the rest
        for _ in range(entry._collector.SWEEP_EVERY):
            entry.view()
        assert gone() is None
    finally:
        gc.unfreeze()
