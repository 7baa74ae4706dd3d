/* drop-packet: per-flow packet counters at each stage of the packet path,
 * and per-flow drops by reason and location.
 *
 * Compiled by BCC with -I<this dir> and these -D values from user space
 * (procfs_fuse/drop_packet/capture/activation.py):
 *   DP_SKB_HEAD, DP_SKB_DATA, DP_SKB_NETWORK_HEADER, DP_SKB_PROTOCOL,
 *   DP_SKB_DEV, DP_SKB_SK, DP_DEV_IFINDEX, DP_DEV_NET, DP_DEV_NAME,
 *   DP_NET_INUM, DP_SK_NET: offsets of kernel struct members in the running
 *       kernel (from BTF; the header tree BCC compiles against may be another
 *       kernel's), and DP_SKB_WINDOW_START, DP_SKB_WINDOW_LEN: the bytes that
 *       span the sk_buff members read together;
 *   DP_DIRECT_READ, DP_KFUNC_PLACEHOLDER: set when the kernel lets a program
 *       load kernel memory directly (packet.h dp_view);
 *   DP_MAP_VALUE_PLACEHOLDER: see dp_the_config;
 *   DP_MAX_FLOWS, DP_MAX_DROPS: capacities of the two tables;
 *   DP_KFREE_SKB_*, DP_RETRANS_*: field offsets in those tracepoints' records
 *       (from their tracefs format; -1 for a field this kernel lacks; not
 *       defined at all when the tracepoint is missing);
 *   DP_SKB_NFCT, DP_CT_*, DP_MAX_NATS: conntrack's offsets and constants
 *       (capture/conntrack.py), to follow flows through NAT; not defined
 *       where the kernel has no conntrack loaded.
 *
 * ONE counting path: every program finds its packet's flow words, hop, stage
 * and count, and calls dp_count_flow, which applies the filters, counts in
 * the flow's slot or table entry, and keeps the memo. The drop and
 * retransmission programs add only their own dimension (the drop's reason and
 * location; the socket's hop). programs.h holds the programs themselves. */
#include <uapi/linux/ptrace.h>	/* struct pt_regs for the kprobe programs */
#include "drop_packet.h"
#include "packet.h"

#define DP_AT_SOCKET -1	/* a stage argument: the socket stage of the packet's version and protocol */

/* Per CPU only what is small and hot (slots, memos): a per-CPU table holds a
 * copy of every entry's value for every possible CPU (16,384 flows: 3 MB on 2
 * CPUs, 403 MB on 256) and every read copies them all. The flow and drop
 * tables are shared, counted with atomic adds, and grow with flows alone. */
BPF_TABLE("lru_hash", struct dp_flow_key, struct dp_flow_counts, dp_flows, DP_MAX_FLOWS);
BPF_PERCPU_ARRAY(dp_slots, struct dp_slot, 1 << DP_SLOT_BITS);
BPF_TABLE("lru_hash", struct dp_drop_key, __u64, dp_drops, DP_MAX_DROPS);
BPF_ARRAY(dp_config, struct dp_config, 1);
BPF_PERCPU_ARRAY(dp_memos, struct dp_memo, DP_MEMO_WAYS);
BPF_ARRAY(dp_inserted, __u64, DP_NR_TABLES);
#ifdef DP_CT_STATUS
BPF_TABLE("lru_hash", struct dp_nat_key, struct dp_nat, dp_nats, DP_MAX_NATS);
#endif

_Static_assert(__builtin_offsetof(struct dp_flow_key, dp_sport) == 32 &&
	       __builtin_offsetof(struct dp_flow_key, dp_dport) == 34 &&
	       __builtin_offsetof(struct dp_flow_key, dp_family) == 36 &&
	       __builtin_offsetof(struct dp_flow_key, dp_protocol) == 37 &&
	       __builtin_offsetof(struct dp_flow_key, dp_netns) == 8 * DP_HOP_WORD &&
	       __builtin_offsetof(struct dp_flow_key, dp_ifindex) == 8 * DP_HOP_WORD + 4 &&
	       sizeof(struct dp_flow_key) == 8 * DP_KEY_WORDS, "dp_flow_key layout");

/* dp_config's one entry: the filters. Its address is a constant in the
 * program, as libbpf makes a global variable's: a load of the map value
 * (BPF_PSEUDO_MAP_VALUE) that user space gives dp_config's fd before loading
 * (procfs_fuse/kernel/bytecode.py), so no event pays a lookup or a NULL test. */
