"""tracefs: make sure it is mounted, and tell which hooks this kernel offers."""
import os
import subprocess

TRACEFS = "/sys/kernel/tracing"
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"


def ensure_mounted(root=TRACEFS):
    """Mount tracefs if its events are not visible; returns the root."""
    if not os.path.isdir(os.path.join(root, "events")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", root], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return root


def read_text_symbols(kallsyms_text):
    """Names of functions (text symbols) in /proc/kallsyms text."""
    names = set()
    for line in kallsyms_text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tT":
            names.add(parts[2])
    return names


class KernelHooks:
    """What this kernel can attach to. Paths are parameters so tests can fake a kernel."""

    def __init__(self, tracefs=TRACEFS, kprobe_pmu=KPROBE_PMU, kallsyms="/proc/kallsyms"):
        self.tracefs = tracefs
        self.kprobes_supported = os.path.exists(kprobe_pmu) or os.path.exists(
            os.path.join(tracefs, "kprobe_events"))
        self._kallsyms = kallsyms
        self._symbols = None

    def tracepoint_exists(self, name):
        category, event = name.split(":")
        return os.path.isdir(os.path.join(self.tracefs, "events", category, event))

    def symbols(self):
        if self._symbols is None:
            with open(self._kallsyms) as f:
                self._symbols = read_text_symbols(f.read())
        return self._symbols

    def why_unavailable(self, candidate):
        if candidate.kind == "kprobe":
            if not self.kprobes_supported:
                return "kprobes not supported"
            if candidate.target not in self.symbols():
                return "no such function"
            return None
        if not self.tracepoint_exists(candidate.target):
            return "no such tracepoint"
        return None
