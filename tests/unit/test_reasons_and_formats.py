"""Event formats, drop-reason names and compile flags, from canned tracefs
text and BTF of two kernels."""
import struct
from pathlib import Path

import pytest

from procfs_fuse.drop_packet.capture.program import kernel_cflags, record_cflags
from procfs_fuse.drop_packet.errors import ErrnoError
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.hints import hint
from procfs_fuse.drop_packet.capture.reasons import reason_name, reason_names
from procfs_fuse.drop_packet.model.diagnosis import verdict
from procfs_fuse.kernel.btf import BTF, Member
from procfs_fuse.kernel.tracefs import parse_fields, parse_symbolic
from tests.unit.test_btf import BlobBuilder


# Kernel 6.18, as this machine prints it (list shortened).
KFREE_SKB_6_18 = """name: kfree_skb
ID: 1542
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:void * rx_sk;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;

print fmt: "skbaddr=%p rx_sk=%p protocol=%u location=%pS reason: %s", REC->skbaddr, REC->rx_sk, \
REC->protocol, REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, \
{ 4, "SOCKET_CLOSE" }, { 5, "SOCKET_FILTER" }, { 6, "SOCKET_RCVBUFF" }, { 9, "PKT_TOO_SMALL" }, \
{ 10, "TCP_CSUM" }, { 11, "UDP_CSUM" }, { 12, "NETFILTER_DROP" }, { 13, "OTHERHOST" })
"""

# Kernel 6.1: no rx_sk, other offsets, other numbers for the same names.
KFREE_SKB_6_1 = """name: kfree_skb
ID: 1400
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:28;\tsize:4;\tsigned:0;

print fmt: "skbaddr=%p protocol=%u location=%p reason: %s", REC->skbaddr, REC->protocol, \
REC->location, __print_symbolic(REC->reason, { 1, "CONSUMED" }, { 2, "NOT_SPECIFIED" }, \
{ 3, "NO_SOCKET" }, { 4, "PKT_TOO_SMALL" }, { 5, "TCP_CSUM" }, { 6, "SOCKET_FILTER" }, \
{ 7, "UDP_CSUM" }, { 8, "NETFILTER_DROP" }, { 9, "OTHERHOST" })
"""

# Before 5.17: no reason at all.
KFREE_SKB_5_10 = """format:
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;

print fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr, REC->protocol, REC->location
"""

RETRANSMIT_6_18 = """format:
\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:32;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:34;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:38;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:42;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:58;\tsize:16;\tsigned:0;
\tfield:int err;\toffset:76;\tsize:4;\tsigned:1;
"""

def test_fields_of_two_kernels():
    assert parse_fields(KFREE_SKB_6_18) == {"skbaddr": (8, 8), "location": (16, 8), "rx_sk": (24, 8),
                                            "protocol": (32, 2), "reason": (36, 4)}
    assert parse_fields(KFREE_SKB_6_1)["reason"] == (28, 4)
    assert parse_fields(RETRANSMIT_6_18)["saddr_v6"] == (42, 16)


def test_reason_numbers_differ_names_agree():
    new, old = reason_names(KFREE_SKB_6_18), reason_names(KFREE_SKB_6_1)
    assert new[12] == "NETFILTER_DROP" and old[8] == "NETFILTER_DROP"
    assert new[6] == "SOCKET_RCVBUFF" and 6 not in old.values()
    common = set(new.values()) & set(old.values())
    assert {"NOT_SPECIFIED", "NO_SOCKET", "PKT_TOO_SMALL", "TCP_CSUM", "UDP_CSUM", "NETFILTER_DROP",
            "OTHERHOST", "SOCKET_FILTER"} <= common
    assert {name: n for n, name in new.items()}["TCP_CSUM"] == 10
    assert {name: n for n, name in old.items()}["TCP_CSUM"] == 5


def test_reason_names_fall_back_to_btf_then_to_numbers():
    b = BlobBuilder()
    b.add(6, "skb_drop_reason", 4, vlen=3, trailer=struct.pack(
        "<IiIiIi", b.name("SKB_NOT_DROPPED_YET"), 0, b.name("SKB_DROP_REASON_NO_SOCKET"), 3,
        b.name("SKB_DROP_REASON_NETFILTER_DROP"), 12))
    names = reason_names(None, BTF(b.blob()))
    assert names == {3: "NO_SOCKET", 12: "NETFILTER_DROP"}
    assert reason_name(names, 99) == "REASON_99"
    assert parse_symbolic(KFREE_SKB_5_10, "reason") == {}


def test_a_kernel_without_drop_reasons_says_so():
    assert reason_name(reason_names(KFREE_SKB_5_10), 0) == "NO_REASON_BEFORE_5.17"