static __always_inline struct dp_config *dp_the_config(void)
{
	return (struct dp_config *)bpf_pseudo_fd(2, DP_MAP_VALUE_PLACEHOLDER);
}

/* c's generation, read before its filters (see capture/config.py): a memo
 * made under it holds the outcome of those filters. */
static __always_inline __u32 dp_generation_before_filter(const struct dp_config *c)
{
	__u32 generation = c->dp_generation;
	asm volatile("" ::: "memory");
	return generation;
}

/* 1 once a translation is recorded (until clear): then a packet's header
 * alone no longer says which flow it is, nor whether the filters want it. */
static __always_inline int dp_nats_recorded(void)
{
#ifdef DP_CT_STATUS
	int table = DP_TABLE_NATS;
	__u64 *n = dp_inserted.lookup(&table);
	return n && *n;
#else
	return 0;
#endif
}

/* The conntrack entry the skb of window carries (0: none, or flows are not
 * followed through NAT here). */
static __always_inline __u64 dp_conntrack_of(const __u64 *window)
{
#ifdef DP_CT_STATUS
	return window ? DP_SKB_FIELD(window, __u64, DP_SKB_NFCT) & ~7ull : 0;	/* low 3 bits: ip_conntrack_info */
#else
	return 0;
#endif
}

/* 1 if the flow passes the key filters of c. */
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

/* 1 if the device name filter of c lets a packet at dev (0: none) pass. */
static __always_inline int dp_dev_passes(const struct dp_config *c, void *dev)
{
	if (!c->dp_dev_active)
		return 1;
	if (!dev)
		return 0;
	__u64 copy[2];
	const __u64 *name = dp_view(copy, dev + DP_DEV_NAME, 16, 16);
	return name[0] == c->dp_dev_name[0] && name[1] == c->dp_dev_name[1];
}

/* 1 if IPv4 header word 0 is of a header without options, first fragment:
 * then header words 1 and 2 hold the protocol, addresses and ports. */
static __always_inline int dp_ipv4_plain(__u64 word0)
{
	return (word0 & 0xff1f0000000000ffull) == 0x45;
}

/* The IPv4 header words of view words (dp_ipv4_view) into ip, read in the
 * order that lets the filters of c leave traffic out on the fewest loads:
 * on a header without options, first fragment, they are tried on the words
 * as they are (dp_ipv4_mask), daddr and ports first, so traffic they leave
 * out costs the reading of its headers and little more (but see
 * dp_header_may_mislead). Returns 1 if the
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

static __always_inline void dp_note_insert(int table)
{
	__u64 *n = dp_inserted.lookup(&table);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* A flow's dp_flows entry, made if absent (0: none could be
 * made). Lookup, then insert-if-absent: BCC's increment() leaves LRU maps
 * empty. (BCC refuses map calls in a macro and a map as an argument, so this
 * and dp_drop_entry are the one lookup-or-insert of each table.) */
static __always_inline struct dp_flow_counts *dp_flow_entry(struct dp_flow_key *key)
{
	struct dp_flow_counts *counts = dp_flows.lookup(key);
	if (!counts) {
		struct dp_flow_counts fresh = {.dp_first_seen = bpf_ktime_get_ns()};
		if (dp_flows.insert(key, &fresh) == 0)
			dp_note_insert(DP_TABLE_FLOWS);
		counts = dp_flows.lookup(key);
	}
	return counts;
}

static __always_inline __u64 *dp_drop_entry(struct dp_drop_key *key)
{
	__u64 *count = dp_drops.lookup(key);
	if (!count) {
		__u64 zero = 0;
		if (dp_drops.insert(key, &zero) == 0)
			dp_note_insert(DP_TABLE_DROPS);
		count = dp_drops.lookup(key);
	}
	return count;
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

/* Adds n at stage to key's flow; returns the index of the flow's slot, or
 * DP_MEMO_NO_SLOT if it is counted in dp_flows. */
static __always_inline __u32 dp_add(struct dp_flow_key *key, int stage, __u64 n)
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
			slot->dp_counts.dp_packets[stage] += n;
			return index;
		}
	}
	struct dp_flow_counts *counts = dp_flow_entry(key);
	if (counts)	/* shared by every CPU */
		__sync_fetch_and_add(&counts->dp_packets[stage], n);
	return DP_MEMO_NO_SLOT;
}

