/* drop-packet: per-flow packet counters at each stage of the packet path,
 * and per-flow drops by reason and location.
 *
 * Compiled by BCC with -I<this dir> and these -D values from user space:
 *   DP_SKB_HEAD, DP_SKB_DATA, DP_SKB_NETWORK_HEADER, DP_SKB_PROTOCOL,
 *   DP_SKB_DEV, DP_SKB_SK, DP_DEV_IFINDEX, DP_DEV_NET, DP_DEV_NAME,
 *   DP_NET_INUM, DP_SK_NET: offsets of kernel struct members in the running
 *       kernel (from BTF; the header tree BCC compiles against may be another
 *       kernel's: activation.py KERNEL_OFFSETS says which member each is), and
 *       DP_SKB_WINDOW_START, DP_SKB_WINDOW_LEN: the bytes that span the
 *       sk_buff members read together;
 *   DP_DIRECT_READ, DP_KFUNC_PLACEHOLDER: set when the kernel lets a program
 *       load kernel memory directly (see DP_VIEW);
 *   DP_MAP_VALUE_PLACEHOLDER: see dp_the_config;
 *   DP_MAX_FLOWS, DP_MAX_DROPS: capacities of the two tables;
 *   DP_KFREE_SKB_*, DP_RETRANS_*: field offsets in those tracepoints' records
 *       (from their tracefs format; -1 for a field this kernel lacks; not
 *       defined at all when the tracepoint is missing);
 *   DP_PARSE_ONLY, DP_NO_MEMO, DP_NO_HOP: only in the overhead benchmark's
 *       reference programs (the parse alone; everything but the memo; but the hop).
 * Every probe is a stub calling one helper (dp_count); user space attaches
 * only the stubs its hook plan chose, so stubs for absent hooks cost nothing. */
#include <uapi/linux/ptrace.h>	/* struct pt_regs for the kprobe stubs */
#include "drop_packet.h"

#define DP_AF_INET 2
#define DP_AF_INET6 10
#define DP_IPPROTO_TCP 6
#define DP_IPPROTO_UDP 17
#define DP_ETH_HLEN 14
#define DP_AT_SOCKET -1	/* dp_count's stage: the socket stage of the packet's version and protocol */

BPF_TABLE("lru_percpu_hash", struct dp_flow_key, struct dp_flow_counts, dp_flows, DP_MAX_FLOWS);
BPF_PERCPU_ARRAY(dp_slots, struct dp_slot, 1 << DP_SLOT_BITS);
BPF_TABLE("lru_percpu_hash", struct dp_drop_key, __u64, dp_drops, DP_MAX_DROPS);
BPF_ARRAY(dp_config, struct dp_config, 1);
BPF_PERCPU_ARRAY(dp_memos, struct dp_memo, DP_MEMO_WAYS);
BPF_PERCPU_ARRAY(dp_inserted, __u64, DP_NR_TABLES);

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dp_parse takes header fields out of little-endian 64-bit words"
#endif

/* DP_VIEW(words, src, size, min_size) makes `words` a const __u64 * through
 * which dp_parse reads size bytes at kernel address src (the fields it needs,
 * by byte offset, with DP_AT). */
#ifdef DP_DIRECT_READ
/* bpf_rdonly_cast(p, 0) makes p a read-only pointer the program may load
 * from: each load is one instruction (the JIT guards it; a faulting load
 * reads 0), where bpf_probe_read_kernel is a helper call of some 20 ns and a
 * copy. BCC cannot emit a kfunc call, so this is compiled as a call to a
 * placeholder helper number that user space turns into the kfunc call before
 * loading (procfs_fuse/kernel/bytecode.py). */
static void *(*dp_rdonly_cast)(const void *p, __u32 btf_id) = (void *)DP_KFUNC_PLACEHOLDER;
#define DP_VIEW(words, src, size, min_size) \
	const __u64 *words = dp_rdonly_cast((src), 0)
#else
/* A copy on the stack; min_size: what must be readable when size bytes reach
 * into an unmapped page (bpf_probe_read_kernel zeroes the copy on failure). */
