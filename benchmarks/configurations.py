"""What the overhead benchmark switches between: each configuration a context
manager under which the traffic runs. Programs are compiled once and only
attached and detached between windows (a compile disturbs this VM's traffic
for a second or more); the attach kinds are activation.py's."""
import contextlib
import subprocess
import time

from procfs_fuse.drop_packet import activation, hooks as hookplan
from procfs_fuse.drop_packet.flows import Filters
from procfs_fuse.drop_packet.session import BccSession
from procfs_fuse.drop_packet.stages import KPROBE, TRACEPOINT
from procfs_fuse.kernel import headers, tracefs

REFERENCE_ADDS = 100  # the reference's register additions an event: about as long as our filtered-out path
ADDS_REFERENCE = "%d register adds" % REFERENCE_ADDS
RUN_TIME_ROUNDS = 5  # rounds of BPF run time windows (one of each configuration per round), by default
PEER_ROUNDS = 5  # rounds that measure bpftrace too: a reference, and each start costs it a compile
COMPILE_SETTLE = 2  # after bpftrace starts or stops: its compile and teardown disturb the traffic


def planned_hooks():
    """The attach points an activation would use, each once (stages may share one)."""
    tracefs.ensure_mounted()
    return list(dict.fromkeys(h.chosen for h in hookplan.plan(tracefs.KernelHooks().why_unavailable) if h.chosen))


@contextlib.contextmanager
def attached(attachments):
    attachments.attach_all()
    try:
        yield
    finally:
        attachments.detach_all()


def floor_programs(adds=0):
    """An empty program on each attach point an activation would use, as an
    activation attaches a program on each: (Attachments, its BPF object).
    With adds: programs that do only that many register additions (four
    chains, no memory read), named dp_adds_*: what this method charges for a
    few ns of plain work an event."""
    BPF = activation.import_bcc()
    headers.point_bcc_at_headers()
    hooks = planned_hooks()
    names = ["dp_%s_%d" % ("adds" if adds else "floor", i) for i in range(len(hooks))]
    work = ("__u64 x0 = 0, x1 = 0, x2 = 0, x3 = 0;" + "".join(
        'asm volatile("%%0 += 1" : "+r"(x%d));' % (i % 4) for i in range(adds))) if adds else ""
    bpf = BPF(text="#include <uapi/linux/ptrace.h>\n" + "\n".join(
        activation.empty_program(name, c, work) for name, c in zip(names, hooks)))
    return activation.Attachments(bpf, zip(hooks, names)), bpf


def session_programs(extra_cflags=()):
    """The programs an activation compiles (BccSession), detached, to be
    attached window by window: (session, Attachments)."""
    session = BccSession(Filters(), extra_cflags=extra_cflags)
    attachments = session.activation.attached
    attachments.detach_all()
    if [c for c, _function in attachments.pairs] != planned_hooks():
        session.close()
        raise RuntimeError("the programs did not attach as the plan says")
    return session, attachments


@contextlib.contextmanager
def filtered_out(session, attachments):
    """Our programs with a filter that excludes the measured traffic."""
    session.set_filters(Filters(dest_port=1))
    try:
        with attached(attachments):
            yield
    finally:
        session.set_filters(Filters())


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
    headers_session, headers_only = session_programs(["-DDP_PARSE_ONLY"])
    cleanup.callback(headers_session.close)
    no_memo_session, no_memo = session_programs(["-DDP_NO_MEMO"])
    cleanup.callback(no_memo_session.close)
    no_hop_session, no_hop = session_programs(["-DDP_NO_HOP"])
    cleanup.callback(no_hop_session.close)
    adds, adds_bpf = floor_programs(REFERENCE_ADDS)
    cleanup.callback(adds_bpf.cleanup)
    configs = {"baseline": contextlib.nullcontext, "floor": lambda: attached(floor),
               "floor again": lambda: attached(floor_again), "active": lambda: attached(ours),
               "active, filtered out": lambda: filtered_out(session, ours),
               "reading headers only": lambda: attached(headers_only),
               "active, no memo": lambda: attached(no_memo), "active, no hop": lambda: attached(no_hop),
               ADDS_REFERENCE: lambda: attached(adds)}
    if have_bpftrace:
        configs["bpftrace"] = Bpftrace
    return configs