def test_record_offsets_become_compile_flags():
    flags = record_cflags({"skb:kfree_skb": KFREE_SKB_6_1, "tcp:tcp_retransmit_skb": RETRANSMIT_6_18})
    assert flags == ["-DDP_RETRANS_SPORT=28", "-DDP_RETRANS_DPORT=30", "-DDP_RETRANS_SADDR=34",
                     "-DDP_RETRANS_DADDR=38", "-DDP_RETRANS_FAMILY=32", "-DDP_RETRANS_SADDR_V6=42",
                     "-DDP_RETRANS_DADDR_V6=58", "-DDP_RETRANS_SKADDR=16",
                     "-DDP_RETRANS_SKBADDR=8", "-DDP_RETRANS_ERR=76",
                     "-DDP_KFREE_SKB_SKBADDR=8", "-DDP_KFREE_SKB_LOCATION=16", "-DDP_KFREE_SKB_REASON=28",
                     "-DDP_KFREE_SKB_RX_SK=-1"]
    assert "-DDP_KFREE_SKB_RX_SK=24" in record_cflags({"skb:kfree_skb": KFREE_SKB_6_18})  # 6.11+
    # no reason field: -1, the stub reads none; a missing event: no flags, no stub
    assert record_cflags({"skb:kfree_skb": KFREE_SKB_5_10, "tcp:tcp_retransmit_skb": None}) == [
        "-DDP_KFREE_SKB_SKBADDR=8", "-DDP_KFREE_SKB_LOCATION=16", "-DDP_KFREE_SKB_REASON=-1",
        "-DDP_KFREE_SKB_RX_SK=-1"]


class FakeBTF:
    def __init__(self, members):
        self.members = members  # {(struct, member): (offset, size)}

    def struct_member(self, struct_name, member):
        return Member(*self.members[(struct_name, member)])


# What this machine's 6.18 and Debian's 6.1 (its vmlinuz's .BTF) say.
KERNEL_6_18 = {
    ("sk_buff", "head"): (192, 8), ("sk_buff", "data"): (200, 8), ("sk_buff", "network_header"): (180, 2),
    ("sk_buff", "protocol"): (176, 2), ("sk_buff", "dev"): (16, 8), ("sk_buff", "sk"): (24, 8),
    ("net_device", "ifindex"): (224, 4), ("net_device", "nd_net"): (264, 8), ("net_device", "name"): (280, 16),
    ("net", "ns"): (152, 80), ("ns_common", "inum"): (24, 4), ("sock", "__sk_common"): (0, 136),
    ("sock_common", "skc_net"): (48, 8), ("sk_buff", "end"): (188, 4), ("skb_shared_info", "gso_size"): (4, 2),
    ("skb_shared_info", "gso_segs"): (6, 2), ("sk_buff", "cb"): (40, 48), ("tcp_skb_cb", "tcp_gso_segs"): (8, 2)}
KERNEL_6_1 = {**KERNEL_6_18, **{
    ("sk_buff", "end"): (192, 4), ("sk_buff", "head"): (200, 8), ("sk_buff", "data"): (208, 8), ("sk_buff", "network_header"): (184, 2),
    ("sk_buff", "protocol"): (180, 2), ("net_device", "ifindex"): (216, 4), ("net_device", "nd_net"): (1280, 8),
    ("net_device", "name"): (0, 16), ("net", "ns"): (128, 24), ("ns_common", "inum"): (16, 4)}}