#define DP_VIEW(words, src, size, min_size) \
	__u64 words##_copy[((size) + 7) / 8] __attribute__((aligned(8))); \
	const __u64 *words = words##_copy; \
	if (bpf_probe_read_kernel(words##_copy, (size), (src)) && \
	    bpf_probe_read_kernel(words##_copy, (min_size), (src))) \
		return -1
#endif
#define DP_AT(words, type, offset) (*(type const *)((const __u8 *)(words) + (offset)))

/* Word 4 of a key (see struct dp_flow_key): ports, family, protocol; word 5: the hop. */
_Static_assert(__builtin_offsetof(struct dp_flow_key, dp_sport) == 32 &&
	       __builtin_offsetof(struct dp_flow_key, dp_dport) == 34 &&
	       __builtin_offsetof(struct dp_flow_key, dp_family) == 36 &&
	       __builtin_offsetof(struct dp_flow_key, dp_protocol) == 37 &&
	       __builtin_offsetof(struct dp_flow_key, dp_netns) == 8 * DP_HOP_WORD &&
	       __builtin_offsetof(struct dp_flow_key, dp_ifindex) == 8 * DP_HOP_WORD + 4 &&
	       sizeof(struct dp_flow_key) == 8 * DP_KEY_WORDS, "dp_flow_key layout");

static __always_inline __u64 dp_key_tail(__u32 wire_ports, __u64 family, __u64 protocol)
{
	/* wire_ports: the transport header's first 4 bytes as loaded; to host
	 * order, source port in the low half */
	__u32 swapped = __builtin_bswap32(wire_ports);
	return ((swapped >> 16) | (swapped << 16)) | (family << 32) | (protocol << 40);
}

static __always_inline int dp_has_ports(__u64 protocol)
{
	return protocol == DP_IPPROTO_TCP || protocol == DP_IPPROTO_UDP;
}

/* A member of skb from the view fields of its window (DP_SKB_WINDOW_START..):
 * taken out of its aligned 64-bit word, so members that share a word
 * (protocol and network_header do) cost one load, and under DP_DIRECT_READ
 * every load is a guarded one. */
#define DP_SKB(fields, type, member) ((type)(DP_AT(fields, __u64, ((member) & ~7) - DP_SKB_WINDOW_START) \
					     >> (((member) & 7) * 8)))

/* Where the IP header of the skb of window view fields is: 0 where it is not
 * known yet (or the skb is NULL). */
static __always_inline void *dp_l3(const __u64 *fields, int l3_at)
{
	if (l3_at == DP_L3_AT_NETWORK_HEADER) {
		__u16 network_header = DP_SKB(fields, __u16, DP_SKB_NETWORK_HEADER);
		if (network_header == 0xffff)	/* not set yet */
			return 0;
		void *head = DP_SKB(fields, void *, DP_SKB_HEAD);
		return head ? head + network_header : 0;
	}
	void *data = DP_SKB(fields, void *, DP_SKB_DATA);
	return data && l3_at == DP_L3_AT_DATA_ETH ? data + DP_ETH_HLEN : data;
}

/* The ethertype (network order) of that skb, whose IP header is at l3. */
static __always_inline int dp_ethertype(const __u64 *fields, int l3_at, void *l3)
{
	if (l3_at == DP_L3_AT_DATA_ETH) {
		DP_VIEW(eth, l3 - 2, 2, 2);
		return DP_AT(eth, __u16, 0);
	}
	return DP_SKB(fields, __u16, DP_SKB_PROTOCOL);
}

/* The device skb is at (skb->dev), or 0. */
static __always_inline void *dp_skb_dev(void *skb)
{
	DP_VIEW(dev, skb + DP_SKB_DEV, 8, 8);
	return (void *)dev[0];
}

/* The inode of network namespace net into *netns (0 where it cannot be read). */
static __always_inline int dp_netns_of(void *net, __u64 *netns)
{
	*netns = 0;
	if (!net)
		return 0;
	DP_VIEW(inum, net + DP_NET_INUM, 4, 4);
	*netns = DP_AT(inum, __u32, 0);
	return 0;
}

/* The hop word (dp_netns | dp_ifindex << 32) of device dev into *hop. */
static __always_inline int dp_hop_of_dev(void *dev, __u64 *hop)
{
	__u64 netns;

	*hop = 0;
	if (!dev)
		return 0;
	DP_VIEW(net, dev + DP_DEV_NET, 8, 8);
	DP_VIEW(ifindex, dev + DP_DEV_IFINDEX, 4, 4);
	dp_netns_of((void *)net[0], &netns);
	*hop = netns | (__u64)DP_AT(ifindex, __u32, 0) << 32;
	return 0;
}

/* The hop word of socket sk: its namespace, no device. */
static __always_inline int dp_hop_of_sock(void *sk, __u64 *hop)
{
	*hop = 0;
	if (!sk)
		return 0;
	DP_VIEW(net, sk + DP_SK_NET, 8, 8);
	return dp_netns_of((void *)net[0], hop);
}

/* 1 if the device name filter of c lets a packet at dev (0: none) pass;
 * 0 if not, -1 where the name cannot be read. */
static __always_inline int dp_dev_passes(const struct dp_config *c, void *dev)
{
	if (!c->dp_dev_active)
		return 1;
	if (!dev)
		return 0;
	DP_VIEW(name, dev + DP_DEV_NAME, 16, 16);
	return name[0] == c->dp_dev_name[0] && name[1] == c->dp_dev_name[1];
}

/* The socket stage of a packet of that IP version and protocol, or -1. */
static __always_inline int dp_socket_stage(int v6, __u64 protocol)
{
	if (protocol == DP_IPPROTO_TCP)
		return v6 ? DP_STAGE_TCP_V6_RCV : DP_STAGE_TCP_V4_RCV;
	if (protocol == DP_IPPROTO_UDP)
		return v6 ? DP_STAGE_UDP_V6_RCV : DP_STAGE_UDP_RCV;
	return -1;
}

/* The first 24 bytes of the IPv4 header at l3 as a view of 3 words: header
 * and ports in one read when there are no IP options (20 bytes where only
 * those can be read: then the third word's upper half is 0). Word 0:
 * version..fragment; 1: ttl, protocol, checksum, saddr; 2: daddr, then
 * ports or options. */
#define DP_IPV4_VIEW(words, l3) DP_VIEW(words, l3, 24, 20)

/* The flow key of an IPv4 packet from its header words (DP_IPV4_VIEW):
 * writes all DP_KEY_WORDS words of key; 0 if it is IPv4. */
static __always_inline int dp_key_ipv4(void *l3, const __u64 *ip, __u64 *key)
{
	__u64 first = ip[0], protocol = (ip[1] >> 8) & 0xff, header_len = (first & 0x0f) * 4;
	__u32 ports = 0;

	if ((first & 0xf0) != 0x40)
		return -1;
	if (dp_has_ports(protocol) && !((first >> 48) & 0xff1f)) {	/* a later fragment has none */
		if (header_len == 20) {
			ports = ip[2] >> 32;
		} else {	/* IP options: the ports lie further on */
			DP_VIEW(transport, l3 + header_len, 4, 4);
			ports = DP_AT(transport, __u32, 0);
		}
	}
	key[0] = ip[1] >> 32;
	key[1] = 0;
	key[2] = (__u32)ip[2];
	key[3] = 0;
	key[4] = dp_key_tail(ports, DP_AF_INET, protocol);
	return 0;
}

/* The same for IPv6: extension headers are not followed. */
static __always_inline int dp_key_ipv6(void *l3, __u64 *key)
{
	DP_VIEW(ip, l3, 44, 40);
	__u64 first = ip[0];
	if ((first & 0xf0) != 0x60)
		return -1;
	__u64 protocol = (first >> 48) & 0xff;	/* next header */
	key[0] = ip[1];
	key[1] = ip[2];
	key[2] = ip[3];
	key[3] = ip[4];
	key[4] = dp_key_tail(dp_has_ports(protocol) ? DP_AT(ip, __u32, 40) : 0, DP_AF_INET6, protocol);
	return 0;
}

/* Fills all DP_KEY_WORDS words of key from skb's IP and transport headers;
 * 0 if it is an IP packet. Reads only what the key needs. */
static __always_inline int dp_parse(void *skb, int l3_at, __u64 *key)
{
	DP_VIEW(fields, skb + DP_SKB_WINDOW_START, DP_SKB_WINDOW_LEN, DP_SKB_WINDOW_LEN);
	void *l3 = dp_l3(fields, l3_at);
	int ethertype = l3 ? dp_ethertype(fields, l3_at, l3) : -1;

	if (ethertype == __builtin_bswap16(0x0800)) {
		DP_IPV4_VIEW(words, l3);
		__u64 ip[3] = {words[0], words[1], words[2]};
		return dp_key_ipv4(l3, ip, key);
	}
	if (ethertype == __builtin_bswap16(0x86dd))
		return dp_key_ipv6(l3, key);
	return -1;
}

/* 1 if IPv4 header word 0 is of a header without options, first fragment:
 * then header words 1 and 2 hold the protocol, addresses and ports. */
static __always_inline int dp_ipv4_plain(__u64 word0)
{
	return (word0 & 0xff1f0000000000ffull) == 0x45;
}

/* dp_memos' first tag word for IPv4 header words: protocol and saddr, where
 * the words alone make the key (dp_ipv4_plain: daddr and ports are the
 * third word, the second tag word); else 0. */
static __always_inline __u64 dp_memo_tag(const __u64 *ip)
{
	return dp_ipv4_plain(ip[0]) ? ip[1] & 0xffffffff0000ff00ull : 0;
}

/* The IPv4 header words of view words (DP_IPV4_VIEW) into ip, read in the
 * order that lets the filters of c leave traffic out on the fewest loads:
 * on a header without options, first fragment, they are tried on the words
 * as they are (dp_ipv4_mask), daddr and ports first, so traffic they leave
 * out costs the reading of its headers and little more. Returns 1 if the
 * filters leave the packet out, -1 if it is no IPv4 header (only ip[0] is
 * read), else 0 (all three are). */
static __always_inline int dp_ipv4_read(const struct dp_config *c, const __u64 *words, __u64 *ip)
{
	ip[0] = words[0];
	if ((ip[0] & 0xf0) != 0x40)
		return -1;
	if (c->dp_active && dp_ipv4_plain(ip[0])) {
		ip[2] = words[2];
		if ((ip[2] & c->dp_ipv4_mask[1]) ^ c->dp_ipv4_value[1])
			return 1;
		ip[1] = words[1];
		return (ip[1] & c->dp_ipv4_mask[0]) ^ c->dp_ipv4_value[0] ? 1 : 0;
	}
	ip[1] = words[1];
	ip[2] = words[2];
	return 0;
}

/* c's generation, read before its filter (see procfs_fuse/drop_packet/config.py):
 * a memo made under it holds the outcome of that filter. */
static __always_inline __u32 dp_generation_before_filter(const struct dp_config *c)
{
	__u32 generation = c->dp_generation;
	asm volatile("" ::: "memory");
	return generation;
}

/* 1 if the flow passes the filters of config c. */
static __always_inline int dp_passes(const struct dp_config *c, const struct dp_flow_key *key)
{
	if (!c->dp_active)
		return 1;
	const __u64 *word = (const __u64 *)key;
	const __u64 *mask = (const __u64 *)&c->dp_mask, *value = (const __u64 *)&c->dp_value;
#pragma unroll
	for (int i = 0; i < DP_KEY_WORDS; i++)
		if ((word[i] & mask[i]) != value[i])
			return 0;
	return 1;
}

/* dp_config's one entry: the filters. Its address is a constant in the
 * program, as libbpf makes a global variable's: a load of the map value
 * (BPF_PSEUDO_MAP_VALUE) that user space gives dp_config's fd before loading
 * (procfs_fuse/kernel/bytecode.py), so no event pays a lookup or a NULL test. */
static __always_inline struct dp_config *dp_the_config(void)
{
	return (struct dp_config *)bpf_pseudo_fd(2, DP_MAP_VALUE_PLACEHOLDER);
}

/* 1 if the flow, at device dev (0: none), passes the filters in dp_config. */
static __always_inline int dp_wanted(const struct dp_flow_key *key, void *dev)
{
	struct dp_config *c = dp_the_config();
	return dp_passes(c, key) && dp_dev_passes(c, dev) == 1;
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
	for (int i = 0; i < DP_KEY_WORDS; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

/* Fibonacci hashing: h times 2^64 / golden ratio, whose top bits every bit
 * of h moves (a device's address has its low bits 0). */
static __always_inline __u64 dp_mix(__u64 h)
{
	return h * 0x9e3779b97f4a7c15ull;
}

/* Slot `choice` (0 or 1) of the two a flow of mixed words (dp_slot_mix) may
 * hold: the top DP_SLOT_BITS bits, then the next ones. */
#define DP_SLOT_INDEX(mixed, choice) \
	((__u32)((mixed) >> (64 - ((choice) + 1) * DP_SLOT_BITS)) & ((1 << DP_SLOT_BITS) - 1))

static __always_inline __u64 dp_slot_mix(const struct dp_flow_key *key)
{
	const __u64 *word = (const __u64 *)key;
	__u64 h = 0;
#pragma unroll
	for (int i = 0; i < DP_KEY_WORDS; i++)
		h ^= word[i];
	return dp_mix(h);
}

/* Counts one sighting of key's flow at stage; returns the index of the flow's
 * slot, or DP_MEMO_NO_SLOT if it is counted in dp_flows. */
static __always_inline __u32 dp_bump(struct dp_flow_key *key, int stage)
{
	/* A flow's own slot on this CPU costs an array access; a hash table
	 * lookup costs some 40 ns, and a flow counted there gets no memo. The
	 * first flow to find one of its two slots empty keeps it until clear:
	 * its counts never move, so a read never misses them. With n slots
	 * held, a new flow finds both its slots taken some (n/256)^2 of the
	 * time, where one slot would be taken n/256 of it. */
	__u64 mixed = dp_slot_mix(key);
#pragma unroll
	for (int choice = 0; choice < DP_SLOT_CHOICES; choice++) {
		__u32 index = DP_SLOT_INDEX(mixed, choice);
		struct dp_slot *slot = dp_slots.lookup(&index);
		if (!slot)
			continue;
		if (slot->dp_key.dp_family == 0) {
			/* counts that raced a clear into a free slot are not this flow's */
			__builtin_memset(&slot->dp_counts, 0, sizeof(slot->dp_counts));
			slot->dp_counts.dp_first_seen = bpf_ktime_get_ns();
			slot->dp_key = *key;
		}
		if (dp_same_key(&slot->dp_key, key)) {
			slot->dp_counts.dp_packets[stage] += 1;
			return index;
		}
	}
	/* lookup, then insert-if-absent: BCC's increment() leaves LRU maps empty */
	struct dp_flow_counts *counts = dp_flows.lookup(key);
	if (!counts) {
		struct dp_flow_counts fresh = {.dp_first_seen = bpf_ktime_get_ns()};
		if (dp_flows.insert(key, &fresh) == 0)
			dp_note_insert(DP_TABLE_FLOWS);
		counts = dp_flows.lookup(key);
		if (!counts)
			return DP_MEMO_NO_SLOT;
	}
	counts->dp_packets[stage] += 1;	/* per-CPU value: no atomics needed */
	return DP_MEMO_NO_SLOT;
}

/* The device a packet is counted at: dev, else skb->dev (0 for none), into
 * *dev; 0 if the device filter of c lets it pass. */
static __always_inline int dp_device(const struct dp_config *c, void *skb, void **dev)
{
#ifdef DP_NO_HOP	/* benchmarks/overhead.py: the price of the hop, by its absence */
	*dev = 0;
	return 0;
#else
	if (!*dev)
		*dev = dp_skb_dev(skb);
	return dp_dev_passes(c, *dev) == 1 ? 0 : -1;
#endif
}

/* What every counted packet ends with: key (flow words written) gets the
 * hop of dev, passes the filters of c or not, is counted at stage, and the
 * outcome goes into memo (where one was looked up for tag and ip2). */
static __always_inline int dp_count_key(const struct dp_config *c, struct dp_flow_key *key, void *dev, int stage,
					 struct dp_memo *memo, __u32 generation, __u64 tag, __u64 ip2)
{
	__u64 hop;

	dp_hop_of_dev(dev, &hop);
	((__u64 *)key)[DP_HOP_WORD] = hop;
	__u32 outcome = dp_passes(c, key) ? dp_bump(key, stage) : DP_MEMO_FILTERED;
	if (memo && generation && outcome != DP_MEMO_NO_SLOT && memo->dp_slot != DP_MEMO_BUSY) {
		/* A program of an interrupt that nests in here (netif_rx from a
		 * driver's IRQ) finds the memo invalid and busy, and leaves it. */
		memo->dp_generation = 0;
		asm volatile("" ::: "memory");
		memo->dp_slot = DP_MEMO_BUSY;
		asm volatile("" ::: "memory");
		memo->dp_tag[0] = tag;
		memo->dp_tag[1] = ip2;
		memo->dp_dev = (__u64)dev;
		memo->dp_slot = outcome;
		asm volatile("" ::: "memory");
		memo->dp_generation = generation;
	}
	return 0;
}

/* Counts one sighting of an IPv4 packet, of header words ip (dp_ipv4_read:
 * one the header filters did not leave out) at l3, at stage (DP_AT_SOCKET:
 * the socket stage of its protocol), at device dev (0: skb->dev). A packet
 * passes several stages in a row on one CPU: dp_memos remembers, per CPU and
 * device, the last such words seen there and what they led to (filtered
 * out, or a slot), so the next stage of the same packet at the same hop, or
 * the next packet of the flow, skips reading the hop, building the key, the
 * filter and the slot search. The device's address stands for its hop while
 * it lives (a device moved to another namespace meanwhile is counted at its
 * old hop until its memo is next replaced). A memo holds while
 * dp_generation stays, and never under generation 0: user space writes 0
 * before a filter change or a clear (slots change owners only on clear) and
 * a new generation after it. */
static __always_inline int dp_count_ipv4(const struct dp_config *c, void *skb, void *dev, int stage, void *l3,
					  const __u64 *ip)
{
	struct dp_flow_key key;	/* written whole by dp_key_ipv4 and the hop */
	struct dp_memo *memo = 0;	/* looked up for packets with a memo tag only */

	if (stage == DP_AT_SOCKET)
		stage = dp_socket_stage(0, (ip[1] >> 8) & 0xff);
	if (stage < 0)
		return 0;
	__u64 tag = dp_memo_tag(ip);
	__u32 generation = dp_generation_before_filter(c);	/* before the device filter too: a memo holds its outcome */
	if (dp_device(c, skb, &dev))
		return 0;
#ifndef DP_NO_MEMO
	if (tag) {
		__u32 way = dp_mix((__u64)dev) >> (64 - DP_MEMO_BITS);
		memo = dp_memos.lookup(&way);
		if (memo && generation && memo->dp_tag[0] == tag && memo->dp_tag[1] == ip[2] &&
		    memo->dp_dev == (__u64)dev && memo->dp_generation == generation) {
			__u32 index = memo->dp_slot;
			struct dp_slot *slot = index == DP_MEMO_FILTERED ? 0 : dp_slots.lookup(&index);
			if (slot)
				slot->dp_counts.dp_packets[stage] += 1;
			return 0;
		}
	}
#endif
	if (dp_key_ipv4(l3, ip, (__u64 *)&key))
		return 0;
	return dp_count_key(c, &key, dev, stage, memo, generation, tag, ip[2]);
}

/* The same for IPv6 (no memo: its addresses do not fit a tag). */
static __always_inline int dp_count_ipv6(const struct dp_config *c, void *skb, void *dev, int stage, void *l3)
{
	struct dp_flow_key key;

	__u32 generation = dp_generation_before_filter(c);
	if (dp_device(c, skb, &dev) || dp_key_ipv6(l3, (__u64 *)&key))
		return 0;
	if (stage == DP_AT_SOCKET)
		stage = dp_socket_stage(1, key.dp_protocol);
	if (stage < 0)
		return 0;
	return dp_count_key(c, &key, dev, stage, 0, generation, 0, 0);
}

/* Counts one sighting of skb at stage, at device dev (0: skb->dev; stage
 * DP_AT_SOCKET: the socket stage of its version and protocol). */
static __always_inline int dp_count(void *skb, void *dev, int stage, int l3_at)
{
	__u64 ip[3];

#ifdef DP_PARSE_ONLY	/* benchmarks/overhead.py: the price of reading the headers alone */
	__u64 words[DP_KEY_WORDS] = {};	/* zeroed: clang may read an unwritten key as anything */
	return skb && dp_parse(skb, l3_at, words) == 0 && words[4];
#endif
	struct dp_config *c = dp_the_config();
	DP_VIEW(fields, skb + DP_SKB_WINDOW_START, DP_SKB_WINDOW_LEN, DP_SKB_WINDOW_LEN);
	void *l3 = dp_l3(fields, l3_at);
	if (!l3)
		return 0;
	/* Where the IP header is at skb->data, traffic the filters leave out
	 * goes before skb->protocol is read: a packet of another protocol is
	 * never counted, so leaving it out is never wrong. */
	int filter_first = l3_at == DP_L3_AT_DATA && c->dp_active;
	int ethertype = filter_first ? 0 : dp_ethertype(fields, l3_at, l3);
	if (filter_first || ethertype == __builtin_bswap16(0x0800)) {
		DP_IPV4_VIEW(words, l3);
		int read = dp_ipv4_read(c, words, ip);
		if (read > 0)
			return 0;
		if (filter_first)
			ethertype = dp_ethertype(fields, l3_at, l3);
		if (ethertype == __builtin_bswap16(0x0800))
			return read == 0 && dp_count_ipv4(c, skb, dev, stage, l3, ip);
	}
	if (ethertype == __builtin_bswap16(0x86dd))
		return dp_count_ipv6(c, skb, dev, stage, l3);
	return 0;
}

static __always_inline void dp_ctx_read(void *ctx, int offset, void *dst, int size)
{
	if (offset >= 0)
		bpf_probe_read_kernel(dst, size, ctx + offset);
}

/* Stubs. Raw tracepoint args are the tracepoint's TP_PROTO arguments. */

/* eth_type_trans(skb, dev) sets skb->dev: at its entry, the device is its argument. */
int dp_kp_eth_type_trans(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), (void *)PT_REGS_PARM2(ctx), DP_STAGE_ETH_RECV, DP_L3_AT_DATA_ETH);
}

int dp_tp_netif_rx(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], 0, DP_STAGE_ETH_RECV, DP_L3_AT_DATA);
}

