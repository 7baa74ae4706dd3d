"""The drop-packet entry: settings, state (inactive | active) and one lock.

view() and command() are all the file system calls. The session is passed
in (a factory of sessions), so this runs without a kernel in tests.
"""
import contextlib
import dataclasses
import errno
import gc
import logging
import threading
import time
from itertools import chain
from operator import attrgetter, itemgetter

from . import commands as cmdlang
from . import json_view, metrics
from .errors import ErrnoError
from .flows import DEFAULT_MAX_FLOWS, Filters, Netns, Reading, Snapshot
from . import devices
from .names import HopNames
from .flow_texts import FlowTexts
from .report import render

log = logging.getLogger(__name__)


class _ReadsFrozen:
    """A read and render of 10,000 flows makes some 200,000 containers and no
    reference cycle. The cycle collector would walk them all: while they are
    made (every few hundred allocations: a quarter of such a `cat`), and once
    more at the first collection after it, which came in the FUSE open that
    asked for the view: 19-48 ms a `cat` (measured with gc.callbacks). So it
    is off during a read, and what the read leaves alive is then frozen
    (gc.freeze: collections skip it; its objects are freed by their counts as
    before). Every SWEEP_EVERY-th read, everything is unfrozen and collected
    once, so that a cycle some other code left behind is not kept forever."""
    SWEEP_EVERY = 64

    def __init__(self):
        self._reads = 0

    @contextlib.contextmanager
    def off(self):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            self._reads += 1
            if self._reads % self.SWEEP_EVERY == 0:
                gc.unfreeze()
                gc.collect()
            gc.freeze()
            if was_enabled:
                gc.enable()


def _read_softnet():
    with open("/proc/net/softnet_stat") as f:
        return f.read()


_HOP, _DROP_HOP = itemgetter(0), attrgetter("hop")  # of a (Hop, counts), of a Drop
BUSY_WAIT = 0.05  # seconds a read waits for a running command before it answers from the last reading


class DropPacketEntry:
    def __init__(self, session_factory, names=None, softnet=None):
        """session_factory(filters, max_flows) -> session with .hooks, .read() -> Snapshot,
        .clear(), .set_filters(filters), .close(); raises on failure with an
        .errno attribute when it has one. names: a HopNames (default: this
        host's); softnet() -> the text of /proc/net/softnet_stat."""
        self._new_session = session_factory
        self._names = names or HopNames()
        self._softnet = softnet or _read_softnet
        self._device_start = ({}, {})  # device and softnet counters when the measurement started
        self._lock = threading.Lock()
        self._session = None
        self._filters = Filters()
        self._max_flows = DEFAULT_MAX_FLOWS
        self._last_error = None
        self._hooks = None      # of the current or last activation
        self._kept = Snapshot()  # counters kept readable after deactivate
        self._texts = FlowTexts()  # of the last text render: idle flows are not formatted again
        self._since = None  # when the counts started (see Reading.since)
        self._last_hops = (None, set())  # (Snapshot.structure, its hops)
        self._collection = _ReadsFrozen()
        self._last_reading = self._reading(Snapshot())

    def view(self, name="text") -> bytes:
        """One view of a fresh reading. While a command runs (an activation
        compiles for a second or more), the last reading instead: a scrape
        never waits for a compile."""
        if not self._lock.acquire(timeout=BUSY_WAIT):
            return self._render(name, self._last_reading, texts=None)
        try:
            with self._collection.off():
                reading = self._last_reading = self._reading(self._session.read() if self._session else self._kept)
                return self._render(name, reading, self._texts)
        finally:
            self._lock.release()

    def _hops(self, snapshot):
        """The hops of a snapshot's flows and drops; the last ones while its structure stays."""
        structure, hops = self._last_hops
        if structure is None or snapshot.structure is not structure:
            hops = set(map(_HOP, chain.from_iterable(snapshot.flows.values())))  # in C: 20,000 (Hop, counts) a `cat`
            hops.update(map(_DROP_HOP, snapshot.drops))
            hops.discard(None)  # of unattributed drops
            self._last_hops = (snapshot.structure, hops)
        return hops

    def _reading(self, snapshot):
        hops = self._hops(snapshot)
        active = self._session is not None
        moved, softnet = {}, {}
        if active:  # what device counters show is the change since the measurement started; names come along
            names, counters = self._names.survey(hops)
            moved = devices.changes(counters, self._device_start[0])
            softnet = devices.changes(devices.parse_softnet(self._softnet()), self._device_start[1])
        else:
            names = self._names.resolve(hops) if hops else {}
        return Reading(active, self._filters, self._max_flows, self._last_error, self._hooks,
                       snapshot, self._since, names, moved, softnet)

    def _start_measurement(self):
        """Counts start now: activation, clear, a filter change while active."""
        self._since = time.time()
        self._device_start = (self._names.survey(())[1], devices.parse_softnet(self._softnet()))

    @staticmethod
    def _render(name, reading, texts):
        if name == "json":
            return json_view.render(reading)
        if name == "prom":
            return metrics.render(reading)
        return render(reading, texts).encode()

    def command(self, data: bytes):
        """Run one write's batch; raises ErrnoError (and keeps the reason for the report)."""
        with self._lock:
            try:
                batch = cmdlang.parse(data)
            except cmdlang.CommandError as e:
                self._last_error = str(e)
                raise ErrnoError(errno.EINVAL, str(e))
            before = (self._session, self._filters, self._max_flows)
            try:
                for command in batch:
                    self._run(command)
            except Exception as e:
                reason = str(e) or type(e).__name__
                log.warning("command failed: %s", reason)
                self._rollback(*before)
                self._last_error = reason
                raise ErrnoError(getattr(e, "errno", None) or errno.EIO, reason)
            self._last_error = None

    def _rollback(self, session_before, filters_before, max_flows_before):
        """After a failed batch: the settings it changed go back; an activation it made is undone."""
        if self._session is not None and self._session is not session_before:
            session, self._session = self._session, None
            session.close()
        self._filters = filters_before
        self._max_flows = max_flows_before
        if self._session is not None:
            self._session.set_filters(filters_before)

    def _run(self, command):
        if command.word == "activate":
            if self._session is None:
                self._activate()
        elif command.word == "deactivate":
            if self._session is not None:
                self._deactivate()
        elif command.word == "clear":
            if self._session is not None:
                self._session.clear()
                self._start_measurement()
            self._kept = Snapshot()
        elif command.word == cmdlang.MAX_FLOWS:
            self._max_flows = command.value or DEFAULT_MAX_FLOWS
            if self._session is not None:  # a map's size is fixed: build a new one
                self._deactivate()
                self._activate()
        else:
            value = command.value
            if command.field == "netns" and value is not None:
                value = Netns(self._names.inode_of(value), value)
            self._filters = dataclasses.replace(self._filters, **{command.field: value})
            # while active, a new filter starts a new measurement: old flows
            # would mislead; inactive, the last counters stay readable
            if self._session is not None:
                self._session.set_filters(self._filters)
                self._session.clear()
                self._start_measurement()

    def _activate(self):
        self._session = self._new_session(self._filters, self._max_flows)
        self._hooks = self._session.hooks
        self._kept = Snapshot()
        self._start_measurement()

    def _deactivate(self):
        session, self._session = self._session, None
        try:
            self._kept = session.read()
        finally:
            session.close()

    def close(self):
        """Detach everything (daemon exit)."""
        with self._lock:
            if self._session is not None:
                self._deactivate()
