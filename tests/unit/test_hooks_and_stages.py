"""The stage table against the shared header and the C stubs, and hook
planning over it. Expectations come from the table, not from positions."""
import re

import pytest

from procfs_fuse.drop_packet.capture.program import with_local_includes
from procfs_fuse.drop_packet.capture.hooks import plan
from procfs_fuse.drop_packet.capture.stages import (BY_NAME, CGROUP_SKB, KPROBE, PATH_ORDER, PROGRAM, SHARED_HEADER,
                                                    STAGES, TABLE, TRACEPOINT, Stage, with_ids, parse_stages)

C_SOURCE = with_local_includes(PROGRAM)  # what BCC compiles
_BODIES = dict(re.findall(r"^(?:static __always_inline )?(?:int|void) (dp_\w+)\([^)]*\)\n\{(.*?)^\}", C_SOURCE,
                          re.S | re.M))


def _counted_at(body):
    """The DP_STAGE_s a body counts at, itself or through the dp_count_* it calls (DP_AT_SOCKET: those
    dp_socket_stage picks from)."""
    text = body + "".join(_BODIES[name] for name in re.findall(r"\b(dp_count_(?:at_socket|retransmit|drop))\(", body))
    return set(re.findall(r"DP_STAGE_(\w+)", _BODIES["dp_socket_stage"] if "DP_AT_SOCKET" in text else text))


# stub name -> the DP_STAGE_s it counts at
STUB_STAGES = {name: _counted_at(body) for name, body in _BODIES.items() if name.startswith(("dp_kp_", "dp_tp_", "dp_cg_"))}


def test_the_table_has_one_row_per_header_stage_with_its_id():
    assert STAGES == parse_stages(SHARED_HEADER.read_text())
    assert sorted((row.id, row.name) for row in TABLE) == list(enumerate(STAGES))
    # the classic module's five stages are there, by the names its users grep for
    assert {"ETH_RECV", "GRO_RECV", "RECV_SKB", "TCP_V4_RCV", "UDP_RCV", "QUEUE_XMIT", "SEND_SKB"} <= set(STAGES)