int dp_kp_napi_gro_receive(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM2(ctx), 0, DP_STAGE_GRO_RECV, DP_L3_AT_DATA);
}

int dp_tp_napi_gro_receive_entry(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], 0, DP_STAGE_GRO_RECV, DP_L3_AT_DATA);
}

/* Since 5.x the first argument is struct sk_buff **pskb. */
int dp_kp_netif_receive_skb_core(struct pt_regs *ctx)
{
	DP_VIEW(pskb, (void *)PT_REGS_PARM1(ctx), 8, 8);
	return dp_count((void *)pskb[0], 0, DP_STAGE_RECV_SKB, DP_L3_AT_DATA);
}

int dp_tp_netif_receive_skb(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], 0, DP_STAGE_RECV_SKB, DP_L3_AT_DATA);
}

int dp_kp_tcp_v4_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_TCP_V4_RCV, DP_L3_AT_NETWORK_HEADER);
}

int dp_kp_udp_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_UDP_RCV, DP_L3_AT_NETWORK_HEADER);
}

int dp_kp_tcp_v6_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_TCP_V6_RCV, DP_L3_AT_NETWORK_HEADER);
}

int dp_kp_udpv6_rcv(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_UDP_V6_RCV, DP_L3_AT_NETWORK_HEADER);
}