/* A packet passes several stages in a row on one CPU: dp_memos remembers,
 * per CPU and device, the last IPv4 header words (a tag of protocol and
 * saddr, and daddr with ports) seen there and what they led to (filtered
 * out, or a slot), so the next stage of the same packet at the same hop, or
 * the next packet of the flow, skips reading the hop, building the key, the
 * filters and the slot search. The device's address stands for its hop while
 * it lives (a device moved to another namespace meanwhile is counted at its
 * old hop until its memo is next replaced). A memo holds while
 * dp_generation and dp_nat_epoch stay, and never under generation 0: user
 * space writes 0 before a filter change or a clear (slots change owners only
 * on clear) and a new generation after it. */
static __always_inline struct dp_memo *dp_memo_of(void *dev)
{
	__u32 way = dp_mix((__u64)dev) >> (64 - DP_MEMO_BITS);
	return dp_memos.lookup(&way);
}

/* 1 if memo holds the outcome of a packet of memo tag and daddr/ports
 * words at dev, carrying conntrack entry ct (0: none), under generation.
 * A packet with an entry takes only a memo of that entry: a translated
 * header handed to another flow is caught where its entry translates it.
 * One without takes any: its header decides through the translations
 * recorded, which the memo's entry recorded (or the epoch moved). So where
 * a veth scrubbed the entry (net_dev_xmit runs after), a packet's SEND_SKB
 * takes the memo its QUEUE_XMIT made instead of replacing it every packet. */
static __always_inline int dp_memo_holds(const struct dp_memo *memo, __u32 generation, __u64 tag, __u64 words,
					  void *dev, __u64 ct)
{
	return memo && generation && memo->dp_tag[0] == tag && memo->dp_tag[1] == words &&
	       memo->dp_dev == (__u64)dev && memo->dp_generation == generation && (memo->dp_ct == ct || !ct) &&
	       memo->dp_nat_epoch == dp_the_config()->dp_nat_epoch;
}

static __always_inline void dp_memo_remember(struct dp_memo *memo, __u32 generation, __u32 nat_epoch, __u64 tag,
					      __u64 words, void *dev, __u64 ct, __u32 outcome)
{
	if (!memo || !generation || outcome == DP_MEMO_NO_SLOT || memo->dp_slot == DP_MEMO_BUSY)
		return;
	/* A program of an interrupt that nests in here (netif_rx from a
	 * driver's IRQ) finds the memo invalid and busy, and leaves it. */
	memo->dp_generation = 0;
	asm volatile("" ::: "memory");
	memo->dp_slot = DP_MEMO_BUSY;
	asm volatile("" ::: "memory");
	memo->dp_tag[0] = tag;
	memo->dp_tag[1] = words;
	memo->dp_dev = (__u64)dev;
	memo->dp_nat_epoch = nat_epoch;
	memo->dp_ct = ct;
	memo->dp_slot = outcome;
	asm volatile("" ::: "memory");
	memo->dp_generation = generation;
}

#ifdef DP_CT_STATUS
/* An address of a conntrack tuple view as two key words (32-bit loads: the
 * tuple's addresses are 4-aligned). */
static __always_inline void dp_tuple_address(const __u64 *tuple, int at, __u64 *words)
{
	words[0] = DP_FIELD(tuple, __u32, at) | (__u64)DP_FIELD(tuple, __u32, at + 4) << 32;
	words[1] = DP_FIELD(tuple, __u32, at + 8) | (__u64)DP_FIELD(tuple, __u32, at + 12) << 32;
}

/* The conntrack entry of the skb of window where it translates (NAT status
 * bits), else 0. */
static __always_inline void *dp_nat_entry(const __u64 *window)
{
	__u64 copy[1];
	void *ct = (void *)dp_conntrack_of(window);
	return ct && (DP_FIELD(dp_view(copy, ct + DP_CT_STATUS, 8, 8), __u64, 0) & DP_CT_NAT_MASK) ? ct : 0;
}

/* Where the skb of window carries a conntrack entry that translated it (and
 * the tuple of the packet's direction, as that direction's sender sent it,
 * differs from the header's words): those words into sent. 1 if so. */
