import ipaddress

from procfs_fuse.drop_packet.flows import Filters, Flow
from procfs_fuse.drop_packet.hooks import CANDIDATES, StageHook
from procfs_fuse.drop_packet.report import render


def _hooks_without_kprobes():
    """As on this machine's kernel: no kprobes, tracepoint fallbacks."""
    hooks = []
    for stage, candidates in CANDIDATES.items():
        kprobes = [c for c in candidates if c.kind == "kprobe"]
        others = [c for c in candidates if c.kind != "kprobe"]
        hooks.append(StageHook(stage, others[0] if others else None,
                               tuple((c, "kprobes not supported") for c in kprobes)))
    return hooks


def test_inactive_never_attached():
    assert render(False, Filters(), None, None, {}) == (
        "settings:\n"
        "  activated: N\n"
        "  source-addr: *\n"
        "  source-port: *\n"
        "  dest-addr: *\n"
        "  dest-port: *\n"
        "  last-error: none\n"
        "hooks:\n"
        "  (never attached)\n"
        "flows: 0\n")


def test_active_with_flows_filters_and_error():
    udp = Flow(17, ipaddress.ip_address("198.18.0.1"), 40000, ipaddress.ip_address("198.18.0.2"), 7777)
    tcp6 = Flow(6, ipaddress.ip_address("2001:db8::1"), 5000, ipaddress.ip_address("2001:db8::2"), 80)
    tcp4 = Flow(6, ipaddress.ip_address("198.18.0.2"), 80, ipaddress.ip_address("198.18.0.1"), 5000)
    flows = {udp: [1000, 0, 1000, 0, 0, 1000], tcp6: [1, 2, 3, 4, 5, 6], tcp4: [7, 0, 7, 0, 0, 0]}
    filters = Filters(dest_addr=ipaddress.ip_address("198.18.0.2"), source_port=40000)
    text = render(True, filters, "bad port '70000': want 0..65535", _hooks_without_kprobes(), flows)
    assert text == (
        "settings:\n"
        "  activated: y\n"
        "  source-addr: *\n"
        "  source-port: 40000\n"
        "  dest-addr: 198.18.0.2\n"
        "  dest-port: *\n"
        "  last-error: bad port '70000': want 0..65535\n"
        "hooks:\n"
        "  ETH_RECV: tracepoint net:netif_rx, approximate (kprobe eth_type_trans: kprobes not supported)\n"
        "  GRO_RECV: tracepoint net:napi_gro_receive_entry (kprobe napi_gro_receive: kprobes not supported)\n"
        "  RECV_SKB: tracepoint net:netif_receive_skb (kprobe __netif_receive_skb_core: kprobes not supported)\n"
        "  TCP_V4_RCV: unavailable (kprobe tcp_v4_rcv: kprobes not supported)\n"
        "  UDP_RCV: unavailable (kprobe udp_rcv: kprobes not supported)\n"
        "  SEND_SKB: tracepoint net:net_dev_xmit\n"
        "flows: 3\n"
        "protocol: TCP, Source IP: 198.18.0.2, Source Port: 80, Dest IP: 198.18.0.1, Dest Port: 5000\n"
        "    ETH_RECV: 7\n"
        "    GRO_RECV: 0\n"
        "    RECV_SKB: 7\n"
        "    TCP_V4_RCV: -\n"
        "    UDP_RCV: -\n"
        "    SEND_SKB: 0\n"
        "protocol: TCP, Source IP: 2001:db8::1, Source Port: 5000, Dest IP: 2001:db8::2, Dest Port: 80\n"
        "    ETH_RECV: 1\n"
        "    GRO_RECV: 2\n"
        "    RECV_SKB: 3\n"
        "    TCP_V4_RCV: -\n"
        "    UDP_RCV: -\n"
        "    SEND_SKB: 6\n"
        "protocol: UDP, Source IP: 198.18.0.1, Source Port: 40000, Dest IP: 198.18.0.2, Dest Port: 7777\n"
        "    ETH_RECV: 1000\n"
        "    GRO_RECV: 0\n"
        "    RECV_SKB: 1000\n"
        "    TCP_V4_RCV: -\n"
        "    UDP_RCV: -\n"
        "    SEND_SKB: 1000\n")
