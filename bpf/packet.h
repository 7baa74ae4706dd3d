/* What a packet is, read from kernel memory through the running kernel's
 * offsets (-D values from BTF, see drop_packet.c): where its IP header is,
 * its flow's words, and its hop. Reads only; no map, no counting. */
#ifndef DROP_PACKET_PACKET_H
#define DROP_PACKET_PACKET_H

#define DP_AF_INET 2
#define DP_AF_INET6 10
#define DP_IPPROTO_TCP 6
#define DP_IPPROTO_UDP 17
#define DP_ETH_HLEN 14
#define DP_ETH_P_IP 0x0008	/* htons(0x0800), as skb->protocol holds it */
#define DP_ETH_P_IPV6 0xdd86	/* htons(0x86dd) */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "header fields are taken out of little-endian 64-bit words"
#endif

/* dp_view(copy, src, size, min_size): a const __u64 * through which size
 * bytes at kernel address src are read. What cannot be read reads 0. */
#ifdef DP_DIRECT_READ
/* bpf_rdonly_cast(p, 0) makes p a read-only pointer the program may load
 * from: each load is one instruction (the JIT guards it; a faulting load
 * reads 0), where bpf_probe_read_kernel is a helper call of some 20 ns and a
 * copy. BCC cannot emit a kfunc call, so this is compiled as a call to a
 * placeholder helper number that user space turns into the kfunc call before
 * loading (procfs_fuse/kernel/bytecode.py). copy is not used. */
static void *(*dp_rdonly_cast)(const void *p, __u32 btf_id) = (void *)DP_KFUNC_PLACEHOLDER;

static __always_inline const __u64 *dp_view(__u64 *copy, const void *src, int size, int min_size)
{
	return dp_rdonly_cast(src, 0);
}
#else
/* A copy into copy (on the caller's stack); min_size: what must be readable
 * when size bytes reach into an unmapped page. A failed read leaves zeros. */
static __always_inline const __u64 *dp_view(__u64 *copy, const void *src, int size, int min_size)
{
	if (bpf_probe_read_kernel(copy, size, src))
		bpf_probe_read_kernel(copy, min_size, src);
	return copy;
}
#endif
/* A field of type at byte offset of a view. */
#define DP_FIELD(view, type, offset) (*(type const *)((const __u8 *)(view) + (offset)))

/* Where the IP header is when a hook fires (enum dp_l3_at in drop_packet.h). */

/* A member of sk_buff from a view of its window (DP_SKB_WINDOW_START..): taken
 * out of its aligned 64-bit word, so members that share a word (protocol and
 * network_header do) cost one load, and under DP_DIRECT_READ every load is a
 * guarded one. */
#define DP_SKB_FIELD(window, type, member) \
	((type)(DP_FIELD(window, __u64, ((member) & ~7) - DP_SKB_WINDOW_START) >> (((member) & 7) * 8)))
#define DP_SKB_WINDOW_WORDS ((DP_SKB_WINDOW_LEN + 7) / 8)

static __always_inline const __u64 *dp_skb_window(__u64 *copy, void *skb)
{
	return dp_view(copy, skb + DP_SKB_WINDOW_START, DP_SKB_WINDOW_LEN, DP_SKB_WINDOW_LEN);
}

/* Where the IP header of the skb of that window is: 0 where it is not known
 * yet (or the skb is NULL). */
static __always_inline void *dp_l3(const __u64 *window, int l3_at)
{
	if (l3_at == DP_L3_AT_NETWORK_HEADER) {
		__u16 network_header = DP_SKB_FIELD(window, __u16, DP_SKB_NETWORK_HEADER);
		if (network_header == 0xffff)	/* not set yet */
			return 0;
		void *head = DP_SKB_FIELD(window, void *, DP_SKB_HEAD);
		return head ? head + network_header : 0;
	}
	void *data = DP_SKB_FIELD(window, void *, DP_SKB_DATA);
	return data && l3_at == DP_L3_AT_DATA_ETH ? data + DP_ETH_HLEN : data;
}

