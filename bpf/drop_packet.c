/* drop-packet: per-flow packet counters at each stage of the packet path,
 * and per-flow drops by reason and location.
 *
 * Compiled by BCC with -I<this dir> and these -D values from user space:
 *   DP_SKB_HEAD, DP_SKB_DATA, DP_SKB_NETWORK_HEADER, DP_SKB_PROTOCOL:
 *       offsets of struct sk_buff members in the running kernel (from BTF;
 *       the header tree BCC compiles against may be another kernel's), and
 *       DP_SKB_WINDOW_START, DP_SKB_WINDOW_LEN: the bytes that span them;
 *   DP_DIRECT_READ, DP_KFUNC_PLACEHOLDER: set when the kernel lets a program
 *       load kernel memory directly (see dp_read);
 *   DP_MAX_FLOWS, DP_MAX_DROPS: capacities of the two tables;
 *   DP_KFREE_SKB_*, DP_RETRANS_*: field offsets in those tracepoints' records
 *       (from their tracefs format; -1 for a field this kernel lacks; not
 *       defined at all when the tracepoint is missing).
 * Every probe is a stub calling one helper; user space attaches only the
 * stubs its hook plan chose, so stubs for absent hooks cost nothing. */
#include <uapi/linux/ptrace.h>	/* struct pt_regs for the kprobe stubs */
#include "drop_packet.h"

#define DP_AF_INET 2
#define DP_AF_INET6 10
#define DP_IPPROTO_TCP 6
#define DP_IPPROTO_UDP 17
#define DP_ETH_HLEN 14

BPF_TABLE("lru_percpu_hash", struct dp_flow_key, struct dp_flow_counts, dp_flows, DP_MAX_FLOWS);
BPF_PERCPU_ARRAY(dp_slots, struct dp_slot, 1 << DP_SLOT_BITS);
BPF_TABLE("lru_percpu_hash", struct dp_drop_key, __u64, dp_drops, DP_MAX_DROPS);
BPF_ARRAY(dp_config, struct dp_config, 1);
BPF_PERCPU_ARRAY(dp_inserted, __u64, DP_NR_TABLES);

#ifdef DP_DIRECT_READ
/* bpf_rdonly_cast(p, 0) makes p a read-only pointer the program may load
 * from: each load is one instruction (a faulting one reads 0), where
 * bpf_probe_read_kernel is a helper call of some 20 ns. BCC cannot emit a
 * kfunc call, so this is compiled as a call to a placeholder helper number
 * that user space turns into the kfunc call before loading
 * (procfs_fuse/kernel/kfunc.py). */
static void *(*dp_rdonly_cast)(const void *p, __u32 btf_id) = (void *)DP_KFUNC_PLACEHOLDER;

/* size: a constant multiple of 4; dst 8-aligned. Whole 64-bit words where
 * it can (x86 loads them unaligned): each load is guarded by the JIT. */
static __always_inline int dp_read(void *dst, int size, const void *src)
{
	const __u64 *from = dp_rdonly_cast(src, 0);
#pragma unroll
	for (int i = 0; i < size / 8; i++)
		((__u64 *)dst)[i] = from[i];
	if (size % 8)
		((__u32 *)dst)[size / 4 - 1] = ((const __u32 *)from)[size / 4 - 1];
	return 0;
}
#else
#define dp_read(dst, size, src) bpf_probe_read_kernel((dst), (size), (src))
#endif

static __always_inline void *dp_read_ptr(void *base, int offset)
{
	void *p = 0;
	dp_read(&p, sizeof(p), base + offset);
	return p;
}

/* The sk_buff members dp_parse needs lie close together: one read of the
 * window that spans them (bounds from BTF) instead of one read each. */
#define DP_SKB_AT(win, member) ((win) + (member) - DP_SKB_WINDOW_START)

