"""A canned reading of 10,000 flows of two hops each, as the kernel's tables
hand it over (raw bytes; slots of two CPUs), with what user space adds to it (names,
device changes, hooks, settings). Deterministic: the golden test keeps its
three renderings, and the benchmark renders it offline."""
import ctypes
import ipaddress
import random
import struct

from tests.support.layouts import Counts, DropKey, FlowKey, Slot, key_of

CPUS = 2
FLOWS = 10000
SLOTS_PER_CPU = 256
REASONS = {2: "NO_SOCKET", 6: "NETFILTER_DROP", 10: "SOCKET_RCVBUFF", 44: "QDISC_DROP"}
KALLSYMS = ("ffffffff81000000 T __udp4_lib_rcv\nffffffff81001000 T nft_do_chain\n"
            "ffffffff81002000 T __udp_enqueue_schedule_skb\nffffffff81003000 T __dev_queue_xmit\n")
# (reason, location) of a flow's drops, by the flow's number modulo 7
DROP_SITES = {0: (2, 0xffffffff810004bc), 3: (6, 0xffffffff8100146f), 5: (10, 0xffffffff81002044)}
SENDER, ROUTER, RECEIVER, GONE = (4026532281, 2), (4026532300, 3), (4026532400, 2), (4026532500, 9)
HOP_NAMES = {SENDER: ("cA", "eth0"), ROUTER: ("cR", "ra"), RECEIVER: ("cB", "eth0"), GONE: ("net:[4026532500]", None)}


def _counts(stages, first):
    """One dp_flow_counts value."""
    return bytes(Counts((ctypes.c_uint64 * len(stages))(*stages), first))


def _stage_counts(stage_ids, **named):
    counts = [0] * len(stage_ids)
    for name, n in named.items():
        counts[stage_ids.index(name)] = n
    return counts


def tables(stage_ids):
    """(flows, slots, drops, inserted): each (keys, values, capacity, cpus), as tables.RawTable takes them.
    stage_ids: the stage names in id order (stages.STAGES)."""
    rng = random.Random(33)
    keys, values, drop_keys, drop_values = [], [], [], []
    slots = [[bytes(Slot())] * SLOTS_PER_CPU for _ in range(CPUS)]
    for n in range(FLOWS):
        kind = n % 10
        sent = rng.randint(1, 3000)
        lost = sent * rng.randint(1, 9) // 10 if n % 7 in DROP_SITES else 0
        sport, dport = 20000 + n % 40000, 7000 + n % 13
        if kind < 6:  # UDP v4, sender -> receiver
            saddr, daddr, protocol, receive = "198.18.%d.%d" % (n // 250, n % 250 + 1), "198.19.0.1", 17, "UDP_RCV"
        elif kind < 8:  # TCP v4 through the router
            saddr, daddr, protocol, receive = "198.18.%d.%d" % (n // 250, n % 250 + 1), "198.19.0.2", 6, "TCP_V4_RCV"
        elif kind == 8:  # UDP v6
            saddr, daddr, protocol, receive = "2001:2::%x" % (n + 1), "2001:2::ffff", 17, "UDP_V6_RCV"
        else:  # ICMP v4: no ports
            saddr, daddr, protocol, receive, sport, dport = "198.18.%d.%d" % (n // 250, n % 250 + 1), "198.19.0.3", \
                1, None, 0, 0
        first_hop = ROUTER if protocol == 6 else SENDER
        last_hop = GONE if n % 97 == 0 else RECEIVER
        at_first = _stage_counts(stage_ids, QUEUE_XMIT=sent, SEND_SKB=sent,
                                 RETRANS=(n % 5 if protocol == 6 else 0))
        arrived = sent - lost
        received = dict(ETH_RECV=sent, RECV_SKB=sent)
        if receive:
            received[receive] = arrived if n % 3 else 0  # some flows' socket stage unseen
        if lost:
            received["DROPPED"] = lost
        at_last = _stage_counts(stage_ids, **received)
        base = 1000 + 10 * n
        for hop, counts, first in ((first_hop, at_first, base), (last_hop, at_last, base + 5)):
            key = bytes(key_of(saddr, sport, daddr, dport, protocol, *hop))
            if n % 50 == 1 and hop == first_hop:  # some flows' first hop in a CPU's slot as well
                cpu = n % CPUS
                slot = Slot(dp_key=FlowKey.from_buffer_copy(key))
                half = [c // 2 for c in counts]
                slot.dp_counts.dp_packets[:] = half
                slot.dp_counts.dp_first_seen = first
                slots[cpu][n % SLOTS_PER_CPU] = bytes(slot)
                counts = [c - h for c, h in zip(counts, half)]
            keys.append(key)
            values.append(_counts(counts, first))
        if lost:
            reason, location = DROP_SITES[n % 7]
            drop = DropKey(dp_flow=FlowKey.from_buffer_copy(bytes(key_of(saddr, sport, daddr, dport, protocol,
                                                                         *last_hop))),
                           dp_location=location, dp_reason=reason)
            drop_keys.append(bytes(drop))
            drop_values.append(struct.pack("<Q", lost))
    # packets that could not be parsed
    drop_keys.append(bytes(DropKey(dp_location=0xffffffff81003dd1, dp_reason=44)))
    drop_values.append(struct.pack("<Q", 7))
    order = list(range(len(keys)))
    rng.shuffle(order)  # a hash table's order
    flows = ([keys[i] for i in order], b"".join(values[i] for i in order), 40000, 1)
    slot_values = b"".join(slots[cpu][i] for i in range(SLOTS_PER_CPU) for cpu in range(CPUS))
    inserted = ([struct.pack("<I", 0), struct.pack("<I", 1)],
                struct.pack("<2Q", len(keys) + 3, len(drop_keys)), 2, 1)
    return flows, (list(range(SLOTS_PER_CPU)), slot_values, SLOTS_PER_CPU, CPUS), \
        (drop_keys, b"".join(drop_values), 40000, 1), inserted


def hop_names():
    """{(netns, ifindex): (netns name, device name or None)} of the canned hops."""
    return dict(HOP_NAMES)


DEVICES = {RECEIVER: {"rx_dropped": 3}, SENDER: {"tx_dropped": 1}}
SOFTNET = {0: {"dropped": 2}, 1: {"time_squeeze": 5}}
SINCE = 1700000000.5
DEST = ipaddress.ip_address("198.19.0.1")
