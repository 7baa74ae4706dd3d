/* The benchmark's reference "reading headers only": the product's programs
 * (bpf/programs.h) on the product's packet reading (bpf/packet.h), each
 * stage finding its packet's flow words and nothing more: no filter, no
 * hop, no count. What every stage pays before counting starts. The UDP flood
 * it runs under has no retransmission and no drop: those programs return. */
#include <uapi/linux/ptrace.h>
#include "drop_packet.h"
#include "packet.h"

BPF_ARRAY(dp_config, struct dp_config, 1);	/* the product's program is patched with its fd */

static __always_inline int dp_count_skb(void *skb, void *dev, int stage, int l3_at)
{
	__u64 words[DP_KEY_WORDS] = {}, window_copy[DP_SKB_WINDOW_WORDS];	/* zeroed: clang may read an unwritten key as anything */
	return skb && dp_flow_words(dp_skb_window(window_copy, skb), l3_at, words) == 0 && words[4];
}

static __always_inline void dp_count_at_socket(struct __sk_buff *ctx)
{
#ifdef DP_DIRECT_READ
	dp_count_skb(dp_rdonly_cast(ctx, 0), 0, 0, DP_L3_AT_NETWORK_HEADER);
#endif
}

static __always_inline void dp_count_retransmit(void *ctx)
{
}

static __always_inline void dp_count_drop(void *ctx)
{
}

#include "programs.h"