/* Fills the key from the IP and transport headers; 0 if it is an IP packet. */
static __always_inline int dp_parse(void *skb, int l3_at, struct dp_flow_key *key)
{
	__u8 win[DP_SKB_WINDOW_LEN] __attribute__((aligned(8)));
	__u8 ethertype[4] __attribute__((aligned(4)));
	void *l3, *data;
	__u8 ip[44] __attribute__((aligned(8)));	/* an IPv6 header and the ports, or an IPv4 header and the ports */
	int l4_offset, later_fragment = 0;

	if (dp_read(win, sizeof(win), skb + DP_SKB_WINDOW_START))
		return -1;
	__builtin_memcpy(&data, DP_SKB_AT(win, DP_SKB_DATA), sizeof(data));
	__builtin_memcpy(ethertype, DP_SKB_AT(win, DP_SKB_PROTOCOL), 2);
	if (l3_at == DP_L3_AT_NETWORK_HEADER) {
		void *head;
		__u16 network_header;
		__builtin_memcpy(&head, DP_SKB_AT(win, DP_SKB_HEAD), sizeof(head));
		__builtin_memcpy(&network_header, DP_SKB_AT(win, DP_SKB_NETWORK_HEADER), 2);
		if (network_header == 0xffff)	/* not set yet */
			return -1;
		l3 = head + network_header;
	} else if (l3_at == DP_L3_AT_DATA_ETH) {
		dp_read(ethertype, 4, data + 12);
		l3 = data + DP_ETH_HLEN;
	} else {
		l3 = data;
	}

	if (ethertype[0] == 0x08 && ethertype[1] == 0x00) {
		/* header and ports in one read when there are no IP options */
		if (dp_read(ip, 24, l3) && dp_read(ip, 20, l3))
			return -1;
		if ((ip[0] >> 4) != 4)
			return -1;
		key->dp_family = DP_AF_INET;
		key->dp_protocol = ip[9];
		__builtin_memcpy(key->dp_saddr, &ip[12], 4);
		__builtin_memcpy(key->dp_daddr, &ip[16], 4);
		later_fragment = ((ip[6] & 0x1f) | ip[7]) != 0;
		l4_offset = (ip[0] & 0x0f) * 4;
	} else if (ethertype[0] == 0x86 && ethertype[1] == 0xdd) {
		if (dp_read(ip, 44, l3) && dp_read(ip, 40, l3))
			return -1;
		if ((ip[0] >> 4) != 6)
			return -1;
		key->dp_family = DP_AF_INET6;
		key->dp_protocol = ip[6];
		__builtin_memcpy(key->dp_saddr, &ip[8], 16);
		__builtin_memcpy(key->dp_daddr, &ip[24], 16);
		l4_offset = 40;
	} else {
		return -1;
	}
	/* ports for TCP and UDP; a later fragment has none */
	if ((key->dp_protocol == DP_IPPROTO_TCP || key->dp_protocol == DP_IPPROTO_UDP) && !later_fragment) {
		__u8 *ports = l4_offset == 20 ? &ip[20] : &ip[40];
		if (l4_offset != 20 && l4_offset != 40) {	/* IPv4 options: read the ports apart */
			if (dp_read(ip, 4, l3 + l4_offset))
				return -1;
			ports = ip;
		}
		key->dp_sport = (ports[0] << 8) | ports[1];
		key->dp_dport = (ports[2] << 8) | ports[3];
	}
	return 0;
}

