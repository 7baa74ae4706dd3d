"""Device and softnet counters from canned netlink bytes and softnet_stat text."""
import struct

import pytest

from procfs_fuse.drop_packet.model.devices import (IFLA_IFNAME, IFLA_STATS64, LINK_COUNTERS, NLMSG_DONE, NLMSG_ERROR,
                                             RTM_NEWLINK, RTM_NEWQDISC, TCA_KIND, TC_H_ROOT, Link, changes,
                                             link_dump_request, parse_links, parse_root_qdiscs, parse_softnet)


def attribute(kind, value):
    data = struct.pack("=HH", 4 + len(value), kind) + value
    return data + bytes(-len(data) % 4)


def message(kind, body):
    return struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body


def newlink(index, name, **counters):
    stats = [0] * 24  # rtnl_link_stats64 as 6.1 has it; 6.18's is longer, the first 24 alike
    for counter, value in counters.items():
        stats[LINK_COUNTERS[counter]] = value
    body = struct.pack("=BxHiII", 0, 1, index, 0, 0) + attribute(IFLA_IFNAME, name.encode() + b"\0") + \
        attribute(IFLA_STATS64, struct.pack("=24Q", *stats))
    return message(RTM_NEWLINK, body)


def test_a_link_dump_gives_each_devices_name_and_drop_counters():
    data = newlink(1, "lo") + newlink(7, "vRa", tx_dropped=500, rx_missed_errors=3)
    links, done = parse_links(data)
    assert not done
    assert links == [Link(1, "lo", dict.fromkeys(LINK_COUNTERS, 0)),
                     Link(7, "vRa", dict(dict.fromkeys(LINK_COUNTERS, 0), tx_dropped=500, rx_missed_errors=3))]
    assert parse_links(message(NLMSG_DONE, struct.pack("=i", 0))) == ([], True)
    with pytest.raises(OSError, match="RTM_GETLINK"):
        parse_links(message(NLMSG_ERROR, struct.pack("=i", -1)))
    assert struct.unpack_from("=IHH", link_dump_request()) == (32, 18, 0x301)  # RTM_GETLINK, request | dump


def newqdisc(ifindex, parent, kind):
    body = struct.pack("=BxxxiIII", 0, ifindex, 0x80010000, parent, 1) + attribute(TCA_KIND, kind.encode() + b"\0")
    return message(RTM_NEWQDISC, body)


def test_a_qdisc_dump_gives_each_devices_root_qdisc():
    data = newqdisc(1, TC_H_ROOT, "noqueue") + newqdisc(7, TC_H_ROOT, "tbf") + newqdisc(7, 0x80010001, "bfifo")
    assert parse_root_qdiscs(data) == ({1: "noqueue", 7: "tbf"}, False)  # a child (tbf's bfifo) is not the root
    assert parse_root_qdiscs(message(NLMSG_DONE, struct.pack("=i", 0))) == ({}, True)
    with pytest.raises(OSError, match="RTM_GETQDISC"):
        parse_root_qdiscs(message(NLMSG_ERROR, struct.pack("=i", -1)))


def test_softnet_stat_by_cpu_number_where_the_kernel_prints_it():
    text = ("1f2cdb9b 00000000 00000046 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
            "00000000 00000000 00000000 00000000 00000000\n"
            "00143a55 0000000a 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
            "00000000 00000000 00000003 00000000 00000000\n")  # CPU 3 (1 and 2 offline)
    assert parse_softnet(text) == {0: {"dropped": 0, "time_squeeze": 0x46}, 3: {"dropped": 10, "time_squeeze": 3}}
    assert parse_softnet("00000001 00000002 00000003\n") == {0: {"dropped": 2, "time_squeeze": 3}}  # old kernels


def test_changes_are_what_moved_since_the_start_only():
    start = {"vA": {"tx_dropped": 5, "rx_dropped": 1}, "gone": {"tx_dropped": 9}, "again": {"rx_dropped": 50}}
    now = {"vA": {"tx_dropped": 505, "rx_dropped": 1}, "new": {"rx_dropped": 2, "tx_dropped": 0},
           "again": {"rx_dropped": 4}}  # made again since: its counters began at 0
    assert changes(now, start) == {"vA": {"tx_dropped": 500}, "new": {"rx_dropped": 2}, "again": {"rx_dropped": 4}}