/* The socket stages where no kprobe runs: one cgroup_skb ingress program
 * sees every packet that found its socket (sk_filter_trim_cap, from
 * tcp_v4_rcv's socket filter and from UDP's queueing), and counts it at the
 * socket stage of its IP version and protocol. Its context is the kernel's
 * sk_buff, read like every other stage's through bpf_rdonly_cast (which is
 * why this needs DP_DIRECT_READ: such a program may not call
 * bpf_probe_read_kernel); but the IPv4 header a memo tag is made of (no
 * options, first fragment), where its packet data starts, it reads as
 * packet data: plain loads where the kernel's memory takes guarded ones
 * (the other path reads the same words). It never changes traffic: 1 (pass)
 * on every path. */
int dp_cg_socket(struct __sk_buff *ctx)
{
#ifdef DP_DIRECT_READ
	void *skb = dp_rdonly_cast(ctx, 0);
#ifndef DP_PARSE_ONLY
	const __u64 *data = (const __u64 *)(long)ctx->data;

	if (ctx->protocol == __builtin_bswap16(0x0800) && (void *)(data + 3) <= (void *)(long)ctx->data_end) {
		struct dp_config *c = dp_the_config();
		__u64 ip[3];
		int read = dp_ipv4_read(c, data, ip);
		if (read > 0)
			return 1;
		if (read == 0 && dp_memo_tag(ip)) {	/* a 20-byte header: l3 is not read */
			dp_count_ipv4(c, skb, 0, DP_AT_SOCKET, 0, ip);
			return 1;
		}
	}
#endif
	dp_count(skb, 0, DP_AT_SOCKET, DP_L3_AT_NETWORK_HEADER);
#endif
	return 1;
}

