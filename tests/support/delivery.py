"""Did the kernel run the tool's programs at every hit of their tracepoints
and kprobes? The kernel's own count of each program's runs (run_cnt, while
kernel.bpf_stats_enabled) against tracefs's count of hits of the same
tracepoint (or of a kprobe of its own on the same function), in a tracefs
instance of its own, over a window around some traffic.

On this VM's 6.18 the kernel now and then runs no BPF program at all for a
tracepoint hit that tracefs records (any program, not ours alone; no
recursion miss recorded: docs/hooks.md); on 6.1 a kprobe program that would
nest in another tracing program is skipped. A test that asserts exact counts
does its traffic again where that happened, and only there."""
import json
import os
from pathlib import Path

from procfs_fuse.drop_packet.capture.stages import KPROBE, TABLE, TRACEPOINT
from procfs_fuse.kernel.tracefs import TRACEFS
from tests.support.mounts import sh

STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
NAME_LEN = 15  # a BPF program's name as the kernel keeps it (BPF_OBJ_NAME_LEN less its NUL)


def watched(hooks, group):
    """{program name: "category/event" of the hits it should run at} of the
    stages a report's hooks ({stage: "tracepoint net:net_dev_queue (...)"})
    attach to tracepoints and kprobes: a kprobe's are those of an event
    GROUP/FUNCTION of tracefs's own on the same function."""
    attached = {stage: text.split(" (")[0].split(",")[0] for stage, text in hooks.items()}  # less ", approximate"
    found = {}
    for row in TABLE:
        for candidate in row.candidates:
            if attached.get(row.name) != candidate.describe():
                continue
            if candidate.kind == TRACEPOINT:
                found[candidate.function] = candidate.target.replace(":", "/")
            elif candidate.kind == KPROBE:
                found[candidate.function] = "%s/%s" % (group, candidate.target)
    return found


def run_counts(programs):
    """{program name: run_cnt} of the loaded programs of these names."""
    loaded = json.loads(sh("bpftool -j prog show", check=True).stdout or "[]")
    counts = {name: 0 for name in programs}
    for program in loaded:
        for name in programs:
            if program.get("name", "")[:NAME_LEN] == name[:NAME_LEN]:
                counts[name] += program.get("run_cnt", 0)
    return counts


class Delivery:
    """A window (with ...:) over which skipped() says, per tracepoint or
    kprobe, how many hits the kernel ran the program watching it for none. Events outside the
    window are counted only by run_cnt, so a hit is called skipped only where
    tracefs saw more hits than the program ran: never wrongly."""

    def __init__(self, hooks):
        self._group = "dpdelivery%d" % os.getpid()  # of our kprobe events
        self.watched = watched(hooks, self._group)
        self._kprobes = sorted(event.split("/")[1] for event in self.watched.values()
                               if event.startswith(self._group + "/"))
        self._instance = Path(TRACEFS) / "instances" / ("dp-delivery-%d" % os.getpid())
        self._stats_were, self._runs_before = None, {}

    def _events(self, enable):
        for event in set(self.watched.values()):
            switch = self._instance / "events" / event / "enable"
            if enable or switch.exists():  # leaving: only what was made
                switch.write_text("1" if enable else "0")

    def _kprobe_events(self, lines):
        lines = list(lines)
        if not lines:  # no kprobe watched (and where there are no kprobes, no file to open)
            return
        # os.write, not open(..., "a"): Python seeks an appended file, and 6.1's kprobe_events refuses seeks
        fd = os.open(Path(TRACEFS) / "kprobe_events", os.O_WRONLY | os.O_APPEND)
        try:
            for line in lines:
                os.write(fd, (line + "\n").encode())  # one definition a write
        finally:
            os.close(fd)

    def __enter__(self):
        self._stats_were = STATS.read_text().strip()
        try:  # what a failure here made is undone (the sysctl too), as on leaving the window
            STATS.write_text("1")
            self._kprobe_events("p:%s/%s %s" % (self._group, function, function) for function in self._kprobes)
            self._instance.mkdir()
            (self._instance / "buffer_size_kb").write_text("32768")  # a CPU's: a transfer's events and room
            (self._instance / "tracing_on").write_text("0")
            self._events(True)  # a kprobe event counts its hits while enabled somewhere
            # the runs first, then the hits: a hit between is a run only
            self._runs_before = run_counts(self.watched)
            self._kprobe_hits_before = self._kprobe_hits()
            (self._instance / "tracing_on").write_text("1")
        except BaseException:
            self.__exit__()
            raise
        return self

    def skipped(self):
        """{"category/event": hits the kernel ran no program for}, those above 0.
        Closes the window (the hits first, then the runs)."""
        (self._instance / "tracing_on").write_text("0")
        kprobe_hits = self._kprobe_hits()
        overrun = sum(int(line.split()[1]) for cpu in (self._instance / "per_cpu").iterdir()
                      for line in (cpu / "stats").read_text().splitlines() if line.startswith("overrun:"))
        assert overrun == 0, "the tracefs buffer lost events: make it bigger"
        by_name = {event.split("/")[1]: event for event in self.watched.values()}  # a trace line names the event
        hits = dict.fromkeys(self.watched.values(), 0)
        for line in (self._instance / "trace").read_text().splitlines():
            fields = line.split(": ", 2)
            if not line.startswith("#") and len(fields) == 3 and fields[1] in by_name:
                hits[by_name[fields[1]]] += 1
        hits.update({event: n - self._kprobe_hits_before[event] for event, n in kprobe_hits.items()})
        runs = run_counts(self.watched)
        self.counts = {event: (hits[event], runs[name] - self._runs_before[name])  # (hits, runs)
                       for name, event in self.watched.items()}
        return {event: hit - ran for event, (hit, ran) in self.counts.items() if hit > ran}

    def _kprobe_hits(self):
        """{"GROUP/FUNCTION": hits} of our kprobe events: kprobe_profile's, which counts a hit
        the kprobe ran its handlers for (nhit) or could not (nmissed: a kprobe was running on
        that CPU), as tracefs's buffer would not (its own recursion guard drops events)."""
        if not self._kprobes:
            return {}
        hits = {}
        for line in (Path(TRACEFS) / "kprobe_profile").read_text().splitlines():
            name, nhit, nmissed = line.split()
            if name in self._kprobes:
                hits["%s/%s" % (self._group, name)] = int(nhit) + int(nmissed)
        return hits

    def __exit__(self, *exc):
        if self._instance.exists():
            self._events(False)
            self._instance.rmdir()
        made = Path(TRACEFS) / "events" / self._group
        self._kprobe_events("-:%s/%s" % (self._group, function) for function in self._kprobes
                            if (made / function).exists())
        STATS.write_text(self._stats_were)
