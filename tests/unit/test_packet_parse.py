"""bpf/packet.h's header parse, run natively on canned headers: the same C the
programs run, compiled by the host's C compiler with kernel reads made
memcpy (no root, no BPF)."""
import ctypes
import socket
import struct
import subprocess

import pytest

from procfs_fuse.drop_packet.capture.stages import BPF_DIR

HARNESS = r"""
#include <linux/types.h>
#include <string.h>
static long bpf_probe_read_kernel(void *dst, __u32 size, const void *src) { memcpy(dst, src, size); return 0; }
#include "drop_packet.h"
#include "packet.h"
int ipv6_words(void *l3, __u64 *key) { return dp_ipv6_words(l3, key); }
"""
# offsets the header's other readers need to compile; the parse reads none of them
OFFSETS = ["-DDP_%s=%d" % pair for pair in (("SKB_WINDOW_START", 0), ("SKB_WINDOW_LEN", 8), ("SKB_HEAD", 0),
                                            ("SKB_DATA", 0), ("SKB_NETWORK_HEADER", 0), ("SKB_PROTOCOL", 0),
                                            ("SKB_END", 0), ("SHINFO_GSO_SIZE", 4), ("SHINFO_GSO_SEGS", 6),
                                            ("NET_INUM", 0), ("DEV_NET", 0), ("DEV_IFINDEX", 0), ("SK_NET", 0))]
A, B = socket.inet_pton(socket.AF_INET6, "2001:2::1"), socket.inet_pton(socket.AF_INET6, "2001:2::2")
UDP, TCP, ICMPV6, HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTIONS = 17, 6, 58, 0, 43, 44, 60


@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    built = tmp_path_factory.mktemp("packet")
    (built / "harness.c").write_text(HARNESS)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-Wno-unknown-pragmas", "-I%s" % BPF_DIR, *OFFSETS,
                    "-o", str(built / "harness.so"), str(built / "harness.c")], check=True)
    lib = ctypes.CDLL(str(built / "harness.so"))

    def words(packet):
        """(protocol, sport, dport) the parse makes of an IPv6 packet."""
        buffer = ctypes.create_string_buffer(packet + bytes(64))  # reads may run past a short packet's end
        key = (ctypes.c_uint64 * 5)()
        assert lib.ipv6_words(buffer, key) == 0
        assert bytes(key)[:32] == A + B
        return (key[4] >> 40) & 0xff, key[4] & 0xffff, (key[4] >> 16) & 0xffff
    return words


def ipv6(next_header, payload):
    return struct.pack("!IHBB", 6 << 28, len(payload), next_header, 64) + A + B + payload


def options(next_header, length=8):
    """A hop-by-hop or destination options header of length bytes (padded with PadN)."""
    return struct.pack("!BBBB", next_header, length // 8 - 1, 1, length - 4) + bytes(length - 4)


def fragment(next_header, offset, more):
    return struct.pack("!BBHI", next_header, 0, offset | more, 0x1234)


PORTS = struct.pack("!HH", 40001, 7001)


def test_a_plain_header_gives_its_ports(parse):
    assert parse(ipv6(UDP, PORTS + bytes(4))) == (UDP, 40001, 7001)


def test_an_mld_report_after_hop_by_hop_options_is_icmpv6(parse):
    assert parse(ipv6(HOP_BY_HOP, options(ICMPV6) + bytes([143, 0]) + bytes(22))) == (ICMPV6, 0, 0)


def test_a_first_fragment_has_the_ports_later_ones_have_none(parse):
    assert parse(ipv6(FRAGMENT, fragment(UDP, 0, 1) + PORTS + bytes(4))) == (UDP, 40001, 7001)
    assert parse(ipv6(FRAGMENT, fragment(UDP, 1448, 1) + bytes(8))) == (UDP, 0, 0)
    assert parse(ipv6(FRAGMENT, fragment(UDP, 2896, 0) + bytes(8))) == (UDP, 0, 0)


def test_several_extension_headers_are_followed_by_their_lengths(parse):
    routing = struct.pack("!BBBB", FRAGMENT, 0, 0, 0) + bytes(4)  # 8 bytes, no addresses
    packet = options(ROUTING, 16) + routing + fragment(TCP, 0, 0) + PORTS + bytes(16)
    assert parse(ipv6(DEST_OPTIONS, packet)) == (TCP, 40001, 7001)


def test_the_walk_is_bounded(parse):
    five = options(DEST_OPTIONS) * 4 + options(UDP)  # the fifth is not followed
    assert parse(ipv6(DEST_OPTIONS, five + PORTS)) == (DEST_OPTIONS, 0, 0)
