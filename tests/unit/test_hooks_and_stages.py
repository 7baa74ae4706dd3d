import re

import pytest

from procfs_fuse.drop_packet.hooks import CANDIDATES, KPROBE, TRACEPOINT, plan
from procfs_fuse.drop_packet.stages import PROGRAM, SHARED_HEADER, STAGES, parse_stages

C_SOURCE = PROGRAM.read_text()
# stub name -> the DP_STAGE_ it counts at
STUB_STAGES = dict(re.findall(r"^int (dp_\w+)\([^)]*\)\n\{.*?DP_STAGE_(\w+)", C_SOURCE, re.S | re.M))


def test_stages_come_from_the_shared_header():
    assert STAGES == ("ETH_RECV", "GRO_RECV", "RECV_SKB", "TCP_V4_RCV", "UDP_RCV", "TCP_V6_RCV",
                      "UDP_V6_RCV", "QUEUE_XMIT", "SEND_SKB", "RETRANS", "DROPPED")
    assert STAGES == parse_stages(SHARED_HEADER.read_text())


@pytest.mark.parametrize("text, reason", [
    ("enum other { X = 0 };", "no enum dp_stage"),
    ("enum dp_stage { DP_STAGE_A = 0, DP_STAGE_B = 2, DP_NR_STAGES = 2, };", "0..n-1"),
    ("enum dp_stage { DP_STAGE_A = 0, DP_STAGE_B = 1, DP_NR_STAGES = 3, };", "DP_NR_STAGES"),
])
def test_header_mistakes_are_caught(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_stages(text)


def test_every_stage_has_candidates_and_every_candidate_a_stub_for_its_stage():
    assert tuple(CANDIDATES) == STAGES
    for stage, candidates in CANDIDATES.items():
        assert candidates
        for candidate in candidates:
            assert STUB_STAGES.get(candidate.function) == stage, candidate


def test_every_stub_is_some_candidate():
    functions = {c.function for cs in CANDIDATES.values() for c in cs}
    assert set(STUB_STAGES) == functions


def test_plan_prefers_kprobes_when_the_kernel_has_them():
    hooks = plan(lambda c: None)
    assert [h.chosen.kind for h in hooks] == [KPROBE] * 8 + [TRACEPOINT] * 3
    assert hooks[7].describe() == "kprobe dev_queue_xmit"
    assert all(not h.skipped for h in hooks)
    assert hooks[0].describe() == "kprobe eth_type_trans"


def test_plan_without_kprobes_falls_back_and_says_why():
    hooks = {h.stage: h for h in plan(lambda c: "kprobes not supported" if c.kind == KPROBE else None)}
    assert hooks["ETH_RECV"].describe() == (
        "tracepoint net:netif_rx, approximate (kprobe eth_type_trans: kprobes not supported)")
    assert hooks["RECV_SKB"].describe() == (
        "tracepoint net:netif_receive_skb (kprobe __netif_receive_skb_core: kprobes not supported)")
    assert hooks["TCP_V4_RCV"].chosen is None
    assert hooks["TCP_V4_RCV"].describe() == "unavailable (kprobe tcp_v4_rcv: kprobes not supported)"
    assert hooks["SEND_SKB"].describe() == "tracepoint net:net_dev_xmit"


def test_plan_with_nothing_available_lists_every_reason():
    hooks = plan(lambda c: "no such tracepoint" if c.kind == TRACEPOINT else "kprobes not supported")
    assert all(h.chosen is None for h in hooks)
    assert hooks[1].describe() == ("unavailable (kprobe napi_gro_receive: kprobes not supported; "
                                   "tracepoint net:napi_gro_receive_entry: no such tracepoint)")


def test_a_failed_attach_moves_on_to_the_next_candidate():
    tried = []

    def attach(candidate):
        tried.append(candidate.target)
        return "attach failed: EPERM" if candidate.target == "eth_type_trans" else None

    hooks = plan(attach)
    assert hooks[0].chosen.target == "net:netif_rx"
    assert tried[:2] == ["eth_type_trans", "net:netif_rx"]


def test_report_orders_name_only_real_stages():
    from procfs_fuse.drop_packet.report import PATH_ORDER, STAGE_SCOPE
    assert set(STAGE_SCOPE) <= set(STAGES)
    # every stage a packet passes is in the path order; the event counters are not
    assert set(PATH_ORDER) == set(STAGES) - {"RETRANS", "DROPPED"}
