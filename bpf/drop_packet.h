/* The one definition shared by the BPF program and user space.
 * Python reads enum dp_stage from this file (procfs_fuse/drop_packet/capture/stages.py),
 * and takes struct layouts from the compiled program, so nothing here is copied.
 * Names are prefixed: kernel headers own short names such as struct key. */
#ifndef DROP_PACKET_H
#define DROP_PACKET_H

/* Per-flow counters: their index in dp_flow_counts. Python takes the names
 * and ids from here; the report's order and each stage's hooks are its row
 * in procfs_fuse/drop_packet/capture/stages.py (a new stage goes at the end here). */
enum dp_stage {
	DP_STAGE_ETH_RECV = 0,
	DP_STAGE_GRO_RECV = 1,
	DP_STAGE_RECV_SKB = 2,
	DP_STAGE_TCP_V4_RCV = 3,
	DP_STAGE_UDP_RCV = 4,
	DP_STAGE_TCP_V6_RCV = 5,
	DP_STAGE_UDP_V6_RCV = 6,
	DP_STAGE_QUEUE_XMIT = 7,
	DP_STAGE_SEND_SKB = 8,
	DP_STAGE_RETRANS = 9,	/* TCP retransmissions */
	DP_STAGE_DROPPED = 10,	/* freed as a drop; details in dp_drops */
	DP_NR_STAGES = 11,
};

/* Slots of dp_inserted: how many entries each table ever took. Evicted =
 * inserted - held, as nothing else deletes (clear resets both). */
enum dp_table {
	DP_TABLE_FLOWS = 0,
	DP_TABLE_DROPS = 1,
	DP_TABLE_NATS = 2,	/* also: 0 while no translation is recorded */
	DP_NR_TABLES = 3,
};

/* Where the IP header is when a hook fires. */
enum dp_l3_at {
	DP_L3_AT_DATA = 0,		/* skb->data (after eth_type_trans pulled the MAC header) */
	DP_L3_AT_DATA_ETH = 1,		/* skb->data + ETH_HLEN (at eth_type_trans entry) */
	DP_L3_AT_NETWORK_HEADER = 2,	/* skb->head + skb->network_header (set by then) */
};

/* A directional flow at one hop. IPv4 addresses use the first 4 bytes, the
 * rest 0. Ports in host order, 0 for protocols without ports and for later
 * fragments. dp_family 0: a packet that could not be parsed (non-IP,
 * truncated), counted only in dp_drops as unattributed; in dp_slots, an empty
 * slot. The hop is where it was seen: a flow crossing veths, bridges and
 * routers has one key per hop. Aligned to 8: built, hashed, compared and
 * filtered as DP_KEY_WORDS 64-bit words. */
struct __attribute__((aligned(8))) dp_flow_key {
	__u8 dp_saddr[16];
	__u8 dp_daddr[16];
	__u16 dp_sport;
	__u16 dp_dport;
	__u8 dp_family;		/* AF_INET or AF_INET6 */
	__u8 dp_protocol;	/* IP protocol number */
	__u8 dp_pad[2];
	__u32 dp_netns;		/* the hop's network namespace: its inode (ls -l /proc/PID/ns/net) */
	__u32 dp_ifindex;	/* its device there; 0: none (a drop at a socket, a retransmission) */
};
#define DP_KEY_WORDS 6
#define DP_HOP_WORD 5	/* dp_netns | dp_ifindex << 32 */

/* One (flow, drop reason, drop location) of skb:kfree_skb. */
struct dp_drop_key {
	struct dp_flow_key dp_flow;
	__u64 dp_location;	/* kernel address; user space symbolizes it */
	__u32 dp_reason;	/* enum skb_drop_reason of the running kernel */
	__u32 dp_pad;
};

struct dp_flow_counts {
	__u64 dp_packets[DP_NR_STAGES];
	/* bpf_ktime_get_ns() when the entry was made: a flow's hops in the
	 * order its first packet passed them */
	__u64 dp_first_seen;
};