static __always_inline int dp_same_addr(const __u8 *a, const __u8 *b)
{
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* 1 if the flow passes the filters in dp_config. */
static __always_inline int dp_wanted(const struct dp_flow_key *key)
{
	int zero = 0;
	struct dp_config *c = dp_config.lookup(&zero);

	if (!c || !c->dp_active)
		return 1;
	if (c->dp_saddr_family && (c->dp_saddr_family != key->dp_family ||
				   !dp_same_addr(c->dp_saddr, key->dp_saddr)))
		return 0;
	if (c->dp_daddr_family && (c->dp_daddr_family != key->dp_family ||
				   !dp_same_addr(c->dp_daddr, key->dp_daddr)))
		return 0;
	if (c->dp_sport >= 0 && c->dp_sport != key->dp_sport)
		return 0;
	if (c->dp_dport >= 0 && c->dp_dport != key->dp_dport)
		return 0;
	return 1;
}

static __always_inline void dp_note_insert(int table)
{
	__u64 *n = dp_inserted.lookup(&table);
	if (n)
		*n += 1;
}

static __always_inline int dp_same_key(const struct dp_flow_key *a, const struct dp_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
#pragma unroll
	for (int i = 0; i < sizeof(*a) / 8; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

static __always_inline __u32 dp_slot_index(const struct dp_flow_key *key)
{
	const __u64 *word = (const __u64 *)key;
	__u64 h = 0;
#pragma unroll
	for (int i = 0; i < sizeof(*key) / 8; i++)
		h ^= word[i];
	return ((__u32)(h ^ (h >> 32)) * 2654435761u) >> (32 - DP_SLOT_BITS);	/* Fibonacci hashing */
}

static __always_inline void dp_bump(struct dp_flow_key *key, int stage)
{
	/* A flow's own slot on this CPU costs an array access; a hash table
	 * lookup costs some 40 ns. The first flow to hash to an empty slot keeps
	 * it until clear: its counts never move, so a read never misses them. */
	__u32 index = dp_slot_index(key);
	struct dp_slot *slot = dp_slots.lookup(&index);
	if (slot) {
		if (slot->dp_key.dp_family == 0)
			slot->dp_key = *key;
		if (dp_same_key(&slot->dp_key, key)) {
			slot->dp_counts.dp_packets[stage] += 1;
			return;
		}
	}
	/* lookup, then insert-if-absent: BCC's increment() leaves LRU maps empty */
	struct dp_flow_counts *counts = dp_flows.lookup(key);
	if (!counts) {
		struct dp_flow_counts fresh = {};
		if (dp_flows.insert(key, &fresh) == 0)
			dp_note_insert(DP_TABLE_FLOWS);
		counts = dp_flows.lookup(key);
		if (!counts)
			return;
	}
	counts->dp_packets[stage] += 1;	/* per-CPU value: no atomics needed */
}

/* Counts one sighting of skb at stage. */
static __always_inline int dp_count(void *skb, int stage, int l3_at)
{
	struct dp_flow_key key = {};

	if (skb && dp_parse(skb, l3_at, &key) == 0 && dp_wanted(&key))
		dp_bump(&key, stage);
	return 0;
}

static __always_inline void dp_ctx_read(void *ctx, int offset, void *dst, int size)
{
	if (offset >= 0)
		bpf_probe_read_kernel(dst, size, ctx + offset);
}

/* Stubs. Raw tracepoint args are the tracepoint's TP_PROTO arguments. */

int dp_kp_eth_type_trans(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), DP_STAGE_ETH_RECV, DP_L3_AT_DATA_ETH);
}

int dp_tp_netif_rx(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], DP_STAGE_ETH_RECV, DP_L3_AT_DATA);
}

int dp_kp_napi_gro_receive(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM2(ctx), DP_STAGE_GRO_RECV, DP_L3_AT_DATA);
}

int dp_tp_napi_gro_receive_entry(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], DP_STAGE_GRO_RECV, DP_L3_AT_DATA);
}

/* Since 5.x the first argument is struct sk_buff **pskb. */
int dp_kp_netif_receive_skb_core(struct pt_regs *ctx)
{
	return dp_count(dp_read_ptr((void *)PT_REGS_PARM1(ctx), 0), DP_STAGE_RECV_SKB, DP_L3_AT_DATA);
}

int dp_tp_netif_receive_skb(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], DP_STAGE_RECV_SKB, DP_L3_AT_DATA);
}

int dp_kp_tcp_v4_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), DP_STAGE_TCP_V4_RCV, DP_L3_AT_NETWORK_HEADER);
}