def test_kernel_offsets_nested_members_and_the_window_that_spans_the_skb_ones():
    assert kernel_cflags(FakeBTF(KERNEL_6_18)) == [
        "-DDP_SKB_HEAD=192", "-DDP_SKB_DATA=200", "-DDP_SKB_NETWORK_HEADER=180", "-DDP_SKB_PROTOCOL=176",
        "-DDP_SKB_DEV=16", "-DDP_SKB_SK=24", "-DDP_SKB_END=188", "-DDP_SHINFO_GSO_SIZE=4",
        "-DDP_SHINFO_GSO_SEGS=6", "-DDP_SKB_TCP_GSO_SEGS=48",  # sk_buff.cb + tcp_skb_cb.tcp_gso_segs
        "-DDP_DEV_IFINDEX=224", "-DDP_DEV_NET=264", "-DDP_DEV_NAME=280", "-DDP_NET_INUM=176", "-DDP_SK_NET=48",
        "-DDP_SKB_WINDOW_START=176", "-DDP_SKB_WINDOW_LEN=32"]
    old = kernel_cflags(FakeBTF(KERNEL_6_1))
    assert "-DDP_NET_INUM=144" in old and "-DDP_DEV_NET=1280" in old  # net.ns + ns_common.inum
    assert old[-2:] == ["-DDP_SKB_WINDOW_START=176", "-DDP_SKB_WINDOW_LEN=40"]
    with pytest.raises(ErrnoError, match="network_header is 4 bytes"):
        kernel_cflags(FakeBTF({**KERNEL_6_18, ("sk_buff", "network_header"): (180, 4)}))
    with pytest.raises(ErrnoError, match="apart"):
        kernel_cflags(FakeBTF({**KERNEL_6_18, ("sk_buff", "protocol"): (16, 2)}))


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("kernel", ["6.18", "6.1"])
def test_every_drop_reason_of_a_kernel_has_a_hint_or_the_verdict_says_none_is_known(kernel):
    """kfree_skb_6.18.format is this machine's tracefs file; kfree_skb_6.1.format
    has the reason list of Debian 6.1's BTF (enum skb_drop_reason) in the same form."""
    names = reason_names((DATA / ("kfree_skb_%s.format" % kernel)).read_text())
    assert len(names) > 60 and "NETFILTER_DROP" in names.values()
    for reason in names.values():
        text = verdict(4, [(HopName("host", "lo"), ("RECV_SKB",), (4,), [((reason, "f+0x1"), 1)], None)], True)
        why = hint(reason, "f+0x1")
        if reason == "MAX":  # the enum's end, not a reason
            assert why is None and text.endswith("(no hint is known for MAX)")
        else:
            assert why, reason
            assert text == "1 of 4 lost in netns host, dev lo, after RECV_SKB: %s at f+0x1 (%s)" % (reason, why)


def test_a_hint_fits_the_place_as_well_as_the_reason():
    assert "TTL ran out while forwarding" in hint("IP_INHDR", "ip_forward+0x1c4")
    assert hint("IP_INHDR", "ip_rcv_core+0x20").startswith("malformed IP headers")
    assert "no route while forwarding" in hint("IP_INNOROUTES", "ip_error+0x5a")


class ConntrackBTF(FakeBTF):
    """A BTF with conntrack's structs (where it is built in), as this machine's 6.18 has them."""

    def has_struct(self, name):
        return any(struct == name for struct, _member in self.members)

    def struct_size(self, name):
        return {"nf_conntrack_tuple_hash": 56, "nf_conntrack_tuple": 40}[name]

    def enum(self, name):
        return {"ip_conntrack_status": {"IPS_NAT_MASK": 48}, "ip_conntrack_info": {"IP_CT_IS_REPLY": 3}}[name]


CONNTRACK_6_18 = {
    ("sk_buff", "_nfct"): (104, 8), ("nf_conn", "status"): (128, 8), ("nf_conn", "tuplehash"): (16, 112),
    ("nf_conntrack_tuple_hash", "tuple"): (16, 40), ("nf_conntrack_tuple", "src.u3"): (0, 16),
    ("nf_conntrack_tuple", "src.u"): (16, 2), ("nf_conntrack_tuple", "src.l3num"): (18, 2),
    ("nf_conntrack_tuple", "dst.u3"): (20, 16), ("nf_conntrack_tuple", "dst.u"): (36, 2),
    ("nf_conntrack_tuple", "dst.protonum"): (38, 1)}


def test_conntracks_offsets_become_flags_and_the_window_takes_the_skbs_entry():
    from procfs_fuse.drop_packet.capture import conntrack
    from procfs_fuse.drop_packet.capture.program import kernel_offsets, nat_following
    btf = ConntrackBTF({**KERNEL_6_18, **CONNTRACK_6_18})
    flags, hook = nat_following(btf)
    assert flags == ["-DDP_CT_STATUS=128", "-DDP_CT_TUPLE=32", "-DDP_CT_SRC_ADDR=0", "-DDP_CT_SRC_PORT=16",
                     "-DDP_CT_L3NUM=18", "-DDP_CT_DST_ADDR=20", "-DDP_CT_DST_PORT=36", "-DDP_CT_PROTONUM=38",
                     "-DDP_CT_TUPLE_STRIDE=56", "-DDP_CT_TUPLE_LEN=40", "-DDP_CT_NAT_MASK=48", "-DDP_CT_IS_REPLY=3"]
    assert hook.describe() == "conntrack built in"
    assert kernel_cflags(btf, with_conntrack=True)[-3:] == [
        "-DDP_SKB_NFCT=104", "-DDP_SKB_WINDOW_START=104", "-DDP_SKB_WINDOW_LEN=104"]
    # no struct nf_conn, no module's BTF: nothing is followed, and the hook line says why
    flags, candidate, why = conntrack.conntrack_flags(ConntrackBTF(KERNEL_6_18), kernel_offsets, "/nonexistent")
    assert (flags, candidate, why) == ([], None, "conntrack is not loaded (no struct nf_conn in the kernel's BTF)")
