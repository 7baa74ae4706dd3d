"""A session without a kernel, for controller and FUSE tests. Failures are
injected only where a test asks for them."""
import errno
import ipaddress
import os
import time

from procfs_fuse.drop_packet.capture.flows import Flow, Hop, Snapshot, TableUse
from procfs_fuse.drop_packet.capture.hooks import StageHook
from procfs_fuse.drop_packet.capture.stages import STAGES, TABLE

FLOW = Flow(17, ipaddress.ip_address("198.18.0.1"), 40000, ipaddress.ip_address("198.18.0.2"), 7777)
UNAVAILABLE = "UDP_RCV"  # the one stage the fake leaves unattached
HOP = Hop(os.stat("/proc/self/ns/net").st_ino, 1)  # this host's lo: named `host`, `lo` wherever tests run


class FakeSessions:
    """The session factory DropPacketEntry takes. fail_activation_port: a
    dest-port filter that makes activation fail, as a kernel could;
    fail_read_port: a source-port filter that makes reading the counters
    raise; activation_seconds: how long an activation takes (a compile), and
    activation_marker: a file made when one begins. opened: every session
    made, in order."""

    def __init__(self, fail_activation_port=None, fail_read_port=None, activation_seconds=0,
                 activation_marker=None):
        self.fail_activation_port, self.fail_read_port = fail_activation_port, fail_read_port
        self.activation_seconds, self.activation_marker = activation_seconds, activation_marker
        self.opened = []

    def __call__(self, filters, max_flows):
        if self.activation_marker:
            open(self.activation_marker, "w").close()
        time.sleep(self.activation_seconds)
        if self.fail_activation_port is not None and filters.dest_port == self.fail_activation_port:
            raise OSError(errno.EOPNOTSUPP, "injected activation failure")
        session = FakeSession(self, filters, max_flows)
        self.opened.append(session)
        return session


class FakeSession:
    def __init__(self, sessions, filters, max_flows):
        self._sessions, self.filters, self.max_flows = sessions, filters, max_flows
        self.closed = False
        # every stage on its first candidate, but one unavailable
        self.hooks = [StageHook(s.name, None if s.name == UNAVAILABLE else s.candidates[0]) for s in TABLE]
        self.flows = {FLOW: [1000 + i for i in range(len(STAGES))]}  # all at HOP

    def read(self):
        port = self._sessions.fail_read_port
        if port is not None and self.filters.source_port == port:
            raise RuntimeError("injected read failure")
        return Snapshot.of_paths({flow: ((HOP, tuple(counts)),) for flow, counts in self.flows.items()}, (),
                        (TableUse("flows", len(self.flows), self.max_flows, 0),))

    def clear(self):
        self.flows = {}

    def set_filters(self, filters):
        self.filters = filters

    def close(self):
        self.closed = True