int dp_kp_udp_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), DP_STAGE_UDP_RCV, DP_L3_AT_NETWORK_HEADER);
}

int dp_kp_tcp_v6_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), DP_STAGE_TCP_V6_RCV, DP_L3_AT_NETWORK_HEADER);
}

int dp_kp_udpv6_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), DP_STAGE_UDP_V6_RCV, DP_L3_AT_NETWORK_HEADER);
}

/* dev_queue_xmit(skb) and __dev_queue_xmit(skb, sb_dev) */
int dp_kp_dev_queue_xmit(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), DP_STAGE_QUEUE_XMIT, DP_L3_AT_NETWORK_HEADER);
}

int dp_tp_net_dev_queue(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], DP_STAGE_QUEUE_XMIT, DP_L3_AT_NETWORK_HEADER);
}

/* net_dev_xmit(skb, rc, dev, len): only a successful transmit counts. */
int dp_tp_net_dev_xmit(struct bpf_raw_tracepoint_args *ctx)
{
	if ((int)ctx->args[1] != 0)
		return 0;
	return dp_count((void *)ctx->args[0], DP_STAGE_SEND_SKB, DP_L3_AT_NETWORK_HEADER);
}

#ifdef DP_RETRANS_SPORT
/* The skb is still in the write queue, without IP header: the flow comes from
 * the record's address fields. */
int dp_tp_tcp_retransmit_skb(void *ctx)
{
	struct dp_flow_key key = {};
	__u16 family = DP_AF_INET;

	dp_ctx_read(ctx, DP_RETRANS_FAMILY, &family, 2);
	dp_ctx_read(ctx, DP_RETRANS_SPORT, &key.dp_sport, 2);
	dp_ctx_read(ctx, DP_RETRANS_DPORT, &key.dp_dport, 2);
	if (family == DP_AF_INET6) {
		dp_ctx_read(ctx, DP_RETRANS_SADDR_V6, key.dp_saddr, 16);
		dp_ctx_read(ctx, DP_RETRANS_DADDR_V6, key.dp_daddr, 16);
	} else {
		dp_ctx_read(ctx, DP_RETRANS_SADDR, key.dp_saddr, 4);
		dp_ctx_read(ctx, DP_RETRANS_DADDR, key.dp_daddr, 4);
	}
	key.dp_family = family;
	key.dp_protocol = DP_IPPROTO_TCP;
	if (dp_wanted(&key))
		dp_bump(&key, DP_STAGE_RETRANS);
	return 0;
}
#endif

#ifdef DP_KFREE_SKB_SKBADDR
/* A drop: counted on its flow, and by (flow, reason, location). A packet that
 * cannot be parsed is counted with an empty flow: unattributed, not lost. */
int dp_tp_kfree_skb(void *ctx)
{
	struct dp_drop_key drop = {};
	void *skb = 0;

	dp_ctx_read(ctx, DP_KFREE_SKB_SKBADDR, &skb, sizeof(skb));
	if (skb && dp_parse(skb, DP_L3_AT_NETWORK_HEADER, &drop.dp_flow) == 0) {
		if (!dp_wanted(&drop.dp_flow))
			return 0;
		dp_bump(&drop.dp_flow, DP_STAGE_DROPPED);
	} else {
		__builtin_memset(&drop.dp_flow, 0, sizeof(drop.dp_flow));
	}
	dp_ctx_read(ctx, DP_KFREE_SKB_LOCATION, &drop.dp_location, 8);
	dp_ctx_read(ctx, DP_KFREE_SKB_REASON, &drop.dp_reason, 4);

	__u64 *count = dp_drops.lookup(&drop);
	if (!count) {
		__u64 zero = 0;
		if (dp_drops.insert(&drop, &zero) == 0)
			dp_note_insert(DP_TABLE_DROPS);
		count = dp_drops.lookup(&drop);
		if (!count)
			return 0;
	}
	*count += 1;
	return 0;
}
#endif