/* The ethertype (network order) of that skb, whose IP header is at l3. */
static __always_inline int dp_ethertype(const __u64 *window, int l3_at, void *l3)
{
	if (l3_at == DP_L3_AT_DATA_ETH) {
		__u64 copy[1];
		return DP_FIELD(dp_view(copy, l3 - 2, 2, 2), __u16, 0);
	}
	return DP_SKB_FIELD(window, __u16, DP_SKB_PROTOCOL);
}

/* How many segments the skb of that window carries, as the kernel's own
 * counters count them (qdisc_bstats_update, tc's "Sent", the TCP MIBs): a
 * GSO packet (one TCP or UDP hands a device, or one GRO merged) its
 * gso_segs, any other packet 1. */
_Static_assert(DP_SHINFO_GSO_SEGS == DP_SHINFO_GSO_SIZE + 2, "gso_size and gso_segs read as one word");

static __always_inline __u64 dp_segments(const __u64 *window)
{
	__u64 copy[1];
	void *shinfo = DP_SKB_FIELD(window, void *, DP_SKB_HEAD) + DP_SKB_FIELD(window, __u32, DP_SKB_END);
	const __u64 *gso = dp_view(copy, shinfo + DP_SHINFO_GSO_SIZE, 4, 4);
	__u16 size = DP_FIELD(gso, __u16, 0), segs = DP_FIELD(gso, __u16, DP_SHINFO_GSO_SEGS - DP_SHINFO_GSO_SIZE);
	return size && segs > 1 ? segs : 1;
}

/* The pointer at kernel address at (0 where it cannot be read). */
static __always_inline void *dp_pointer_at(const void *at)
{
	__u64 copy[1];
	return (void *)dp_view(copy, at, 8, 8)[0];
}

/* The hop word of a flow key (dp_netns | dp_ifindex << 32) of namespace
 * net (0: unknown) and device ifindex (0: none). */
static __always_inline __u64 dp_hop(void *net, __u32 ifindex)
{
	__u64 copy[1];
	__u32 inum = net ? DP_FIELD(dp_view(copy, net + DP_NET_INUM, 4, 4), __u32, 0) : 0;
	return inum | (__u64)ifindex << 32;
}

/* The hop word of device dev (0: none). */
static __always_inline __u64 dp_hop_of_dev(void *dev)
{
	__u64 copy[1];
	if (!dev)
		return 0;
	return dp_hop(dp_pointer_at(dev + DP_DEV_NET), DP_FIELD(dp_view(copy, dev + DP_DEV_IFINDEX, 4, 4), __u32, 0));
}

/* The hop word of socket sk (0: none): its namespace, no device. */
static __always_inline __u64 dp_hop_of_sock(void *sk)
{
	return sk ? dp_hop(dp_pointer_at(sk + DP_SK_NET), 0) : 0;
}

/* Word 4 of a flow key: ports (wire_ports: the transport header's first 4
 * bytes as loaded; to host order, source port in the low half), family,
 * protocol. */
static __always_inline __u64 dp_key_tail(__u32 wire_ports, __u64 family, __u64 protocol)
{
	__u32 swapped = __builtin_bswap32(wire_ports);
	return ((swapped >> 16) | (swapped << 16)) | (family << 32) | (protocol << 40);
}

static __always_inline int dp_has_ports(__u64 protocol)
{
	return protocol == DP_IPPROTO_TCP || protocol == DP_IPPROTO_UDP;
}

/* The first 24 bytes of the IPv4 header at l3, as 3 words: header and ports
 * in one read when there are no IP options (20 bytes where only those can be
 * read: then the third word's upper half is 0). Word 0: version..fragment;
 * 1: ttl, protocol, checksum, saddr; 2: daddr, then ports or options. */
static __always_inline const __u64 *dp_ipv4_view(__u64 *copy, void *l3)
{
	return dp_view(copy, l3, 24, 20);
}

/* The flow words (key words 0..4) of an IPv4 packet at l3 from its header
 * words ip; 0 if it is IPv4. */
