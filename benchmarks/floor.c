/* The benchmark's floor: a program that does nothing on each attach kind an
 * activation uses, or (with -DDP_ADDS=N) only N register additions, four
 * chains, no memory read: what the method charges for a few ns of plain work. */
#include <uapi/linux/ptrace.h>

#ifndef DP_ADDS
#define DP_ADDS 0
#endif

static __always_inline void dp_work(void)
{
	__u64 x0 = 0, x1 = 0, x2 = 0, x3 = 0;
#pragma unroll
	for (int i = 0; i < DP_ADDS; i += 4) {
		asm volatile("%0 += 1" : "+r"(x0));
		asm volatile("%0 += 1" : "+r"(x1));
		asm volatile("%0 += 1" : "+r"(x2));
		asm volatile("%0 += 1" : "+r"(x3));
	}
}

int dp_floor_kprobe(struct pt_regs *ctx) { dp_work(); return 0; }
int dp_floor_tracepoint(void *ctx) { dp_work(); return 0; }
int dp_floor_raw_tracepoint(struct bpf_raw_tracepoint_args *ctx) { dp_work(); return 0; }
int dp_floor_cgroup_skb(struct __sk_buff *ctx) { dp_work(); return 1; }	/* 1: pass */
