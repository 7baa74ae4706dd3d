"""Activation: the program (program.py) attached by the hook plan, and
detached. The one place that knows every attach kind both ways."""
import ctypes
import errno
import logging
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ... import heap
from ...kernel import bpfsys, bytecode, cgroup, tracefs
from ...kernel.btf import BTF
from . import hooks as hookplan
from . import reasons
from ..errors import ErrnoError
from .program import compile_program, record_formats
from .settings import DEFAULT_MAX_FLOWS
from .stages import CGROUP_SKB, KPROBE, PROGRAM, TABLE

log = logging.getLogger(__name__)
BPF_CGROUP_INET_INGRESS = 0  # enum bpf_attach_type


def _cgroup_ingress_link(bpf, function):
    """A BPF link of function (a cgroup_skb program) on the cgroup v2 root's
    ingress; closing its fd detaches it, so it never outlives the daemon
    (an attachment by BPF_PROG_ATTACH would, after kill -9)."""
    from bcc import BPF
    program = bpf.load_func(function, BPF.CGROUP_SKB)
    root = os.open(cgroup.ensure_v2_root(), os.O_RDONLY | os.O_DIRECTORY)
    try:
        attr = ctypes.create_string_buffer(bpfsys.ATTR_SIZE)
        # prog_fd, target_fd, attach_type (BPF_CGROUP_INET_INGRESS), flags: links are always multi
        struct.pack_into("<IIII", attr, 0, program.fd, root, BPF_CGROUP_INET_INGRESS, 0)
        link = bpfsys.bpf(bpfsys.BPF_LINK_CREATE, attr)
    finally:
        os.close(root)
    return lambda: os.close(link)


def _kprobe(bpf, event, function):
    bpf.attach_kprobe(event=event, fn_name=function)
    return lambda: bpf.detach_kprobe(event=event)


def _tracepoint(bpf, event, function):
    bpf.attach_tracepoint(tp=event, fn_name=function)
    return lambda: bpf.detach_tracepoint(tp=event)


def _raw_tracepoint(bpf, event, function):  # cheaper: no event record is copied; BCC names it by the event alone
    bpf.attach_raw_tracepoint(tp=event.split(b":")[1], fn_name=function)
    return lambda: bpf.detach_raw_tracepoint(tp=event.split(b":")[1])


def _way(candidate):
    """(the function that attaches a candidate's stub, the stub's BPF program
    type as BCC names it): the attach and the loads beforehand agree."""
    if candidate.kind == KPROBE:
        return _kprobe, "KPROBE"
    if candidate.kind == CGROUP_SKB:
        return (lambda bpf, _ingress, function: _cgroup_ingress_link(bpf, function)), "CGROUP_SKB"
    # a stub that reads the event record, or a raw tracepoint's
    return (_tracepoint, "TRACEPOINT") if candidate.record else (_raw_tracepoint, "RAW_TRACEPOINT")


def load_at_once(bpf, candidates):
    """Loads the candidates' stubs, as many at once as this machine has CPUs:
    the kernel verifies each on the loading thread's CPU (8 stubs here: 0.45-0.55
    s one by one, 0.25 two at a time). BCC keeps what it loaded for the attach; a
    stub that fails to load here is loaded again, and its failure reported, by
    the attach."""
    from bcc import BPF

    def load(candidate):
        try:
            bpf.load_func(candidate.function.encode(), getattr(BPF, _way(candidate)[1]))
        except Exception:  # BCC raises plain Exception
            pass
    with ThreadPoolExecutor(max(1, min(len(candidates), os.cpu_count() or 1))) as pool:
        list(pool.map(load, candidates))
    heap.give_back()  # what the loads freed: the daemon's memory stays where it was between activations


def attach(bpf, candidate, function=None):
    """Attaches function (default: the candidate's stub) the way the candidate
    says; returns the call that detaches it."""
    how, _program_type = _way(candidate)
    return how(bpf, candidate.target.encode(), (function or candidate.function).encode())


