"""Event formats and drop-reason names from canned tracefs text of two kernels."""
import ctypes
import errno
import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procfs_fuse.drop_packet.reasons import reason_name, reason_names
from procfs_fuse.drop_packet.flows import Filters, Flow
from procfs_fuse.drop_packet import tracer
from procfs_fuse.drop_packet.tracer import (ActivationError, BccSession, filter_mask_and_value,
                                           ipv4_mask_and_value, record_cflags, skb_cflags, sum_over_cpus)
from procfs_fuse.kernel.btf import BTF, Member
from procfs_fuse.kernel.ksyms import Symbolizer
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
    assert flags == ["-DDP_KFREE_SKB_SKBADDR=8", "-DDP_KFREE_SKB_LOCATION=16", "-DDP_KFREE_SKB_REASON=28",
                     "-DDP_RETRANS_SPORT=28", "-DDP_RETRANS_DPORT=30", "-DDP_RETRANS_SADDR=34",
                     "-DDP_RETRANS_DADDR=38", "-DDP_RETRANS_FAMILY=32", "-DDP_RETRANS_SADDR_V6=42",
                     "-DDP_RETRANS_DADDR_V6=58"]
    # no reason field: -1, the stub reads none; a missing event: no flags, no stub
    assert record_cflags({"skb:kfree_skb": KFREE_SKB_5_10, "tcp:tcp_retransmit_skb": None}) == [
        "-DDP_KFREE_SKB_SKBADDR=8", "-DDP_KFREE_SKB_LOCATION=16", "-DDP_KFREE_SKB_REASON=-1"]


class FakeBTF:
    def __init__(self, members):
        self.members = members

    def struct_member(self, struct_name, member):
        return Member(*self.members[member])


def test_skb_offsets_and_the_window_that_spans_them():
    kernel_6_18 = {"head": (192, 8), "data": (200, 8), "network_header": (180, 2), "protocol": (176, 2)}
    assert skb_cflags(FakeBTF(kernel_6_18)) == [
        "-DDP_SKB_HEAD=192", "-DDP_SKB_DATA=200", "-DDP_SKB_NETWORK_HEADER=180", "-DDP_SKB_PROTOCOL=176",
        "-DDP_SKB_WINDOW_START=176", "-DDP_SKB_WINDOW_LEN=32"]
    kernel_6_1 = {"head": (192, 8), "data": (200, 8), "network_header": (182, 2), "protocol": (180, 2)}
    assert skb_cflags(FakeBTF(kernel_6_1))[-2:] == ["-DDP_SKB_WINDOW_START=176", "-DDP_SKB_WINDOW_LEN=32"]
    with pytest.raises(ActivationError, match="network_header is 4 bytes"):
        skb_cflags(FakeBTF(dict(kernel_6_18, network_header=(180, 4))))
    with pytest.raises(ActivationError, match="apart"):
        skb_cflags(FakeBTF(dict(kernel_6_18, protocol=(16, 2))))


def test_per_cpu_values_are_summed_per_entry_and_counter():
    # 2 entries x 3 CPUs x 2 counters, as a per-CPU table's batch read lays them out
    values = struct.pack("<12Q", 1, 2, 10, 20, 100, 200,
                         3, 4, 30, 40, 300, 400)
    assert sum_over_cpus(values, 2, 3, 2) == [(111, 222), (333, 444)]
    assert sum_over_cpus(struct.pack("<2Q", 5, 6), 1, 1, 2) == [(5, 6)]
    assert sum_over_cpus(b"", 0, 2, 11) == []


class BatchedMap:
    """A hash map as BPF_MAP_LOOKUP_BATCH hands it out: at most the asked count
    per call, from where the last call stopped, ENOENT with the last batch."""
    Key, Leaf = ctypes.c_uint64 * 5, ctypes.c_uint64 * 2
    map_fd = 7

    def __init__(self, count, max_entries):
        self.entries = [(self.Key(i, 0, 0, 0, i), self.Leaf(i, 2 * i)) for i in range(count)]
        self.max_entries, self.calls = max_entries, 0

    def bpf_lookup_batch(self, fd, in_batch, out_batch, keys, values, count):
        self.calls += 1
        start = in_batch._obj.value if in_batch is not None else 0
        part = self.entries[start:start + count._obj.value]
        for i, (key, value) in enumerate(part):
            ctypes.memmove(ctypes.addressof(keys) + i * 40, key, 40)
            ctypes.memmove(ctypes.addressof(values) + i * 16, value, 16)
        count._obj.value, out_batch._obj.value = len(part), start + len(part)
        if start + len(part) < len(self.entries):
            return 0
        ctypes.set_errno(errno.ENOENT)
        return -1


