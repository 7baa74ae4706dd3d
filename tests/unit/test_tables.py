"""Reading the kernel's tables: batch reads (and the fallback without them),
columns of values, held slots of every CPU, and a Snapshot decoded from canned bytes alone: slots and the
flow table merged, drops decoded, table use and evictions."""
import ctypes
import errno
import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procfs_fuse.drop_packet.capture.flows import Drop, Flow, Hop, TableUse
from procfs_fuse.drop_packet.capture.stages import STAGES
from procfs_fuse.drop_packet.capture.tables import Decoder, RawTable, columns, held_slots, read_raw
from procfs_fuse.drop_packet.capture import tables
from procfs_fuse.kernel.ksyms import Symbolizer
from tests.support.layouts import Counts, DropKey, FlowKey, Slot, key_of

ip = ipaddress.ip_address
UDP_FLOW = Flow(17, ip("198.18.0.1"), 40000, ip("198.18.0.2"), 7777)
TCP_FLOW = Flow(6, ip("2001:2::1"), 40001, ip("2001:2::2"), 8080)
KALLSYMS = "ffffffff81000000 T udp_rcv\nffffffff81000100 T tcp_v4_rcv\n"
CPUS = 2


def test_values_are_read_as_columns_per_entry():
    # 3 entries of 3 words, as a batch read lays them out
    values = struct.pack("<9Q", 1, 2, 3, 10, 20, 30, 100, 200, 300)
    assert columns(values, 3, range(2)) == [(1, 2), (10, 20), (100, 200)]
    assert columns(values, 3, [2]) == [(3,), (30,), (300,)]
    assert columns(b"", 11, range(10)) == []


def test_held_slots_are_those_with_a_family():
    free, held = bytes(Slot()), slot_bytes(UDP_FLOW, {"SEND_SKB": 1})
    family_offset = Slot.dp_key.offset + FlowKey.dp_family.offset
    assert held_slots(free + held + free + held, len(free), family_offset) == [len(free), 3 * len(free)]
    assert held_slots(free * 4, len(free), family_offset) == []


class BatchedMap:
    """A hash map as BPF_MAP_LOOKUP_BATCH hands it out: at most the asked count
    per call, from where the last call stopped, ENOENT with the last batch.
    batches=False: a kernel without batch operations (EINVAL), read by items()."""
    Key, Leaf = ctypes.c_uint64 * 5, ctypes.c_uint64 * 2
    map_fd = 7

    def __init__(self, count, max_entries, batches=True):
        self.entries = [(self.Key(i, 0, 0, 0, i), self.Leaf(i, 2 * i)) for i in range(count)]
        self.max_entries, self.calls, self.batches = max_entries, 0, batches

    def bpf_lookup_batch(self, fd, in_batch, out_batch, keys, values, count):
        self.calls += 1
        if not self.batches:
            ctypes.set_errno(errno.EINVAL)
            return -1
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

    def items(self):
        return list(self.entries)


