"""dp_config from the filters (masks over key words and IPv4 header words),
and the generation protocol that says when a memo holds."""
import ipaddress
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from procfs_fuse.drop_packet.capture.config import FilterConfig, config_value, filter_mask_and_value, ipv4_mask_and_value
from procfs_fuse.drop_packet.capture.settings import Filters, Netns
from tests.support.layouts import Config, FlowKey, key_of


def passes(filters, key):
    """What dp_passes computes, word by word, from filter_mask_and_value's output."""
    mask, value = FlowKey(), FlowKey()
    filter_mask_and_value(filters, mask, value)
    words = lambda k: struct.unpack("<6Q", bytes(k))
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
    # the hop: a namespace filter picks the hops in it, whatever their device
    in_r, elsewhere = key_of(a4, 40000, b4, 7777, netns=4026532281, ifindex=3), key_of(a4, 40000, b4, 7777, netns=7)
    assert passes(Filters(netns=Netns(4026532281, "mhR")), in_r)
    assert not passes(Filters(netns=Netns(4026532281, "mhR")), elsewhere)
    assert passes(Filters(netns=Netns(7, "net:[7]"), dest_port=7777), elsewhere)


def test_a_device_filter_is_the_name_as_net_device_holds_it_and_leaves_the_key_words_alone():
    config = config_value(Config, Filters(dev="vRa"), 5)
    assert config.dp_dev_active == 1 and config.dp_active == 1
    assert bytes(config.dp_dev_name) == b"vRa" + bytes(13)  # NUL-padded, as net_device.name
    assert bytes(config.dp_mask) == bytes(FlowKey())
    assert config_value(Config, Filters(), 5).dp_dev_active == 0
    # the hop is no header's: a namespace filter alone leaves the early exit nothing to test
    by_netns = config_value(Config, Filters(netns=Netns(9, "x")), 5)
    assert bytes(by_netns.dp_ipv4_mask) == bytes(16) and bytes(by_netns.dp_ipv4_value) == bytes(16)


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


class RecordingTable:
    """Stands in for the BCC table dp_config: logs what is written."""
    Leaf = Config

    def __init__(self, log):
        self.log = log

    def __setitem__(self, index, config):
        self.log.append(("config", config.dp_active, config.dp_generation))


def test_filter_changes_and_clears_move_the_memo_generation():
    log = []
    config = FilterConfig(RecordingTable(log))
    config.set_filters(Filters(dest_port=80))
    # the new filter under generation 0 (no memo is used or made), then under a new generation
    assert log == [("config", 1, 0), ("config", 1, 1)]
    log.clear()
    with config.memos_off():  # what a clear does around zeroing the tables
        log.append("zeroed")
    # generation 0 before anything a memo may point at changes, a new one after
    assert log == [("config", 1, 0), "zeroed", ("config", 1, 2)]
    config._generation = 0xffffffff
    log.clear()
    config.set_filters(Filters())
    assert log == [("config", 0, 0), ("config", 0, 1)]  # wraps past 0, which means "no memos"
    assert config.filters == Filters()
