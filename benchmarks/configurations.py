"""What the overhead benchmark switches between: each configuration a context
manager under which the traffic runs. Programs are compiled once and only
attached and detached between windows (a compile disturbs this VM's traffic
for a second or more); the attach kinds are activation.py's."""
import contextlib
import ctypes
import socket
import subprocess
import time
from pathlib import Path

from procfs_fuse.drop_packet.capture import activation, hooks as hookplan, program
from procfs_fuse.drop_packet.capture.settings import Filters
from procfs_fuse.drop_packet.capture.session import BccSession
from procfs_fuse.drop_packet.capture.stages import KPROBE, TRACEPOINT
from procfs_fuse.kernel import headers, tracefs

HERE = Path(__file__).resolve().parent
REFERENCE_ADDS = 100  # the reference's register additions an event: about as long as our filtered-out path
ADDS_REFERENCE = "%d register adds" % REFERENCE_ADDS
SHARED_TABLE = "active, shared table"  # the flow past the slots
RUN_TIME_ROUNDS = 5  # rounds of BPF run time windows (one of each configuration per round), by default
PEER_ROUNDS = 5  # rounds that measure bpftrace too: a reference, and each start costs it a compile
COMPILE_SETTLE = 2  # after bpftrace starts or stops: its compile and teardown disturb the traffic


def planned_hooks():
    """The attach points an activation would use, each once (stages may share one)."""
    tracefs.ensure_mounted()
    return list(dict.fromkeys(h.chosen for h in hookplan.plan(tracefs.KernelHooks().why_unavailable) if h.chosen))


class Windowed:
    """Functions of one loaded program on the attach points an activation
    uses, attached for a window and detached after it, without compiling again."""

    def __init__(self, bpf, function_of):
        """function_of(candidate) -> the name of the function that goes there."""
        self.bpf, self.pairs = bpf, [(c, function_of(c)) for c in planned_hooks()]

    @contextlib.contextmanager
    def attached(self):
        detach = [activation.attach(self.bpf, candidate, function) for candidate, function in self.pairs]
        try:
            yield
        finally:
            for undo in reversed(detach):
                undo()


def floor_kind(candidate):
    """The floor's function (benchmarks/floor.c) for the attach kind of candidate."""
    if candidate.kind == TRACEPOINT:
        return "dp_floor_tracepoint" if candidate.record else "dp_floor_raw_tracepoint"
    return "dp_floor_" + candidate.kind


def floor_programs(adds=0):
    """benchmarks/floor.c loaded (with adds: programs that do only that many
    register additions), as an activation attaches a program on each attach
    point: (Windowed, its BPF object)."""
    BPF = program.import_bcc()
    headers.point_bcc_at_headers()
    bpf = BPF(src_file=str(HERE / "floor.c").encode(), cflags=["-DDP_ADDS=%d" % adds])
    return Windowed(bpf, floor_kind), bpf


def session_programs():
    """The programs an activation compiles (BccSession), detached, to be
    attached window by window: (session, Windowed)."""
    session = BccSession(Filters())
    session.activation.detach()
    return session, Windowed(session.activation.bpf, lambda candidate: candidate.function)


def reading_headers_programs():
    """benchmarks/reading_headers_only.c, compiled as an activation compiles
    the product: (Windowed, its BPF object)."""
    bpf, _why, _nat = program.compile_program(HERE / "reading_headers_only.c")
    return Windowed(bpf, lambda candidate: candidate.function), bpf


@contextlib.contextmanager
def filtered_out(session, programs):
    """Our programs with a filter that excludes the measured traffic."""
    session.set_filters(Filters(dest_port=1))
    try:
        with programs.attached():
            yield
    finally:
        session.set_filters(Filters())


@contextlib.contextmanager
def in_shared_table(session, programs):
    """Our programs with every slot of every CPU held by a stranger: the
    measured flow counts in the shared flow table, with atomic adds, as the
    flows past the slots do on a host with many."""
    slots = session.activation.bpf[b"dp_slots"]
    stranger = slots.sLeaf()
    stranger.dp_key.dp_family, stranger.dp_key.dp_protocol = socket.AF_INET, socket.IPPROTO_UDP
    stranger.dp_key.dp_saddr[:4] = list(socket.inet_aton("198.19.255.1"))
    with session.config.memos_off():  # a memo may name a slot's old owner
        for index in range(slots.max_entries):
            slots[ctypes.c_int(index)] = slots.Leaf(*[stranger] * slots.total_cpu)
    try:
        with programs.attached():
            yield
    finally:
        session.clear()


class Bpftrace:
    """The minimal peer: bpftrace counting on the same kprobes and tracepoints."""

    def __enter__(self):
        probes = ", ".join("kprobe:%s" % c.target if c.kind == KPROBE else "tracepoint:%s" % c.target
                           for c in planned_hooks() if c.kind in (KPROBE, TRACEPOINT))  # no cgroup_skb there
        self.process = subprocess.Popen(["bpftrace", "-B", "line", "-e", "%s { @[probe] = count(); }" % probes],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("Attaching"):
            self.process.kill()
            raise RuntimeError("bpftrace did not attach: %r" % line)
        time.sleep(COMPILE_SETTLE)  # it prints before the last probe is attached
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        time.sleep(COMPILE_SETTLE)


def build(cleanup, have_bpftrace):
    """{name: context manager factory}, every program loaded; cleanup: an
    ExitStack that unloads them."""
    floor, floor_bpf = floor_programs()
    cleanup.callback(floor_bpf.cleanup)
    floor_again, floor_again_bpf = floor_programs()
    cleanup.callback(floor_again_bpf.cleanup)
    session, ours = session_programs()
    cleanup.callback(session.close)
    headers_only, headers_bpf = reading_headers_programs()
    cleanup.callback(headers_bpf.cleanup)
    adds, adds_bpf = floor_programs(REFERENCE_ADDS)
    cleanup.callback(adds_bpf.cleanup)
    configs = {"baseline": contextlib.nullcontext, "floor": floor.attached, "floor again": floor_again.attached,
               "active": ours.attached, "active, filtered out": lambda: filtered_out(session, ours),
               SHARED_TABLE: lambda: in_shared_table(session, ours),
               "reading headers only": headers_only.attached, ADDS_REFERENCE: adds.attached}
    if have_bpftrace:
        configs["bpftrace"] = Bpftrace
    return configs