@pytest.mark.parametrize("batches", [True, False])
def test_a_table_is_read_whole_in_batches_through_buffers_for_one(batches):
    for count, max_entries in ((10000, 20000), (4096, 4096), (0, 100), (5, 100)):
        table = BatchedMap(count, max_entries, batches)
        raw = read_raw(table, lib=table)
        assert raw.keys == [bytes(k) for k, _ in table.entries]
        assert raw.values == b"".join(bytes(v) for _, v in table.entries)
        assert (raw.capacity, raw.cpus) == (max_entries, 1)
        assert table.calls == (max(1, -(-count // min(tables.RAW_BATCH, max_entries))) if batches else 1)


class Symbols:
    """KernelSymbols as the decoder sees it: current() may be a new Symbolizer."""

    def __init__(self, kallsyms_text):
        self.symbolizer = Symbolizer(kallsyms_text)

    def current(self):
        return self.symbolizer


def counts_bytes(counts):
    """The bytes of one dp_flow_counts value of {stage: n} ("first": when the entry was made)."""
    return bytes(Counts((ctypes.c_uint64 * len(STAGES))(*(counts.get(s, 0) for s in STAGES)),
                        counts.get("first", 0)))


def key_bytes(flow, hop=Hop(0, 0)):
    return bytes(key_of(str(flow.saddr), flow.sport, str(flow.daddr), flow.dport, flow.protocol, hop.netns,
                        hop.ifindex))


def slot_bytes(flow, counts, hop=Hop(0, 0), first=0):
    slot = Slot(dp_key=FlowKey.from_buffer_copy(key_bytes(flow, hop)) if flow else FlowKey())
    for stage, n in counts.items():
        slot.dp_counts.dp_packets[STAGES.index(stage)] = n
    slot.dp_counts.dp_first_seen = first
    return bytes(slot)


A_VETH, B_VETH = Hop(4026532281, 2), Hop(4026532400, 3)  # the sender's device, then the receiver's


def canned_tables(flow_capacity=100, drop_capacity=10, inserted=(4, 4)):
    """UDP_FLOW at two hops: at A_VETH in CPU 0's slot 5 and in the table (it
    met a taken slot on CPU 1), at B_VETH in the table; TCP_FLOW in the table
    only; one unattributed drop. The tables are shared; the slots per CPU."""
    slots_per_cpu = 8
    cpu0 = [slot_bytes(None, {})] * slots_per_cpu
    cpu0[5] = slot_bytes(UDP_FLOW, {"SEND_SKB": 70, "DROPPED": 1}, A_VETH, first=100)
    cpu1 = [slot_bytes(None, {})] * slots_per_cpu
    slot_values = b"".join(a + b for a, b in zip(cpu0, cpu1))  # slot after slot, CPU after CPU
    flows = RawTable([key_bytes(UDP_FLOW, B_VETH), key_bytes(UDP_FLOW, A_VETH), key_bytes(TCP_FLOW, B_VETH),
                      bytes(FlowKey())],
                     counts_bytes({"RECV_SKB": 100, "first": 120})
                     + counts_bytes({"SEND_SKB": 30, "first": 150})
                     + counts_bytes({"RECV_SKB": 3, "first": 7})
                     + counts_bytes({"RECV_SKB": 9}),  # an all-zero key: unattributed, not a flow
                     flow_capacity)
    udp_drop = DropKey(dp_flow=FlowKey.from_buffer_copy(key_bytes(UDP_FLOW, A_VETH)),
                       dp_location=0xffffffff81000010, dp_reason=2)
    unattributed = DropKey(dp_location=0xffffffff81000104, dp_reason=99)
    drops = RawTable([bytes(udp_drop), bytes(unattributed)], struct.pack("<2Q", 1, 2), drop_capacity)
    inserted_table = RawTable([struct.pack("<I", 0), struct.pack("<I", 1)], struct.pack("<2Q", *inserted), 2)
    return (flows, RawTable(list(range(slots_per_cpu)), slot_values, slots_per_cpu, CPUS), drops, inserted_table)


def decoder(symbols=None):
    return Decoder(FlowKey, DropKey, Slot, {2: "NO_SOCKET"}, symbols or Symbols(KALLSYMS))


def test_a_snapshot_merges_slots_and_table_per_hop_in_path_order_and_says_how_full_each_is():
    snapshot = decoder().snapshot(*canned_tables())
    counts = {flow: [(hop, dict((s, n) for s, n in zip(STAGES, c) if n)) for hop, c in hops]
              for flow, hops in snapshot.flows.items()}
    # at A_VETH: slot (70 sent, 1 dropped) + table (30 sent), first seen at 100 (the slot's) before
    # B_VETH's 120
    assert counts == {UDP_FLOW: [(A_VETH, {"SEND_SKB": 100, "DROPPED": 1}), (B_VETH, {"RECV_SKB": 100})],
                      TCP_FLOW: [(B_VETH, {"RECV_SKB": 3})]}
    assert sorted(snapshot.drops, key=lambda d: d.reason) == [
        Drop(UDP_FLOW, A_VETH, "NO_SOCKET", "udp_rcv+0x10", 1), Drop(None, None, "REASON_99", "tcp_v4_rcv+0x4", 2)]
    # held: (flow, hop) entries in the table (not the unattributed key), drops, taken slots of every CPU;
    # evicted: ever inserted - held
    assert snapshot.tables == (TableUse("flows", 3, 100, 1), TableUse("drops", 2, 10, 2),
                               TableUse("slots", 1, 16, 0))


def test_evicted_is_never_negative():
    # a clear racing a read can leave fewer inserted than held
    assert decoder().snapshot(*canned_tables(inserted=(0, 0))).tables[:2] == (
        TableUse("flows", 3, 100, 0), TableUse("drops", 2, 10, 0))


def test_empty_tables_make_an_empty_snapshot():
    empty = RawTable([], b"", 100)
    snapshot = decoder().snapshot(empty, RawTable([], b"", 8, CPUS), empty, RawTable([], b"", 2))
    assert snapshot.flows == {} and snapshot.drops == ()
    assert snapshot.tables == (TableUse("flows", 0, 100, 0), TableUse("drops", 0, 100, 0),
                               TableUse("slots", 0, 16, 0))


def test_a_key_is_decoded_once_until_the_kernel_symbols_change():
    symbols = Symbols(KALLSYMS)
    decode = decoder(symbols)
    first = decode.snapshot(*canned_tables())
    again = decode.snapshot(*canned_tables())
    assert [id(f) for f in first.flows] == [id(f) for f in again.flows]  # one Flow per key across reads
    assert {d.location for d in again.drops} == {"udp_rcv+0x10", "tcp_v4_rcv+0x4"}
    symbols.symbolizer = Symbolizer("ffffffff81000008 T udp_queue_rcv_skb\n")  # a module came or went
    assert {d.location for d in decode.snapshot(*canned_tables()).drops} == {
        "udp_queue_rcv_skb+0x8", "udp_queue_rcv_skb+0xfc"}


# (flow, hop) entries: in the table (counts and first-seen time) and/or held slots of either CPU
ENTRY = st.fixed_dictionaries({
    "flow": st.sampled_from([UDP_FLOW, TCP_FLOW, Flow(17, ip("198.18.0.3"), 1, ip("198.18.0.4"), 2)]),
    "hop": st.sampled_from([A_VETH, B_VETH, Hop(4026532500, 0)]),
    "table": st.none() | st.fixed_dictionaries({"RECV_SKB": st.integers(0, 5), "first": st.sampled_from([0, 3, 7])}),
    "slots": st.tuples(*[st.none() | st.tuples(st.integers(0, 7), st.integers(1, 5), st.sampled_from([2, 3, 9]))]
                       * CPUS)})


def tables_of(entries):
    """RawTables of entries (a (flow, hop) once) and, by a reference model, the flows they hold."""
    keys, values, slots, expected = [], b"", [[slot_bytes(None, {})] * 8 for _ in range(CPUS)], {}
    for entry in entries:
        raw_key, parts = key_bytes(entry["flow"], entry["hop"]), []
        if entry["table"]:
            keys.append(raw_key)
            values += counts_bytes(entry["table"])
            parts.append((entry["table"]["RECV_SKB"], entry["table"]["first"]))
        for cpu, (index, count, first) in enumerate(entry["slots"]):
            if index is None:
                continue
            slots[cpu][index] = slot_bytes(entry["flow"], {"RECV_SKB": count}, entry["hop"], first)
            parts.append((count, first))
        if parts:
            first = min([f for _n, f in parts if f], default=0)
            expected.setdefault(entry["flow"], []).append((first, entry["hop"], sum(n for n, _f in parts)))
    slot_values = b"".join(a + b for a, b in zip(*slots))
    raw = (RawTable(keys, values, 100), RawTable(list(range(8)), slot_values, 8, CPUS),
           RawTable([], b"", 10), RawTable([], b"", 2))
    return raw, {flow: [(hop, n) for _first, hop, n in sorted(seen)] for flow, seen in expected.items()}


def unique_entries(entries):
    """One entry per (flow, hop), and a slot index taken once per CPU; a slot (None, 0, 0): none."""
    seen, taken, kept = set(), [set(), set()], []
    for entry in entries:
        if (entry["flow"], entry["hop"]) in seen:
            continue
        seen.add((entry["flow"], entry["hop"]))
        entry = dict(entry, slots=[s if s and s[0] not in taken[cpu] else (None, 0, 0)
                                   for cpu, s in enumerate(entry["slots"])])
        for cpu, (index, _n, _f) in enumerate(entry["slots"]):
            taken[cpu].add(index)
        kept.append(entry)
    return kept


NEW_FLOWS = [Flow(17, ip("198.18.0.5"), 5, ip("198.18.0.6"), 6), Flow(6, ip("198.18.0.7"), 7, ip("198.18.0.8"), 8)]
# an entry of the next reading: mostly of a flow new to the last (a busy host's next `cat`), some not
ADDED = st.fixed_dictionaries({
    "flow": st.sampled_from(NEW_FLOWS + [UDP_FLOW]), "hop": st.sampled_from([A_VETH, B_VETH]),
    "table": st.fixed_dictionaries({"RECV_SKB": st.integers(0, 5), "first": st.sampled_from([0, 4])}),
    "slots": st.just((None, None))})


@settings(max_examples=400, deadline=None)
@given(st.lists(ENTRY, max_size=8), st.lists(st.integers(0, 5), min_size=1, max_size=16), st.booleans(),
       st.lists(ADDED, max_size=3), st.randoms(use_true_random=False), st.integers(0, 2))
def test_a_reading_after_another_decodes_as_a_fresh_one(entries, new_counts, move_first, added, shuffle, gone):
    """A decoder that read the tables before (and keeps what their keys
    decode to) decodes the next reading as a fresh decoder does: its counts
    hop by hop in path order, with entries in another order, recounted, made
    anew (new first-seen times), gone or added."""
    entries = unique_entries(entries)
    before, _expected = tables_of(entries)
    def then(n, c):  # new counts; a new first-seen time where move_first (an entry evicted and made again)
        new = new_counts[n % len(new_counts)]
        return dict(c, RECV_SKB=new, first=(0, 3, 7)[new % 3] if move_first else c["first"])
    recounted = [dict(e, table=e["table"] and then(n, e["table"])) for n, e in enumerate(entries)]
    recounted = unique_entries(recounted[gone:] + added)
    shuffle.shuffle(recounted)  # the table's entries in another order
    after, expected = tables_of(recounted)
    decode = decoder()
    decode.snapshot(*before)
    for snapshot in (decode.snapshot(*after), decoder().snapshot(*after)):
        assert {flow: [(hop, c[STAGES.index("RECV_SKB")]) for hop, c in hops]
                for flow, hops in snapshot.flows.items()} == expected


def test_possible_cpus_are_counted_from_the_kernels_list():
    from tests.support.kernel_memory import possible_cpus
    assert [possible_cpus(text) for text in ("0\n", "0-1\n", "0-63\n", "0,2-3\n")] == [1, 2, 64, 3]


def test_translations_are_decoded_in_the_order_they_were_first_seen():
    # dp_nats: key words as translated -> words as sent, the hop (netns | ifindex << 32), when
    translated = Flow(17, ip("198.18.8.254"), 40000, ip("198.18.8.1"), 7042)
    words = lambda flow: key_bytes(flow)[:FlowKey.dp_netns.offset]
    nats = RawTable([words(translated), words(TCP_FLOW)],
                    words(UDP_FLOW) + struct.pack("<IIQ", 4026532300, 3, 50)
                    + words(TCP_FLOW) + struct.pack("<IIQ", 1, 1, 20), 1024)
    snapshot = decoder().snapshot(*canned_tables(), nats)
    assert [(t.flow, t.hop, t.to) for t in snapshot.nats] == [
        (TCP_FLOW, Hop(1, 1), TCP_FLOW), (UDP_FLOW, Hop(4026532300, 3), translated)]
    assert snapshot.tables[-1] == TableUse("nats", 2, 1024, 0)
    assert snapshot.nats_of[UDP_FLOW.sort_key] == (snapshot.nats[1],)
