"""Stage ids and names, read from the one shared header bpf/drop_packet.h."""
import re
from pathlib import Path

BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"
SHARED_HEADER = BPF_DIR / "drop_packet.h"
PROGRAM = BPF_DIR / "drop_packet.c"

_ENUM = re.compile(r"enum dp_stage \{(.*?)\};", re.S)
_ENUMERATOR = re.compile(r"DP_STAGE_(\w+)\s*=\s*(\d+)")


def parse_stages(header_text):
    """Stage names in id order; ids must be 0..n-1 and DP_NR_STAGES must be n."""
    body = _ENUM.search(header_text)
    if not body:
        raise ValueError("no enum dp_stage in header")
    pairs = [(int(v), name) for name, v in _ENUMERATOR.findall(body.group(1))]
    pairs.sort()
    if [v for v, _ in pairs] != list(range(len(pairs))):
        raise ValueError("stage ids are not 0..n-1")
    total = re.search(r"DP_NR_STAGES\s*=\s*(\d+)", body.group(1))
    if not total or int(total.group(1)) != len(pairs):
        raise ValueError("DP_NR_STAGES does not match the stage count")
    return tuple(name for _, name in pairs)


STAGES = parse_stages(SHARED_HEADER.read_text())
