"""dp_config: the filters as a mask and value over the flow key's words (and
over an IPv4 header's bytes 8..23), and the generation protocol: the only
Python that knows when a per-CPU memo (dp_memos) holds.

A memo holds while dp_config's generation is the one it was made under, and
never under generation 0. Whatever a memo could point at wrongly afterwards
(a filter's outcome, a slot's owner) changes only between a write of
generation 0 and a write of a new one, so no memo made before the change is
used after it.
"""
import contextlib
import ctypes
import socket
import sys

from .settings import Filters


def filter_mask_and_value(filters, mask, value):
    """Fills two zeroed dp_flow_keys so that a flow passes the filters when its
    key, masked with mask, equals value (dp_passes compares them word by word)."""
    families = set()
    for field, address in (("dp_saddr", filters.source_addr), ("dp_daddr", filters.dest_addr)):
        if address is not None:
            ctypes.memset(getattr(mask, field), 0xff, ctypes.sizeof(getattr(mask, field)))
            ctypes.memmove(getattr(value, field), address.packed, len(address.packed))
            families.add(socket.AF_INET6 if address.version == 6 else socket.AF_INET)
    if families:
        mask.dp_family = 0xff
        # an IPv4 and an IPv6 address: no flow has both; family 0 is never a parsed flow's
        value.dp_family = families.pop() if len(families) == 1 else 0
    for field, port in (("dp_sport", filters.source_port), ("dp_dport", filters.dest_port)):
        if port is not None:
            setattr(mask, field, 0xffff)
            setattr(value, field, port)
    if filters.netns is not None:
        mask.dp_netns, value.dp_netns = 0xffffffff, filters.netns.inode


# Key fields that bytes 8..23 of an IPv4 header without options show as
# they are: (field, its bytes in an IPv4 key, where they start in those
# header bytes). Ports are in host order in the key, and 0 there for
# protocols without ports.
IPV4_HEADER_FIELDS = (("dp_protocol", 1, 1), ("dp_saddr", 4, 4), ("dp_daddr", 4, 8),
                      ("dp_sport", 2, 12), ("dp_dport", 2, 14))
PORT_FIELDS = ("dp_sport", "dp_dport")


def ipv4_mask_and_value(mask, value):
    """dp_config's dp_ipv4_mask and dp_ipv4_value (16 bytes each) for the key
    filter (mask, value) of filter_mask_and_value: an IPv4 packet whose header
    bytes 8..23, masked, differ from the value is one the key filter leaves
    out. A port filter of 0 stays with the key alone: a packet without ports
    has port 0 in its key, whatever its header holds there."""
    key_type = type(mask)
    mask, value = bytes(mask), bytes(value)
    header_mask, header_value = bytearray(16), bytearray(16)
    shown = set()  # key bytes the header shows
    for name, size, at in IPV4_HEADER_FIELDS:
        offset = getattr(key_type, name).offset
        shown.update(range(offset, offset + size))
        field_mask, field_value = mask[offset:offset + size], value[offset:offset + size]
        if name in PORT_FIELDS:
            if not any(field_value):
                continue
            field_mask, field_value = (int.from_bytes(f, sys.byteorder).to_bytes(2, "big")
                                       for f in (field_mask, field_value))
        header_mask[at:at + size], header_value[at:at + size] = field_mask, field_value
    shown.update(range(key_type.dp_netns.offset, ctypes.sizeof(key_type)))  # the hop: the key's test, not the header's
    ipv4_key = bytes(key_type(dp_family=socket.AF_INET))  # the bytes every IPv4 key has outside those
    if any(k & m != v for i, (k, m, v) in enumerate(zip(ipv4_key, mask, value)) if i not in shown):
        return bytes(16), b"\x01" + bytes(15)  # no IPv4 flow passes: a value bit outside the mask
    return bytes(header_mask), bytes(header_value)


def config_value(config_type, filters, generation):
    """The dp_config value of these filters under that generation."""
    config = config_type()
    filter_mask_and_value(filters, config.dp_mask, config.dp_value)
    ipv4_mask, ipv4_value = ipv4_mask_and_value(config.dp_mask, config.dp_value)
    ctypes.memmove(config.dp_ipv4_mask, ipv4_mask, len(ipv4_mask))
    ctypes.memmove(config.dp_ipv4_value, ipv4_value, len(ipv4_value))
    config.dp_active = int(filters.any_set)
    if filters.dev is not None:  # compared with net_device.name: NUL-padded
        config.dp_dev_active = 1
        name = filters.dev.encode()
        ctypes.memmove(config.dp_dev_name, name, len(name))
    config.dp_generation = generation
    return config


class FilterConfig:
    """Writes dp_config (a BCC table of one struct dp_config)."""

    def __init__(self, table):
        self._table, self._filters, self._generation = table, Filters(), 0

    @property
    def filters(self):
        return self._filters

    def set_filters(self, filters):
        # the new filter in both writes: a program that reads the new
        # generation reads the new filter, in whatever order a write's bytes land
        self._filters = filters
        with self.memos_off():
            pass

    @contextlib.contextmanager
    def memos_off(self):
        """Around a change of what memos may point at: under generation 0 no
        memo is used or made; a new generation after it."""
        self._write(0)
        try:
            yield
        finally:
            self._generation = self._generation % 0xffffffff + 1  # never 0
            self._write(self._generation)

    def _write(self, generation):
        self._table[ctypes.c_int(0)] = config_value(self._table.Leaf, self._filters, generation)
