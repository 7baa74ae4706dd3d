"""What the kernel says our tables take: each map's memlock (bpftool's, the
fdinfo's: on 6.4+ the kernel's own count of what it allocated, on older
kernels its estimate from sizes and possible CPUs), and how many CPUs it
allocates per-CPU memory for."""
import json
from pathlib import Path

from tests.support.mounts import sh

PER_CPU = ("dp_slots", "dp_memos")  # bpf/drop_packet.c: per CPU only what is small and hot
SHARED = ("dp_flows", "dp_drops", "dp_nats")  # grow with flows (dp_nats: where the kernel has conntrack)


def possible_cpus(listed=None):
    """How many CPUs a list such as /sys/devices/system/cpu/possible's ("0-63", "0,2-3") holds."""
    listed = listed if listed is not None else Path("/sys/devices/system/cpu/possible").read_text()
    ranges = [part.split("-") for part in listed.strip().split(",")]
    return sum(int(r[-1]) - int(r[0]) + 1 for r in ranges)


def table_memory():
    """{map name: (max_entries, memlock bytes)} of our loaded maps (prefix dp_)."""
    maps = json.loads(sh("bpftool -j map show", check=True).stdout or "[]")
    return {m["name"]: (m["max_entries"], m["bytes_memlock"]) for m in maps if m.get("name", "").startswith("dp_")}
