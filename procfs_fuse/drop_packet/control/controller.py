"""The drop-packet entry: its settings, its state (inactive | active) and one
lock. view() and command() are all the file system calls. The session is
passed in (a factory of sessions), so this runs without a kernel in tests."""
import contextlib
import dataclasses
import errno
import gc
import logging
import threading

from . import commands as cmdlang
from ..capture.flows import Snapshot
from ..capture.settings import DEFAULT_MAX_FLOWS, MAX_FLOWS, Filters, Netns
from ..errors import ErrnoError
from ..model.measurement import Measurement
from ..views import VIEWS

log = logging.getLogger(__name__)
BUSY_WAIT = 0.05  # seconds a read waits for a running command before it answers from the last reading


class PausedCollector:
    """A read of 10,000 flows makes some 200,000 objects and no reference
    cycle; the cycle collector would walk them all while they are made and
    once more at the first collection after (19-48 ms a `cat`, measured with
    gc.callbacks). So it is off during a read, and what the read leaves alive
    is frozen (gc.freeze); every SWEEP_EVERY-th read collects everything once."""
    SWEEP_EVERY = 64

    def __init__(self):
        self._reads = 0

    @contextlib.contextmanager
    def paused(self):
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


class DropPacketEntry:
    def __init__(self, session_factory, names=None, softnet=None):
        """session_factory(filters, max_flows) -> session with .hooks, .read() -> Snapshot,
        .clear(), .set_filters(filters), .close(); raises on failure with an
        .errno attribute when it has one. names, softnet: see Measurement."""
        self._new_session = session_factory
        self._measurement = Measurement(names, softnet)
        self._lock = threading.Lock()
        self._session = None
        self._filters = Filters()
        self._max_flows = DEFAULT_MAX_FLOWS
        self._last_error = None
        self._hooks = None      # of the current or last activation
        self._kept = Snapshot()  # counters kept readable after deactivate
        self._collector = PausedCollector()
        self._last_reading = self._reading()

    def view(self, suffix="") -> bytes:
        """The view of that file name suffix (views.VIEWS) of a fresh reading.
        While a command runs (an activation compiles for a second or more),
        of the last reading instead: a scrape never waits for a compile."""
        render = VIEWS[suffix].render
        if not self._lock.acquire(timeout=BUSY_WAIT):
            return render(self._last_reading)
        try:
            with self._collector.paused():
                self._last_reading = self._reading()
                return render(self._last_reading)
        finally:
            self._lock.release()

    def _reading(self):
        snapshot = self._session.read() if self._session else self._kept
        return self._measurement.reading(snapshot, self._session is not None, self._filters, self._max_flows,
                                         self._last_error, self._hooks)

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
                self._measurement.start()
            self._kept = Snapshot()
        elif command.word == MAX_FLOWS:
            self._max_flows = command.value or DEFAULT_MAX_FLOWS
            if self._session is not None:  # a map's size is fixed: build a new one
                self._deactivate()
                self._activate()
        else:
            value = command.value
            if command.field == "netns" and value is not None:
                value = Netns(self._measurement.names.inode_of(value), value)
            self._filters = dataclasses.replace(self._filters, **{command.field: value})
            # while active, a new filter starts a new measurement: old flows
            # would mislead; inactive, the last counters stay readable
            if self._session is not None:
                self._session.set_filters(self._filters)
                self._session.clear()
                self._measurement.start()

    def _activate(self):
        self._session = self._new_session(self._filters, self._max_flows)
        self._hooks = self._session.hooks
        self._kept = Snapshot()
        self._measurement.start()

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