def test_a_table_is_read_whole_in_batches_through_buffers_for_one(monkeypatch):
    for count, max_entries in ((10000, 20000), (4096, 4096), (0, 100), (5, 100)):
        table = BatchedMap(count, max_entries)
        monkeypatch.setattr(tracer, "bcc_lib", lambda: table)
        keys, values = BccSession._raw_entries(table)
        assert keys == [bytes(k) for k, _ in table.entries]
        assert values == b"".join(bytes(v) for _, v in table.entries)
        assert table.calls == max(1, -(-count // min(tracer.RAW_BATCH, max_entries)))


class FlowKey(ctypes.Structure):
    """struct dp_flow_key as BCC hands it over (bpf/drop_packet.h)."""
    _fields_ = [("dp_saddr", ctypes.c_ubyte * 16), ("dp_daddr", ctypes.c_ubyte * 16),
                ("dp_sport", ctypes.c_uint16), ("dp_dport", ctypes.c_uint16),
                ("dp_family", ctypes.c_uint8), ("dp_protocol", ctypes.c_uint8), ("dp_pad", ctypes.c_uint8 * 2)]


def key_of(saddr, sport, daddr, dport, protocol=17):
    source, dest = ipaddress.ip_address(saddr), ipaddress.ip_address(daddr)
    key = FlowKey(dp_sport=sport, dp_dport=dport, dp_protocol=protocol,
                  dp_family=socket.AF_INET6 if source.version == 6 else socket.AF_INET)
    ctypes.memmove(key.dp_saddr, source.packed, len(source.packed))
    ctypes.memmove(key.dp_daddr, dest.packed, len(dest.packed))
    return key


def passes(filters, key):
    """What dp_wanted computes, word by word, from filter_mask_and_value's output."""
    mask, value = FlowKey(), FlowKey()
    filter_mask_and_value(filters, mask, value)
    words = lambda k: struct.unpack("<5Q", bytes(k))
    return all(k & m == v for k, m, v in zip(words(key), words(mask), words(value)))


def test_filters_become_a_mask_and_value_over_the_key_words():
    a4, b4, a6, b6 = "198.18.0.1", "198.18.0.2", "2001:2::1", "2001:2::2"
    flow4, flow6 = key_of(a4, 40000, b4, 7777), key_of(a6, 40000, b6, 7777)
    ip = ipaddress.ip_address
    assert passes(Filters(), flow4) and passes(Filters(), flow6)
    assert passes(Filters(source_addr=ip(a4)), flow4)
    assert not passes(Filters(source_addr=ip(b4)), flow4)
    assert not passes(Filters(source_addr=ip(a4)), flow6)  # another family
    assert not passes(Filters(dest_addr=ip("::c612:2")), flow4)  # same low bytes, not the same address
    assert passes(Filters(source_addr=ip(a6), dest_addr=ip(b6)), flow6)
    assert not passes(Filters(source_addr=ip(a6), dest_addr=ip(a6)), flow6)
    assert passes(Filters(dest_port=7777, source_port=40000), flow4)
    assert not passes(Filters(dest_port=7778), flow4)
    assert not passes(Filters(source_port=7777), flow4)
    mixed = Filters(source_addr=ip(a4), dest_addr=ip(b6))
    assert not any(passes(mixed, k) for k in (flow4, flow6, key_of(a4, 1, "::", 2)))


def ipv4_header_words(saddr, sport, daddr, dport, protocol):
    """Words 1 and 2 of an IPv4 header without options and what follows it,
    as dp_ipv4_words loads them (the memory's bytes as little-endian words)."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 48, 1, 0, 64, protocol, 0xbeef,
                         ipaddress.ip_address(saddr).packed, ipaddress.ip_address(daddr).packed)
    after = struct.pack("!HH", sport, dport)  # ports, or an ICMP header's type, code and checksum
    return struct.unpack("<3Q", header + after)[1:]


def left_out_early(filters, words):
    """What dp_ipv4_left_out computes from ipv4_mask_and_value's output."""
    mask, value = FlowKey(), FlowKey()
    filter_mask_and_value(filters, mask, value)
    header_mask, header_value = (struct.unpack("<2Q", b) for b in ipv4_mask_and_value(mask, value))
    return any((w & m) ^ v for w, m, v in zip(words, header_mask, header_value))


ADDRESSES = ("198.18.0.1", "198.18.0.2", "2001:2::1", "c612:1::")  # the last: 198.18.0.1's bytes first
PORTS = (0, 1, 7777, 0x6101)  # 0x6101: its bytes swapped are 0x0161, another port here


@settings(max_examples=400, deadline=None)
@given(source_addr=st.sampled_from((None,) + ADDRESSES), dest_addr=st.sampled_from((None,) + ADDRESSES),
       source_port=st.sampled_from((None,) + PORTS), dest_port=st.sampled_from((None,) + PORTS),
       packet=st.tuples(st.sampled_from(ADDRESSES[:2]), st.sampled_from(PORTS + (0x0161,)),
                        st.sampled_from(ADDRESSES[:2]), st.sampled_from(PORTS + (0x0161,)),
                        st.sampled_from((1, 6, 17))))
def test_the_early_exit_on_ipv4_header_words_leaves_out_exactly_what_the_key_filter_does(
        source_addr, dest_addr, source_port, dest_port, packet):
    ip = lambda a: a and ipaddress.ip_address(a)
    filters = Filters(source_addr=ip(source_addr), dest_addr=ip(dest_addr), source_port=source_port,
                      dest_port=dest_port)
    saddr, sport, daddr, dport, protocol = packet
    ported = protocol in (6, 17)
    key = key_of(saddr, sport if ported else 0, daddr, dport if ported else 0, protocol)
    early = left_out_early(filters, ipv4_header_words(*packet))
    # never leaves out a packet the filter takes ...
    assert not (early and passes(filters, key))
    # ... and every TCP or UDP one it does not take, but under a port filter of 0
    # (that is left to the key: a packet without ports has port 0 there)
    if ported and 0 not in (source_port, dest_port):
        assert early == (not passes(filters, key))


class Config(ctypes.Structure):
    """struct dp_config, for the recording table below (the kernel layout test checks it)."""
    _fields_ = [("dp_mask", FlowKey), ("dp_value", FlowKey), ("dp_active", ctypes.c_uint8),
                ("dp_pad", ctypes.c_uint8 * 3), ("dp_generation", ctypes.c_uint32),
                ("dp_ipv4_mask", ctypes.c_uint64 * 2), ("dp_ipv4_value", ctypes.c_uint64 * 2)]


class DropKey(ctypes.Structure):
    """struct dp_drop_key (the kernel layout test checks it)."""
    _fields_ = [("dp_flow", FlowKey), ("dp_location", ctypes.c_uint64), ("dp_reason", ctypes.c_uint32),
                ("dp_pad", ctypes.c_uint32)]


class Symbols:
    """KernelSymbols as it looks from the tracer: current() may be a new Symbolizer."""

    def __init__(self, kallsyms_text):
        self.symbolizer = Symbolizer(kallsyms_text)

    def current(self):
        return self.symbolizer


def test_a_drop_key_is_decoded_once_until_the_kernel_symbols_change():
    session = BccSession.__new__(BccSession)  # the decoding only: no BPF
    session._flows_by_key, session._sites_by_key, session._sites_symbolized_by = {}, {}, None
    session._reason_names = {2: "NO_SOCKET"}
    session._symbols = symbols = Symbols("ffffffff81000000 T udp_rcv\n")
    raw = bytes(DropKey(dp_flow=key_of("198.18.0.1", 40000, "198.18.0.2", 7777),
                        dp_location=0xffffffff81000010, dp_reason=2))
    site = session._drop_sites(DropKey, FlowKey)(raw)
    assert site == (Flow(17, ipaddress.ip_address("198.18.0.1"), 40000, ipaddress.ip_address("198.18.0.2"), 7777),
                    "NO_SOCKET", "udp_rcv+0x10")
    assert session._drop_sites(DropKey, FlowKey)(raw) is site  # the next read reuses it
    symbols.symbolizer = Symbolizer("ffffffff81000008 T udp_queue_rcv_skb\n")  # a module came or went
    assert session._drop_sites(DropKey, FlowKey)(raw)[2] == "udp_queue_rcv_skb+0x8"


class RecordingTable:
    """Stands in for a BCC table: logs what the session writes and clears."""
    Leaf = Config

    def __init__(self, name, log):
        self.name, self.log = name, log

    def __setitem__(self, index, config):
        self.log.append(("config", config.dp_active, config.dp_generation))

    def clear(self):
        self.log.append(("clear", self.name))

    def items_lookup_and_delete_batch(self):
        self.log.append(("clear", self.name))
        return []


def test_filter_changes_and_clears_move_the_memo_generation():
    log = []
    session = BccSession.__new__(BccSession)  # the map writes only: no BPF
    session.bpf = {name.encode(): RecordingTable(name, log) for name in ("dp_config", "dp_flows", "dp_drops",
                                                                           "dp_slots", "dp_inserted")}
    session._flows_by_key, session._sites_by_key, session._generation = {}, {}, 0
    session.set_filters(Filters(dest_port=80))
    # first the filter with generation 0 (no memo holds), then a new generation
    assert log == [("config", 1, 0), ("config", 1, 1)]
    log.clear()
    session.clear()
    # slots change owners only on clear: the generation moves after they are zeroed
    assert log == [("clear", "dp_flows"), ("clear", "dp_drops"), ("clear", "dp_slots"),
                   ("clear", "dp_inserted"), ("config", 1, 2)]
    session._generation = 0xffffffff
    log.clear()
    session.set_filters(Filters())
    assert log == [("config", 0, 0), ("config", 0, 1)]  # wraps past 0, which means "no memos"
