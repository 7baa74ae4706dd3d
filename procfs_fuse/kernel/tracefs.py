"""tracefs: make sure it is mounted, and tell which hooks this kernel offers."""
import os
import re
import subprocess

from .ksyms import text_symbols

TRACEFS = "/sys/kernel/tracing"
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"


def ensure_mounted(root=TRACEFS):
    """Mount tracefs if its events are not visible; returns the root."""
    if not os.path.isdir(os.path.join(root, "events")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", root], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return root


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
                self._symbols = {name for _address, name in text_symbols(f.read())}
        return self._symbols

    def why_unavailable(self, candidate):
        if candidate.kind == "cgroup_skb":  # needs no tracefs: a cgroup v2 root, found or mounted
            return None
        if candidate.kind == "kprobe":
            if not self.kprobes_supported:
                return "kprobes not supported"
            if candidate.target not in self.symbols():
                return "no such function"
            return None
        if not self.tracepoint_exists(candidate.target):
            return "no such tracepoint"
        return None


def event_format(name, root=TRACEFS):
    """The text of events/CATEGORY/EVENT/format, or None if the event is missing."""
    category, event = name.split(":")
    try:
        with open(os.path.join(root, "events", category, event, "format")) as f:
            return f.read()
    except FileNotFoundError:
        return None


_FIELD = re.compile(r"field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);")


def parse_fields(format_text):
    """{field name: (offset, size)} of an event format; common_* fields left out."""
    fields = {}
    for m in _FIELD.finditer(format_text):
        name = re.sub(r"\[.*\]$", "", m.group("decl").split()[-1])
        if not name.startswith("common_"):
            fields[name] = (int(m.group("offset")), int(m.group("size")))
    return fields


def parse_symbolic(format_text, field):
    """{value: name} of `__print_symbolic(REC->field, { 2, "NAME" }, ...)` in the print fmt."""
    start = format_text.find("__print_symbolic(REC->%s," % field)
    if start < 0:
        return {}
    depth, end = 0, start
    for end in range(start, len(format_text)):  # to the matching parenthesis
        depth += {"(": 1, ")": -1}.get(format_text[end], 0)
        if depth == 0 and format_text[end] == ")":
            break
    pairs = re.findall(r'\{\s*(-?\d+)\s*,\s*"([^"]*)"\s*\}', format_text[start:end])
    return {int(value): name for value, name in pairs}