@pytest.mark.parametrize("text, reason", [
    ("enum other { X = 0 };", "no enum dp_stage"),
    ("enum dp_stage { DP_STAGE_A = 0, DP_STAGE_B = 2, DP_NR_STAGES = 2, };", "0..n-1"),
    ("enum dp_stage { DP_STAGE_A = 0, DP_STAGE_B = 1, DP_NR_STAGES = 3, };", "DP_NR_STAGES"),
])
def test_header_mistakes_are_caught(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_stages(text)


def test_a_row_without_a_header_stage_or_a_stage_without_a_row_is_caught():
    rows = (Stage("A", ()), Stage("B", ()))
    assert [(r.name, r.id) for r in with_ids(("B", "A"), rows)] == [("A", 1), ("B", 0)]
    with pytest.raises(ValueError, match="do not match"):
        with_ids(("A",), rows)
    with pytest.raises(ValueError, match="do not match"):
        with_ids(("A", "B", "C"), rows)


def test_every_stage_has_candidates_and_every_candidate_a_stub_for_its_stage():
    for row in TABLE:
        assert row.candidates, row.name
        for candidate in row.candidates:
            assert row.name in STUB_STAGES.get(candidate.function, ()), candidate
            assert len(STUB_STAGES[candidate.function]) == 1 or candidate.kind == CGROUP_SKB, candidate


def test_every_stub_is_some_candidate():
    assert set(STUB_STAGES) == {c.function for row in TABLE for c in row.candidates}


def test_a_program_is_compiled_only_when_wanted_and_a_stub_that_reads_its_record_only_with_its_offsets():
    for row in TABLE:
        for candidate in row.candidates:
            before = C_SOURCE[:C_SOURCE.index("\nint %s(" % candidate.function)]
            conditionals = re.findall(r"^#(?:ifdef|ifndef|if|endif)\b.*$", before, re.M)
            assert conditionals[-1] == "#ifdef DP_WANT_%s" % candidate.function, candidate
            if candidate.record:
                assert conditionals[-2] == "#ifdef %s_%s" % (candidate.record.prefix,
                                                             candidate.record.needed[0].upper()), candidate


def test_the_path_is_send_then_receive_and_events_are_not_on_it():
    met = [PATH_ORDER.index(stage) for stage in ("QUEUE_XMIT", "SEND_SKB", "ETH_RECV", "GRO_RECV", "RECV_SKB",
                                                 "TCP_V4_RCV", "UDP_RCV", "TCP_V6_RCV", "UDP_V6_RCV")]
    assert met == sorted(met)
    assert set(PATH_ORDER) == {row.name for row in TABLE if row.path is not None}
    assert BY_NAME["RETRANS"].path is None and BY_NAME["DROPPED"].path is None


def test_plan_prefers_the_first_candidate_when_the_kernel_has_everything():
    hooks = plan(lambda c: None)
    assert [h.chosen for h in hooks] == [row.candidates[0] for row in TABLE]
    assert all(not h.skipped for h in hooks)
    assert {h.stage: h.describe() for h in hooks}["QUEUE_XMIT"] == "kprobe dev_queue_xmit"


def test_plan_without_kprobes_falls_back_and_says_why():
    hooks = {h.stage: h for h in plan(lambda c: "kprobes not supported" if c.kind == KPROBE else None)}
    for row in TABLE:
        kprobes = [c for c in row.candidates if c.kind == KPROBE]
        others = [c for c in row.candidates if c.kind != KPROBE]
        assert hooks[row.name].chosen == (others[0] if others else None)
        assert hooks[row.name].skipped == tuple((c, "kprobes not supported") for c in kprobes)
    assert hooks["ETH_RECV"].describe() == (
        "tracepoint net:netif_rx, approximate (kprobe eth_type_trans: kprobes not supported)")
    assert hooks["TCP_V4_RCV"].describe() == ("cgroup_skb ingress, approximate: packets that found a socket "
                                              "(kprobe tcp_v4_rcv: kprobes not supported)")
    assert hooks["SEND_SKB"].describe() == "tracepoint net:net_dev_xmit"


def test_the_socket_stages_fall_back_to_cgroup_skb_and_say_so_when_that_fails_too():
    hooks = {h.stage: h for h in plan(lambda c: {"kprobe": "kprobes not supported",
                                                 "cgroup_skb": "attach failed: EPERM"}.get(c.kind))}
    for stage in ("TCP_V4_RCV", "UDP_RCV", "TCP_V6_RCV", "UDP_V6_RCV"):
        assert hooks[stage].chosen is None
        assert hooks[stage].describe().endswith("; cgroup_skb ingress: attach failed: EPERM)")


def test_plan_with_nothing_available_lists_every_reason():
    hooks = plan(lambda c: "no such tracepoint" if c.kind == TRACEPOINT else "kprobes not supported")
    assert all(h.chosen is None for h in hooks)
    assert {h.stage: h.describe() for h in hooks}["GRO_RECV"] == (
        "unavailable (kprobe napi_gro_receive: kprobes not supported; "
        "tracepoint net:napi_gro_receive_entry: no such tracepoint)")


def test_a_failed_attach_moves_on_to_the_next_candidate():
    tried = []
    first, second = BY_NAME["ETH_RECV"].candidates[:2]

    def attach(candidate):
        tried.append(candidate)
        return "attach failed: EPERM" if candidate == first else None

    hooks = {h.stage: h for h in plan(attach)}
    assert hooks["ETH_RECV"].chosen == second
    assert tried[:2] == [first, second]


def test_the_socket_stages_cgroup_program_needs_the_direct_read_to_read_the_sk_buff():
    from procfs_fuse.drop_packet.capture.activation import why_not_here
    from procfs_fuse.drop_packet.capture.stages import AT_SOCKET
    assert why_not_here(AT_SOCKET, None) is None
    assert why_not_here(AT_SOCKET, "no bpf_rdonly_cast in this kernel (6.2+)") == (
        "cannot read the sk_buff: no bpf_rdonly_cast in this kernel (6.2+)")
    assert why_not_here(BY_NAME["DROPPED"].candidates[0], "no bpf_rdonly_cast") is None  # copies instead
    # one program for the four: the plan's equal candidates are attached once
    assert {c for row in TABLE if row.path and row.protocol for c in row.candidates if c.kind == CGROUP_SKB} == {
        AT_SOCKET}
