"""A measurement's readings: what user space adds to each Snapshot (the
hops' names, the device and softnet counters that moved since the counts
started), and the Reading made of them (reading.py)."""
import time

from . import devices
from .hints import is_qdisc_drop
from .names import HopNames
from .reading import reading_of


def read_softnet():
    with open("/proc/net/softnet_stat") as f:
        return f.read()


class Measurement:
    """Knows when the counts started and the counters then; makes Readings."""

    def __init__(self, names=None, softnet=None):
        """names: a HopNames (default: this host's); softnet() -> the text of /proc/net/softnet_stat."""
        self.names = names or HopNames()
        self._softnet = softnet or read_softnet
        self.since = None  # unix time the counts started (see Reading.since)
        self._start = ({}, {})  # device and softnet counters when the counts started

    def start(self):
        """The counts start now: activation, clear, a filter change while active."""
        self.since = time.time()
        self._start = (self.names.survey(())[1], devices.parse_softnet(self._softnet()))

    def reading(self, snapshot, active, filters, max_flows, last_error, hooks):
        """The Reading of a Snapshot: while active, with the device counters that moved."""
        hops = {seen.hop for seen in snapshot.seen}
        hops.update(drop.hop for drop in snapshot.drops if drop.hop is not None)
        changed, softnet = {}, {}
        if active:
            names, counters = self.names.survey(hops)
            changed = devices.changes(counters, self._start[0])
            softnet = devices.changes(devices.parse_softnet(self._softnet()), self._start[1])
        else:
            names = self.names.resolve(hops) if hops else {}
        # the verdict names the qdisc that dropped (its kind): asked only where one did
        qdisc_hops = {drop.hop for drop in snapshot.drops if drop.hop and is_qdisc_drop(drop.reason)}
        qdiscs = self.names.root_qdiscs(qdisc_hops) if qdisc_hops else {}
        return reading_of(snapshot, active, filters, max_flows, last_error, hooks, self.since, names, changed, softnet,
                          qdiscs)