def why_not_here(candidate, why_no_direct_read):
    """What our program cannot do on this kernel (why_no_direct_read: from
    bytecode.rdonly_cast_id): a cgroup_skb program may not copy kernel memory, so
    it reads the sk_buff only by bpf_rdonly_cast."""
    if candidate.kind == CGROUP_SKB and why_no_direct_read:
        return "cannot read the sk_buff: %s" % why_no_direct_read
    return None


def nat_hook(hook, stage_hooks):
    """The NAT line of the hooks: a socket stage on cgroup_skb runs after
    conntrack let go of the packet (nf_reset_ct in tcp_v4_rcv and UDP's
    queueing), so a translation to a local socket is not followed there."""
    if hook.chosen and any(h.chosen and h.chosen.kind == CGROUP_SKB for h in stage_hooks):
        return replace(hook, chosen=replace(hook.chosen, approximate=True, sees=(
            "a flow translated to a local socket (a redirect) is counted at a cgroup_skb socket stage as "
            "translated: conntrack lets go of the packet before")))
    return hook


class Activation:
    """The program compiled for this kernel, then attached by the hook plan.
    close() detaches everything and frees the program and its maps."""

    def __init__(self, max_flows=DEFAULT_MAX_FLOWS):
        tracefs.ensure_mounted()  # before the event formats and the hooks are read from it
        btf = BTF.from_file()
        formats = record_formats()
        self.reason_names = reasons.reason_names(formats.get("skb:kfree_skb"), btf)
        self.hooks, self._detach, self._attached = None, [], set()  # _attached: (Candidate, function)
        self._kernel = tracefs.KernelHooks()
        rdonly_cast = bytecode.rdonly_cast_id(btf)
        self._why_no_direct_read = rdonly_cast[1]
        # only the programs of hooks this kernel has: half of them where kprobes are not
        attachable = {c.function for row in TABLE for c in row.candidates if not self._why_unavailable(c)}
        self.bpf, _why, self.nat_hook = compile_program(PROGRAM, max_flows, btf, formats, attachable, rdonly_cast)
        heap.give_back()  # the compiler's working memory

    def attach(self):
        """Attaches the plan's first working candidate of each stage; fails
        (having detached all) when no stage attaches at all."""
        # the stubs this plan will attach unless one fails: verified side by side first
        load_at_once(self.bpf, {h.chosen: None for h in hookplan.plan(self._why_unavailable) if h.chosen})
        self.hooks = hookplan.plan(lambda c: self._why_unavailable(c) or self._attach(c))
        if not any(h.chosen for h in self.hooks):
            self.close()
            raise ErrnoError(errno.EOPNOTSUPP, "no stage could attach: " + "; ".join(
                "%s: %s" % (h.stage, h.describe()) for h in self.hooks))
        self.hooks.append(nat_hook(self.nat_hook, self.hooks))  # flows followed through NAT: by conntrack, or why not

    def _why_unavailable(self, candidate):
        return self._kernel.why_unavailable(candidate) or why_not_here(candidate, self._why_no_direct_read)

    def _attach(self, candidate):
        """None if attached (or there already: one program serves several
        stages), else why not: a failed attach moves on to the next candidate."""
        if (candidate, candidate.function) in self._attached:
            return None
        try:
            self._detach.append(attach(self.bpf, candidate))
        except Exception as e:  # BCC raises plain Exception on attach failure
            log.warning("attach %s failed: %s", candidate.describe(), e)
            return "attach failed: %s" % e
        self._attached.add((candidate, candidate.function))
        return None

    def detach(self):
        while self._detach:
            self._detach.pop()()
        self._attached.clear()

    def close(self):
        bpf, self.bpf = self.bpf, None
        try:
            self.detach()  # cgroup links first: BCC does not know them
        finally:
            if bpf is not None:
                bpf.cleanup()  # detaches every probe and closes program and map fds
                heap.give_back()