/* dev_queue_xmit(skb) and __dev_queue_xmit(skb, sb_dev) */
int dp_kp_dev_queue_xmit(struct pt_regs *ctx)
{
	return dp_count((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_QUEUE_XMIT, DP_L3_AT_NETWORK_HEADER);
}

int dp_tp_net_dev_queue(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count((void *)ctx->args[0], 0, DP_STAGE_QUEUE_XMIT, DP_L3_AT_NETWORK_HEADER);
}

/* net_dev_xmit(skb, rc, dev, len): only a successful transmit counts. The
 * device is the argument: by then a veth has moved skb->dev to its peer. */
int dp_tp_net_dev_xmit(struct bpf_raw_tracepoint_args *ctx)
{
	if ((int)ctx->args[1] != 0)
		return 0;
	return dp_count((void *)ctx->args[0], (void *)ctx->args[2], DP_STAGE_SEND_SKB, DP_L3_AT_NETWORK_HEADER);
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
	/* the hop: the socket's namespace, no device (the skb has none yet) */
	void *sk = 0;
	__u64 hop;
	dp_ctx_read(ctx, DP_RETRANS_SKADDR, &sk, sizeof(sk));
	dp_hop_of_sock(sk, &hop);
	((__u64 *)&key)[DP_HOP_WORD] = hop;
	if (dp_wanted(&key, 0))
		dp_bump(&key, DP_STAGE_RETRANS);
	return 0;
}
#endif

#ifdef DP_KFREE_SKB_SKBADDR
/* A drop: counted on its flow at its hop, and by (flow at hop, reason,
 * location). A drop of an skb without device is put at its socket's
 * namespace (the record's rx_sk on 6.11+, else skb->sk), device 0. A packet
 * that cannot be parsed is counted with an empty flow: unattributed, not lost. */
int dp_tp_kfree_skb(void *ctx)
{
	struct dp_drop_key drop = {};
	void *skb = 0, *sk = 0, *dev;
	__u64 hop;

	dp_ctx_read(ctx, DP_KFREE_SKB_SKBADDR, &skb, sizeof(skb));
	/* dp_parse writes the key only when it succeeds: else it stays all 0 */
	if (skb && dp_parse(skb, DP_L3_AT_NETWORK_HEADER, (__u64 *)&drop.dp_flow) == 0) {
		dev = dp_skb_dev(skb);
		if (dev) {
			dp_hop_of_dev(dev, &hop);
		} else {
			dp_ctx_read(ctx, DP_KFREE_SKB_RX_SK, &sk, sizeof(sk));
			if (!sk) {
				DP_VIEW(skb_sk, skb + DP_SKB_SK, 8, 8);
				sk = (void *)skb_sk[0];
			}
			dp_hop_of_sock(sk, &hop);
		}
		((__u64 *)&drop.dp_flow)[DP_HOP_WORD] = hop;
		if (!dp_wanted(&drop.dp_flow, dev))
			return 0;
		dp_bump(&drop.dp_flow, DP_STAGE_DROPPED);
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
