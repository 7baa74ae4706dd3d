/* The one definition shared by the BPF program and user space.
 * Python reads enum dp_stage from this file (procfs_fuse/drop_packet/stages.py),
 * and takes struct layouts from the compiled program, so nothing here is copied.
 * Names are prefixed: kernel headers own short names such as struct key. */
#ifndef DROP_PACKET_H
#define DROP_PACKET_H

/* Stages in the order a packet meets them; the report prints them in this order. */
enum dp_stage {
	DP_STAGE_ETH_RECV = 0,
	DP_STAGE_GRO_RECV = 1,
	DP_STAGE_RECV_SKB = 2,
	DP_STAGE_TCP_V4_RCV = 3,
	DP_STAGE_UDP_RCV = 4,
	DP_STAGE_SEND_SKB = 5,
	DP_NR_STAGES = 6,
};

/* Where the IP header is when a hook fires. */
enum dp_l3_at {
	DP_L3_AT_DATA = 0,		/* skb->data (after eth_type_trans pulled the MAC header) */
	DP_L3_AT_DATA_ETH = 1,		/* skb->data + ETH_HLEN (at eth_type_trans entry) */
	DP_L3_AT_NETWORK_HEADER = 2,	/* skb->head + skb->network_header (set by then) */
};

/* A directional flow. IPv4 addresses use the first 4 bytes. Ports in host order. */
struct dp_flow_key {
	__u8 dp_saddr[16];
	__u8 dp_daddr[16];
	__u16 dp_sport;
	__u16 dp_dport;
	__u8 dp_family;		/* AF_INET or AF_INET6 */
	__u8 dp_protocol;	/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 dp_pad[2];
};

struct dp_flow_counts {
	__u64 dp_packets[DP_NR_STAGES];
};

/* Filters, written by user space into dp_config[0] without recompiling.
 * A family of 0 or a port of -1 means "any". */
struct dp_config {
	__u8 dp_saddr[16];
	__u8 dp_daddr[16];
	__u8 dp_saddr_family;
	__u8 dp_daddr_family;
	__u8 dp_active;		/* 0: no filter set, skip the comparisons */
	__u8 dp_pad;
	__s32 dp_sport;
	__s32 dp_dport;
};

#endif
