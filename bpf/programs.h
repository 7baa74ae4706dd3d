/* The programs: one per hook of capture/stages.py's candidates, each one
 * call of the counting path that drop_packet.c (or a benchmark's reference
 * build) defines: dp_count_skb, dp_count_at_socket, dp_count_retransmit,
 * dp_count_drop. User space attaches only the programs its hook plan chose,
 * and user space compiles only the programs of hooks this kernel has
 * (DP_WANT_<program>; capture/activation.py): each one is some 0.1 s of
 * BCC's compile. Raw tracepoint args are the tracepoint's TP_PROTO arguments. */

/* eth_type_trans(skb, dev) sets skb->dev: at its entry, the device is its argument. */
#ifdef DP_WANT_dp_kp_eth_type_trans
int dp_kp_eth_type_trans(struct pt_regs *ctx)
{
	return dp_count_skb((void *)PT_REGS_PARM1(ctx), (void *)PT_REGS_PARM2(ctx), DP_STAGE_ETH_RECV,
			    DP_L3_AT_DATA_ETH);
}
#endif

#ifdef DP_WANT_dp_tp_netif_rx
int dp_tp_netif_rx(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count_skb((void *)ctx->args[0], 0, DP_STAGE_ETH_RECV, DP_L3_AT_DATA);
}
#endif

#ifdef DP_WANT_dp_kp_napi_gro_receive
int dp_kp_napi_gro_receive(struct pt_regs *ctx)
{
	return dp_count_skb((void *)PT_REGS_PARM2(ctx), 0, DP_STAGE_GRO_RECV, DP_L3_AT_DATA);
}
#endif

#ifdef DP_WANT_dp_tp_napi_gro_receive_entry
int dp_tp_napi_gro_receive_entry(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count_skb((void *)ctx->args[0], 0, DP_STAGE_GRO_RECV, DP_L3_AT_DATA);
}
#endif

/* Since 5.x the first argument is struct sk_buff **pskb. */
#ifdef DP_WANT_dp_kp_netif_receive_skb_core
int dp_kp_netif_receive_skb_core(struct pt_regs *ctx)
{
	return dp_count_skb(dp_pointer_at((void *)PT_REGS_PARM1(ctx)), 0, DP_STAGE_RECV_SKB, DP_L3_AT_DATA);
}
#endif

#ifdef DP_WANT_dp_tp_netif_receive_skb
int dp_tp_netif_receive_skb(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count_skb((void *)ctx->args[0], 0, DP_STAGE_RECV_SKB, DP_L3_AT_DATA);
}
#endif

#ifdef DP_WANT_dp_kp_tcp_v4_rcv
int dp_kp_tcp_v4_rcv(struct pt_regs *ctx)
{
	return dp_count_skb((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_TCP_V4_RCV, DP_L3_AT_NETWORK_HEADER);
}
#endif

#ifdef DP_WANT_dp_kp_udp_rcv
int dp_kp_udp_rcv(struct pt_regs *ctx)
{
	return dp_count_skb((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_UDP_RCV, DP_L3_AT_NETWORK_HEADER);
}
#endif

#ifdef DP_WANT_dp_kp_tcp_v6_rcv
int dp_kp_tcp_v6_rcv(struct pt_regs *ctx)
{
	return dp_count_skb((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_TCP_V6_RCV, DP_L3_AT_NETWORK_HEADER);
}
#endif

#ifdef DP_WANT_dp_kp_udpv6_rcv
int dp_kp_udpv6_rcv(struct pt_regs *ctx)
{
	return dp_count_skb((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_UDP_V6_RCV, DP_L3_AT_NETWORK_HEADER);
}
#endif

/* The socket stages where no kprobe runs: one cgroup_skb ingress program
 * sees every packet that found its socket (sk_filter_trim_cap, from
 * tcp_v4_rcv's socket filter and from UDP's queueing), and counts it at the
 * socket stage of its IP version and protocol. It never changes traffic:
 * 1 (pass) on every path. */
#ifdef DP_WANT_dp_cg_socket
int dp_cg_socket(struct __sk_buff *ctx)
{
	dp_count_at_socket(ctx);
	return 1;
}
#endif

/* dev_queue_xmit(skb) and __dev_queue_xmit(skb, sb_dev) */
#ifdef DP_WANT_dp_kp_dev_queue_xmit
int dp_kp_dev_queue_xmit(struct pt_regs *ctx)
{
	return dp_count_skb((void *)PT_REGS_PARM1(ctx), 0, DP_STAGE_QUEUE_XMIT, DP_L3_AT_NETWORK_HEADER);
}
#endif

#ifdef DP_WANT_dp_tp_net_dev_queue
int dp_tp_net_dev_queue(struct bpf_raw_tracepoint_args *ctx)
{
	return dp_count_skb((void *)ctx->args[0], 0, DP_STAGE_QUEUE_XMIT, DP_L3_AT_NETWORK_HEADER);
}
#endif

/* net_dev_xmit(skb, rc, dev, len): only a successful transmit counts. The
 * device is the argument: by then a veth has moved skb->dev to its peer. */
#ifdef DP_WANT_dp_tp_net_dev_xmit
int dp_tp_net_dev_xmit(struct bpf_raw_tracepoint_args *ctx)
{
	if ((int)ctx->args[1] != 0)
		return 0;
	return dp_count_skb((void *)ctx->args[0], (void *)ctx->args[2], DP_STAGE_SEND_SKB, DP_L3_AT_NETWORK_HEADER);
}
#endif

#ifdef DP_RETRANS_SPORT
#ifdef DP_WANT_dp_tp_tcp_retransmit_skb
int dp_tp_tcp_retransmit_skb(void *ctx)
{
	dp_count_retransmit(ctx);
	return 0;
}
#endif
#endif

#ifdef DP_KFREE_SKB_SKBADDR
#ifdef DP_WANT_dp_tp_kfree_skb
int dp_tp_kfree_skb(void *ctx)
{
	dp_count_drop(ctx);
	return 0;
}
#endif
#endif