static __always_inline int dp_conntrack_sent(const __u64 *window, const __u64 *words, __u64 *sent)
{
	void *ct = dp_nat_entry(window);
	if (!ct)
		return 0;
	__u64 nfct = DP_SKB_FIELD(window, __u64, DP_SKB_NFCT);
	__u64 tuple_copy[(DP_CT_TUPLE_LEN + 7) / 8];
	int at = DP_CT_TUPLE + ((nfct & 7) >= DP_CT_IS_REPLY ? DP_CT_TUPLE_STRIDE : 0);
	const __u64 *tuple = dp_view(tuple_copy, ct + at, DP_CT_TUPLE_LEN, DP_CT_TUPLE_LEN);
	__u64 protocol = DP_FIELD(tuple, __u8, DP_CT_PROTONUM);
	__u32 ports = DP_FIELD(tuple, __u16, DP_CT_SRC_PORT) | (__u32)DP_FIELD(tuple, __u16, DP_CT_DST_PORT) << 16;
	dp_tuple_address(tuple, DP_CT_SRC_ADDR, sent);
	dp_tuple_address(tuple, DP_CT_DST_ADDR, sent + 2);
	sent[4] = dp_key_tail(dp_has_ports(protocol) ? ports : 0, DP_FIELD(tuple, __u16, DP_CT_L3NUM), protocol);
	int differs = 0;
#pragma unroll
	for (int i = 0; i < DP_HOP_WORD; i++)
		differs |= sent[i] != words[i];
	return differs;
}

/* Records that words (as translated) were sent as sent, first seen at hop.
 * A translated tuple another flow had before (a port a masquerade hands out
 * again once the first flow's conntrack entry is gone) is the newest's. */
static __always_inline void dp_note_nat(const __u64 *words, const __u64 *sent, __u64 hop)
{
	struct dp_nat *known = dp_nats.lookup((struct dp_nat_key *)words);
	int same = known != 0;
#pragma unroll
	for (int i = 0; known && i < DP_HOP_WORD; i++)
		same &= known->dp_sent[i] == sent[i];
	if (same)	/* looked up first: an LRU insert takes a node even when it fails */
		return;
	struct dp_nat nat = {.dp_hop = hop, .dp_first_seen = bpf_ktime_get_ns()};
	__builtin_memcpy(nat.dp_sent, sent, sizeof(nat.dp_sent));
	if (known) {
		dp_nats.update((struct dp_nat_key *)words, &nat);
		/* a memo of this header names the old flow's slot */
		__sync_fetch_and_add(&dp_the_config()->dp_nat_epoch, 1);
	}
	else if (dp_nats.insert((struct dp_nat_key *)words, &nat) == 0)
		dp_note_insert(DP_TABLE_NATS);
}

#define DP_NAT_CHAIN 2	/* translations followed back in a row: a DNAT, then an SNAT further on */

/* The flow words of key (0..4: its header's) turned into the words its
 * sender sent: by the skb's conntrack entry where it translated the packet
 * (recorded for the hops after), and by the translations recorded at earlier
 * hops. 1 where they changed. */
static __always_inline int dp_follow_nat(const __u64 *window, __u64 *key, __u64 hop)
{
	__u64 sent[DP_HOP_WORD];
	int changed = window && dp_conntrack_sent(window, key, sent);
	if (changed) {
		dp_note_nat(key, sent, hop);
		__builtin_memcpy(key, sent, sizeof(sent));
	}
	if (!dp_nats_recorded())
		return changed;
#pragma unroll
	for (int i = 0; i < DP_NAT_CHAIN; i++) {
		struct dp_nat *nat = dp_nats.lookup((struct dp_nat_key *)key);
		if (!nat)
			break;
		__builtin_memcpy(key, nat->dp_sent, sizeof(nat->dp_sent));
		changed = 1;
	}
	return changed;
}
#endif

/* 1 where the filters' verdict on a packet's header may not be theirs on
 * its flow as sent: a translation is recorded (the header may be a
 * translated flow's), or the packet's own conntrack entry translates it. So
 * traffic the filters leave out pays for following only where NAT is. */
static __always_inline int dp_header_may_mislead(const __u64 *window)
{
#ifdef DP_CT_STATUS
	return dp_nats_recorded() || dp_nat_entry(window);
#else
	return 0;
#endif
}