/* dp_nats: a translation (NAT) seen in a packet's conntrack entry: the
 * flow's words as translated (key words 0..4) -> as its sender sent them,
 * and the hop where it was first seen translated. Hops reached after it,
 * where the conntrack entry is gone (another namespace: the sk_buff was
 * scrubbed), count the flow as sent through this record. */
struct dp_nat_key {
	__u64 dp_words[DP_HOP_WORD];
};

struct dp_nat {
	__u64 dp_sent[DP_HOP_WORD];
	__u64 dp_hop;		/* dp_netns | dp_ifindex << 32 */
	__u64 dp_first_seen;	/* bpf_ktime_get_ns(): its place on the flow's path */
};

/* dp_slots: per CPU, 1 << DP_SLOT_BITS slots, each held by the first flow
 * that finds it empty among its DP_SLOT_CHOICES (until clear); flows that
 * find theirs taken are counted in dp_flows. A flow's count is the sum over
 * all. */
#define DP_SLOT_BITS 8
#define DP_SLOT_CHOICES 2

struct dp_slot {
	struct dp_flow_key dp_key;
	struct dp_flow_counts dp_counts;
};

/* Filters, written by user space into dp_config[0] without recompiling: a
 * flow passes when each word of its key, masked with dp_mask, equals that
 * word of dp_value. dp_active 0: no filter is set, skip the comparisons. */
struct dp_config {
	struct dp_flow_key dp_mask;
	struct dp_flow_key dp_value;
	__u8 dp_active;
	__u8 dp_dev_active;	/* only hops on a device of this name pass */
	__u8 dp_pad[2];
	__u32 dp_generation;	/* a memo holds while it stays; 0: no memo is used or made (capture/config.py) */
	__u32 dp_nat_epoch;	/* the programs' own: +1 when a translated header becomes another flow's */
	__u32 dp_pad2;
	/* The same filters over bytes 8..23 of an IPv4 header without options
	 * (protocol, addresses and ports as on the wire), as two little-endian
	 * words: a packet whose words, masked, differ from dp_ipv4_value is one
	 * the filters leave out, known before its key is built. Written by
	 * capture/config.py ipv4_mask_and_value; all 0 when no filter is set. */
	__u64 dp_ipv4_mask[2];
	__u64 dp_ipv4_value[2];
	__u64 dp_dev_name[2];	/* the device name filter, NUL-padded as net_device.name */
};

/* dp_memos: per CPU, DP_MEMO_WAYS memos, one picked by a hash of the
 * packet's device (a packet's hops on one CPU, a veth's two ends, each keep
 * theirs): the last memoizable packet seen there (see drop_packet.c), its tag and
 * device, the generation of dp_config it was decided under, and the outcome.
 * Two devices on one CPU's packet path that share a way take the memo from
 * each other at every packet, 1 pair in DP_MEMO_WAYS (with 4 ways, a veth's
 * two ends did in 1 benchmark run of 4: +8 ns an event). */
#define DP_MEMO_BITS 6
#define DP_MEMO_WAYS (1 << DP_MEMO_BITS)
#define DP_MEMO_FILTERED 0xffffffff	/* the filters leave it out */
#define DP_MEMO_NO_SLOT 0xfffffffe	/* counted in dp_flows: not memoized */
#define DP_MEMO_BUSY 0xfffffffd	/* being written */
struct dp_memo {
	__u64 dp_tag[2];
	__u64 dp_dev;	/* the struct net_device address: while it lives, one hop */
	__u32 dp_generation;
	__u32 dp_slot;	/* index in dp_slots, DP_MEMO_FILTERED or DP_MEMO_BUSY */
	__u32 dp_nat_epoch;	/* dp_config's when the memo was made */
	__u32 dp_pad;
	__u64 dp_ct;	/* the conntrack entry its packet carried (0: none): a new one may be a new flow */
};

#endif
