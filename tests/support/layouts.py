"""ctypes stand-ins for bpf/drop_packet.h's structs, as BCC hands them over,
for unit tests without a compiler (tests/kernel checks them against the
compiled program's layouts)."""
import ctypes
import ipaddress
import re
import socket
import struct

from procfs_fuse.drop_packet.capture.stages import PROGRAM, STAGES

# DP_SLOT_BITS of the shared header: each CPU has 1 << SLOT_BITS slots
SLOT_BITS = int(re.search(r"#define DP_SLOT_BITS (\d+)", (PROGRAM.parent / "drop_packet.h").read_text()).group(1))


class FlowKey(ctypes.Structure):
    """struct dp_flow_key."""
    _fields_ = [("dp_saddr", ctypes.c_ubyte * 16), ("dp_daddr", ctypes.c_ubyte * 16),
                ("dp_sport", ctypes.c_uint16), ("dp_dport", ctypes.c_uint16),
                ("dp_family", ctypes.c_uint8), ("dp_protocol", ctypes.c_uint8), ("dp_pad", ctypes.c_uint8 * 2),
                ("dp_netns", ctypes.c_uint32), ("dp_ifindex", ctypes.c_uint32)]


def key_of(saddr, sport, daddr, dport, protocol=17, netns=0, ifindex=0):
    source, dest = ipaddress.ip_address(saddr), ipaddress.ip_address(daddr)
    key = FlowKey(dp_sport=sport, dp_dport=dport, dp_protocol=protocol, dp_netns=netns, dp_ifindex=ifindex,
                  dp_family=socket.AF_INET6 if source.version == 6 else socket.AF_INET)
    ctypes.memmove(key.dp_saddr, source.packed, len(source.packed))
    ctypes.memmove(key.dp_daddr, dest.packed, len(dest.packed))
    return key


class Config(ctypes.Structure):
    """struct dp_config."""
    _fields_ = [("dp_mask", FlowKey), ("dp_value", FlowKey), ("dp_active", ctypes.c_uint8),
                ("dp_dev_active", ctypes.c_uint8), ("dp_pad", ctypes.c_uint8 * 2), ("dp_generation", ctypes.c_uint32),
                ("dp_nat_epoch", ctypes.c_uint32), ("dp_pad2", ctypes.c_uint32), ("dp_ipv4_mask", ctypes.c_uint64 * 2), ("dp_ipv4_value", ctypes.c_uint64 * 2),
                ("dp_dev_name", ctypes.c_uint64 * 2)]


class DropKey(ctypes.Structure):
    """struct dp_drop_key."""
    _fields_ = [("dp_flow", FlowKey), ("dp_location", ctypes.c_uint64), ("dp_reason", ctypes.c_uint32),
                ("dp_pad", ctypes.c_uint32)]


class Counts(ctypes.Structure):
    """struct dp_flow_counts."""
    _fields_ = [("dp_packets", ctypes.c_uint64 * len(STAGES)), ("dp_first_seen", ctypes.c_uint64)]


class Slot(ctypes.Structure):
    """struct dp_slot."""
    _fields_ = [("dp_key", FlowKey), ("dp_counts", Counts)]


def slot_index(key, choice=0, slot_bits=SLOT_BITS):
    """DP_SLOT_INDEX(dp_slot_mix(key), choice) of bpf/drop_packet.c for a
    FlowKey: the per-CPU slot a flow takes first (choice 0)
    or when that one is taken (1). A kernel test checks it against dp_slots."""
    h = 0
    for word in struct.unpack("<6Q", bytes(key)):
        h ^= word
    mixed = h * 0x9e3779b97f4a7c15 & (1 << 64) - 1
    return mixed >> (64 - (choice + 1) * slot_bits) & (1 << slot_bits) - 1