static __always_inline int dp_ipv4_words(void *l3, const __u64 *ip, __u64 *key)
{
	__u64 first = ip[0], protocol = (ip[1] >> 8) & 0xff, header_len = (first & 0x0f) * 4;
	__u32 ports = 0;

	if ((first & 0xf0) != 0x40)
		return -1;
	if (dp_has_ports(protocol) && !((first >> 48) & 0xff1f)) {	/* a later fragment has none */
		if (header_len == 20) {
			ports = ip[2] >> 32;
		} else {	/* IP options: the ports lie further on */
			__u64 copy[1];
			ports = DP_FIELD(dp_view(copy, l3 + header_len, 4, 4), __u32, 0);
		}
	}
	key[0] = ip[1] >> 32;
	key[1] = 0;
	key[2] = (__u32)ip[2];
	key[3] = 0;
	key[4] = dp_key_tail(ports, DP_AF_INET, protocol);
	return 0;
}

#define DP_IPV6_HOP_BY_HOP 0
#define DP_IPV6_ROUTING 43
#define DP_IPV6_FRAGMENT 44
#define DP_IPV6_DEST_OPTIONS 60
#define DP_IPV6_EXTENSIONS 4	/* followed at most: more is no packet a host sends */

static __always_inline int dp_ipv6_extension(__u64 next)
{
	return next == DP_IPV6_HOP_BY_HOP || next == DP_IPV6_ROUTING || next == DP_IPV6_FRAGMENT ||
	       next == DP_IPV6_DEST_OPTIONS;
}

/* From IPv6 extension header `next` at l3 + 40 to the transport header: its
 * protocol; *ports: its first 4 bytes, 0 in a later fragment (it has none). */
static __always_inline __u64 dp_ipv6_transport(void *l3, __u64 next, __u32 *ports)
{
	__u32 offset = 40;
#pragma unroll
	for (int i = 0; i < DP_IPV6_EXTENSIONS; i++) {
		if (!dp_ipv6_extension(next))
			break;
		__u64 copy[1];
		const __u64 *extension = dp_view(copy, l3 + offset, 8, 8);
		__u16 fragment_offset = __builtin_bswap16(DP_FIELD(extension, __u16, 2)) & 0xfff8;
		if (next == DP_IPV6_FRAGMENT && fragment_offset) {
			*ports = 0;
			return DP_FIELD(extension, __u8, 0);
		}
		offset += next == DP_IPV6_FRAGMENT ? 8 : (DP_FIELD(extension, __u8, 1) + 1) * 8;
		next = DP_FIELD(extension, __u8, 0);
	}
	__u64 copy[1];
	*ports = DP_FIELD(dp_view(copy, l3 + offset, 4, 4), __u32, 0);
	return next;
}

/* The same for IPv6: extension headers (hop-by-hop, routing, destination
 * options, fragment) followed to the transport header, a few of them. */
static __always_inline int dp_ipv6_words(void *l3, __u64 *key)
{
	__u64 copy[6];
	const __u64 *ip = dp_view(copy, l3, 44, 40);
	__u64 first = ip[0];
	if ((first & 0xf0) != 0x60)
		return -1;
	__u64 protocol = (first >> 48) & 0xff;	/* next header */
	__u32 ports = DP_FIELD(ip, __u32, 40);
	key[0] = ip[1];
	key[1] = ip[2];
	key[2] = ip[3];
	key[3] = ip[4];
	if (dp_ipv6_extension(protocol))
		protocol = dp_ipv6_transport(l3, protocol, &ports);
	key[4] = dp_key_tail(dp_has_ports(protocol) ? ports : 0, DP_AF_INET6, protocol);
	return 0;
}

/* The flow words (key words 0..4) of the skb of that window, whose IP
 * header is where l3_at says; 0 if it is an IP packet. Reads only what the
 * key needs. */
static __always_inline int dp_flow_words(const __u64 *window, int l3_at, __u64 *key)
{
	__u64 ip_copy[3];
	void *l3 = dp_l3(window, l3_at);
	int ethertype = l3 ? dp_ethertype(window, l3_at, l3) : -1;

	if (ethertype == DP_ETH_P_IP) {
		const __u64 *words = dp_ipv4_view(ip_copy, l3);
		__u64 ip[3] = {words[0], words[1], words[2]};
		return dp_ipv4_words(l3, ip, key);
	}
	if (ethertype == DP_ETH_P_IPV6)
		return dp_ipv6_words(l3, key);
	return -1;
}

#endif