/* THE counting path: a flow (key words 0..4 written) at hop (its word) on
 * device dev (0: none) seen at stage: as many segments as the skb of window
 * carries (dp_segments), or n where window is 0. The filters of c decide,
 * before anything else is read; the flow's slot or table entry counts; the
 * outcome goes into memo, where one was looked up (for a packet of memo tag
 * and daddr/ports words, under generation). A translated flow counts as its
 * sender sent it (dp_follow_nat), and passes the filters as sent or as
 * translated. Returns how many it counted: 0 where the filters left it out. */
static __always_inline __u64 dp_count_flow(const struct dp_config *c, struct dp_flow_key *key, __u64 hop, void *dev,
					    int stage, const __u64 *window, __u64 n, struct dp_memo *memo,
					    __u32 generation, __u64 tag, __u64 words)
{
	__u32 nat_epoch = c->dp_nat_epoch;	/* before following: a replacement below outdates the memo */
	asm volatile("" ::: "memory");
	((__u64 *)key)[DP_HOP_WORD] = hop;
	int wanted = dp_passes(c, key);
#ifdef DP_CT_STATUS
	if (dp_follow_nat(window, (__u64 *)key, hop))
		wanted |= dp_passes(c, key);
#endif
	wanted = wanted && dp_dev_passes(c, dev);
	__u64 counted = wanted ? (window ? dp_segments(window) : n) : 0;
	__u32 outcome = wanted ? dp_add(key, stage, counted) : DP_MEMO_FILTERED;
	dp_memo_remember(memo, generation, nat_epoch, tag, words, dev, dp_conntrack_of(window), outcome);
	return counted;
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

/* dp_memos' tag for IPv4 header words: protocol and saddr, where the words
 * alone make the key (dp_ipv4_plain: daddr and ports are word 2); else 0. */
static __always_inline __u64 dp_memo_tag(const __u64 *ip)
{
	return dp_ipv4_plain(ip[0]) ? ip[1] & 0xffffffff0000ff00ull : 0;
}

/* One sighting of an IPv4 packet of header words ip (dp_ipv4_read: one the
 * header filters did not leave out) at l3, at stage (DP_AT_SOCKET: the
 * socket stage of its protocol), at device dev (0: skb->dev); window: the
 * view of its skb's window. */
static __always_inline int dp_count_ipv4(const struct dp_config *c, void *skb, const __u64 *window, void *dev,
					  int stage, void *l3, const __u64 *ip)
{
	struct dp_flow_key key;	/* words 0..4 written by dp_ipv4_words, 5 by dp_count_flow */
	struct dp_memo *memo = 0;	/* looked up for packets with a memo tag only */
	__u64 tag = dp_memo_tag(ip);
	__u32 generation = dp_generation_before_filter(c);

	if (stage == DP_AT_SOCKET)
		stage = dp_socket_stage(0, (ip[1] >> 8) & 0xff);
	if (stage < 0)
		return 0;
	if (!dev)
		dev = dp_pointer_at(skb + DP_SKB_DEV);
	if (tag) {
		memo = dp_memo_of(dev);
		if (dp_memo_holds(memo, generation, tag, ip[2], dev, dp_conntrack_of(window))) {
			__u32 index = memo->dp_slot;
			struct dp_slot *slot = index == DP_MEMO_FILTERED ? 0 : dp_slots.lookup(&index);
			if (slot)
				slot->dp_counts.dp_packets[stage] += dp_segments(window);
			return 0;
		}
	}
	if (dp_ipv4_words(l3, ip, (__u64 *)&key))
		return 0;
	return dp_count_flow(c, &key, dp_hop_of_dev(dev), dev, stage, window, 1, memo, generation, tag, ip[2]);
}

/* The same for IPv6 (no memo: its addresses do not fit a tag). */
static __always_inline int dp_count_ipv6(const struct dp_config *c, void *skb, const __u64 *window, void *dev,
					  int stage, void *l3)
{
	struct dp_flow_key key;

	__u32 generation = dp_generation_before_filter(c);
	if (dp_ipv6_words(l3, (__u64 *)&key))
		return 0;
	if (stage == DP_AT_SOCKET)
		stage = dp_socket_stage(1, key.dp_protocol);
	if (stage < 0)
		return 0;
	if (!dev)
		dev = dp_pointer_at(skb + DP_SKB_DEV);
	return dp_count_flow(c, &key, dp_hop_of_dev(dev), dev, stage, window, 1, 0, generation, 0, 0);
}

/* One sighting of skb at stage (DP_AT_SOCKET: the socket stage of its
 * version and protocol), at device dev (0: skb->dev), its IP header where
 * l3_at says. */
static __always_inline int dp_count_skb(void *skb, void *dev, int stage, int l3_at)
{
	__u64 window_copy[DP_SKB_WINDOW_WORDS], ip_copy[3], ip[3];
	struct dp_config *c = dp_the_config();
	const __u64 *window = dp_skb_window(window_copy, skb);
	void *l3 = dp_l3(window, l3_at);
	if (!l3)
		return 0;
	/* Where the IP header is at skb->data, traffic the filters leave out
	 * goes before skb->protocol is read: a packet of another protocol is
	 * never counted, so leaving it out is never wrong. */
	int filter_first = l3_at == DP_L3_AT_DATA && c->dp_active;
	int ethertype = filter_first ? 0 : dp_ethertype(window, l3_at, l3);
	if (filter_first || ethertype == DP_ETH_P_IP) {
		const __u64 *words = dp_ipv4_view(ip_copy, l3);
		int read = dp_ipv4_read(c, words, ip);
		if (read > 0) {
			if (!dp_header_may_mislead(window))
				return 0;
			ip[1] = words[1];	/* its flow as sent decides */
			ip[2] = words[2];
			read = 0;
		}
		if (filter_first)
			ethertype = dp_ethertype(window, l3_at, l3);
		if (ethertype == DP_ETH_P_IP)
			return read == 0 && dp_count_ipv4(c, skb, window, dev, stage, l3, ip);
	}
	if (ethertype == DP_ETH_P_IPV6)
		return dp_count_ipv6(c, skb, window, dev, stage, l3);
	return 0;
}

/* The socket stages on cgroup_skb ingress (see programs.h): the kernel's
 * sk_buff is read like every other stage's through bpf_rdonly_cast (such a
 * program may not call bpf_probe_read_kernel); but an IPv4 header without
 * options, first fragment, where its packet data starts, is read as packet
 * data: plain loads where the kernel's memory takes guarded ones. */
static __always_inline void dp_count_at_socket(struct __sk_buff *ctx)
{
#ifdef DP_DIRECT_READ
	void *skb = dp_rdonly_cast(ctx, 0);
	const __u64 *data = (const __u64 *)(long)ctx->data;

	if (ctx->protocol == DP_ETH_P_IP && (void *)(data + 3) <= (void *)(long)ctx->data_end) {
		struct dp_config *c = dp_the_config();
		__u64 ip[3], unused[DP_SKB_WINDOW_WORDS];
		const __u64 *window = dp_skb_window(unused, skb);
		int read = dp_ipv4_read(c, data, ip);
		if (read > 0) {
			if (!dp_header_may_mislead(window))
				return;
			ip[1] = data[1];	/* its flow as sent decides */
			ip[2] = data[2];
			read = 0;
		}
		if (read == 0 && dp_memo_tag(ip)) {	/* a 20-byte header: l3 is not read */
			dp_count_ipv4(c, skb, window, 0, DP_AT_SOCKET, 0, ip);
			return;
		}
	}
	dp_count_skb(skb, 0, DP_AT_SOCKET, DP_L3_AT_NETWORK_HEADER);
#endif
}

static __always_inline void dp_record_read(void *ctx, int offset, void *dst, int size)
{
	if (offset >= 0)
		bpf_probe_read_kernel(dst, size, ctx + offset);
}

#ifdef DP_RETRANS_SPORT
/* A retransmission (tcp:tcp_retransmit_skb's record ctx): the skb is still
 * in the write queue, without IP header, so the flow comes from the record's
 * address fields, the hop from its socket (its namespace, no device). It
 * counts the segments TCP counted in TcpRetransSegs (tcp_skb_pcount), and
 * only a retransmission that was sent: where the event has an err field
 * (6.18 here, not 6.1) it fires for failed ones too (TcpExtTCPRetransFail). */
static __always_inline void dp_count_retransmit(void *ctx)
{
	struct dp_flow_key key = {};
	__u16 family = DP_AF_INET, segments = 1;
	int err = 0;
	void *sk = 0, *skb = 0;
	__u64 copy[1];

	dp_record_read(ctx, DP_RETRANS_ERR, &err, 4);
	if (err)
		return;
	dp_record_read(ctx, DP_RETRANS_FAMILY, &family, 2);
	dp_record_read(ctx, DP_RETRANS_SPORT, &key.dp_sport, 2);
	dp_record_read(ctx, DP_RETRANS_DPORT, &key.dp_dport, 2);
	if (family == DP_AF_INET6) {
		dp_record_read(ctx, DP_RETRANS_SADDR_V6, key.dp_saddr, 16);
		dp_record_read(ctx, DP_RETRANS_DADDR_V6, key.dp_daddr, 16);
	}
	/* A dual-stack (AF_INET6) socket's IPv4 peer (::ffff:a.b.c.d): its
	 * packets are IPv4, so its flow is; the record's IPv4 fields hold it. */
	const __u64 *daddr = (const __u64 *)key.dp_daddr;
	if (family == DP_AF_INET6 && daddr[0] == 0 && (__u32)daddr[1] == 0xffff0000) {
		__builtin_memset(key.dp_saddr, 0, sizeof(key.dp_saddr));
		__builtin_memset(key.dp_daddr, 0, sizeof(key.dp_daddr));
		family = DP_AF_INET;
	}
	if (family != DP_AF_INET6) {
		dp_record_read(ctx, DP_RETRANS_SADDR, key.dp_saddr, 4);
		dp_record_read(ctx, DP_RETRANS_DADDR, key.dp_daddr, 4);
	}
	key.dp_family = family;
	key.dp_protocol = DP_IPPROTO_TCP;
	dp_record_read(ctx, DP_RETRANS_SKADDR, &sk, sizeof(sk));
	dp_record_read(ctx, DP_RETRANS_SKBADDR, &skb, sizeof(skb));
	if (skb)
		segments = DP_FIELD(dp_view(copy, skb + DP_SKB_TCP_GSO_SEGS, 2, 2), __u16, 0);
	dp_count_flow(dp_the_config(), &key, dp_hop_of_sock(sk), 0, DP_STAGE_RETRANS, 0, segments ? segments : 1,
		      0, 0, 0, 0);
}
#endif

#ifdef DP_KFREE_SKB_SKBADDR
/* A drop (skb:kfree_skb's record ctx): counted on its flow at its hop, and
 * by (flow at hop, reason, location). A drop of an skb without device is
 * put at its socket's namespace (the record's rx_sk on 6.11+, else skb->sk),
 * device 0. A packet that cannot be parsed is counted with an empty flow:
 * unattributed, not lost, whatever the filters. */
static __always_inline void dp_count_drop(void *ctx)
{
	struct dp_drop_key drop = {};
	__u64 window_copy[DP_SKB_WINDOW_WORDS], segments = 0;	/* 0 until counted on a flow */
	const __u64 *window = 0;
	void *skb = 0, *sk = 0;

	dp_record_read(ctx, DP_KFREE_SKB_SKBADDR, &skb, sizeof(skb));
	if (skb)
		window = dp_skb_window(window_copy, skb);
	/* dp_flow_words writes the key only when it succeeds: else it stays all 0 */
	if (window && dp_flow_words(window, DP_L3_AT_NETWORK_HEADER, (__u64 *)&drop.dp_flow) == 0) {
		void *dev = dp_pointer_at(skb + DP_SKB_DEV);
		if (!dev) {
			dp_record_read(ctx, DP_KFREE_SKB_RX_SK, &sk, sizeof(sk));
			if (!sk)
				sk = dp_pointer_at(skb + DP_SKB_SK);
		}
		__u64 hop = dev ? dp_hop_of_dev(dev) : dp_hop_of_sock(sk);
		segments = dp_count_flow(dp_the_config(), &drop.dp_flow, hop, dev, DP_STAGE_DROPPED, window, 1, 0, 0, 0, 0);
		if (!segments)
			return;
	}
	dp_record_read(ctx, DP_KFREE_SKB_LOCATION, &drop.dp_location, 8);
	dp_record_read(ctx, DP_KFREE_SKB_REASON, &drop.dp_reason, 4);
	__u64 *count = dp_drop_entry(&drop);
	if (count)	/* an unattributed packet's segments are read here */
		__sync_fetch_and_add(count, segments ? segments : window ? dp_segments(window) : 1);
}
#endif

#include "programs.h"
