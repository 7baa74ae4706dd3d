"""The BPF C as the product compiles it: one counting path, and no
conditional a build of the product does not set (a benchmark's reference
build includes the product's parts, the product has no build of its own)."""
import re

from procfs_fuse.drop_packet.capture.conntrack import CONNTRACK_OFFSETS
from procfs_fuse.drop_packet.capture.program import EVERY_PROGRAM, PROGRAM, with_local_includes
from procfs_fuse.drop_packet.capture.stages import RECORDS

SOURCE = with_local_includes(PROGRAM)
INCLUDE_GUARDS = {"DROP_PACKET_H", "DROP_PACKET_PACKET_H"}
COMPILER = {"__BYTE_ORDER__"}
# what program.compile_flags may define: the direct-read switch, each record's first needed field, conntrack's,
# each program's
SET_BY_THE_PRODUCT = ({"DP_DIRECT_READ"} | {"%s_%s" % (r.prefix, r.needed[0].upper()) for r in RECORDS.values()}
                      | set(CONNTRACK_OFFSETS) | {"DP_WANT_" + name for name in EVERY_PROGRAM})


def test_every_conditional_is_one_the_product_sets_or_an_include_guard():
    tested = set(re.findall(r"^#\s*if(?:n?def)?\s+(\w+)", SOURCE, re.M))
    allowed = SET_BY_THE_PRODUCT | INCLUDE_GUARDS | COMPILER
    assert tested <= allowed, tested - allowed


def test_every_count_goes_through_the_one_counting_path():
    """Only dp_add touches the counters (a slot; the flow's shared table
    entry, atomically), and only dp_count_flow calls it; but for a memo's
    hit, which counts in the slot the memo names (in dp_count_ipv4: the
    measured fast path)."""
    adds = [SOURCE[:at].rsplit("\nstatic ", 1)[1].split("(")[0].split()[-1]
            for at in (m.start() for m in re.finditer(r"dp_packets\[stage\](?: \+= |, )", SOURCE))]
    assert adds == ["dp_add", "dp_add", "dp_count_ipv4"]
    assert "__sync_fetch_and_add(&counts->dp_packets[stage], n)" in SOURCE
    assert re.findall(r"\bdp_add\(", SOURCE).__len__() == 2  # its definition and dp_count_flow's call
    for program in ("dp_count_ipv4", "dp_count_ipv6", "dp_count_retransmit", "dp_count_drop"):
        body = SOURCE[SOURCE.index("%s(" % program):]
        body = body[:body.index("\n}\n")]
        assert "dp_count_flow(" in body, program
