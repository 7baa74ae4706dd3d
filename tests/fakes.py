"""A tracer session without a kernel, for controller and FUSE tests."""
import errno
import ipaddress

from procfs_fuse.drop_packet.flows import Flow, Snapshot, TableUse
from procfs_fuse.drop_packet.hooks import CANDIDATES, StageHook
from procfs_fuse.drop_packet.stages import STAGES

FAIL_ACTIVATION_PORT = 9   # dest-port 9 makes activation fail, as a kernel could
FAIL_READ_PORT = 13        # source-port 13 makes reading the counters raise

FLOW = Flow(17, ipaddress.ip_address("198.18.0.1"), 40000, ipaddress.ip_address("198.18.0.2"), 7777)


class FakeSession:
    opened = []

    def __init__(self, filters, max_flows):
        if filters.dest_port == FAIL_ACTIVATION_PORT:
            raise OSError(errno.EOPNOTSUPP, "injected activation failure")
        self.filters = filters
        self.max_flows = max_flows
        self.closed = False
        # every stage on its first candidate, but UDP_RCV unavailable
        self.hooks = [StageHook(s, None if s == "UDP_RCV" else CANDIDATES[s][0]) for s in STAGES]
        self.flows = {FLOW: [1000 + i for i in range(len(STAGES))]}
        FakeSession.opened.append(self)

    def read(self):
        if self.filters.source_port == FAIL_READ_PORT:
            raise RuntimeError("injected read failure")
        return Snapshot({flow: list(counts) for flow, counts in self.flows.items()}, (),
                        (TableUse("flows", len(self.flows), self.max_flows, 0),))

    def clear(self):
        self.flows = {}

    def set_filters(self, filters):
        self.filters = filters

    def close(self):
        self.closed = True
