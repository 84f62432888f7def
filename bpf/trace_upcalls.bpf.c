// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * On-demand upcall tracing for `hvtel trace upcalls`: one ring-buffer event
 * per upcall of the Open vSwitch kernel datapath (a packet no megaflow
 * matched, or a userspace() action), with the first bytes of the frame for
 * the agent to decode.
 *
 * Loaded and attached only while a follower reads it; the always-on ovs_dp
 * object keeps counting as before and shares nothing with this one. With
 * hv_trace_cfg.filter_map set, only packets that came in on an interface of
 * hv_upcall_ifindex are traced (the taps of the instance asked for), so the
 * rate limit and the drop counts are those of that instance.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "hvtel/abi.h"
#include "ovs_types.bpf.h"
#include "trace_common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_TRACE_UPCALL_IFACES);
	__type(key, __u32);
	__type(value, __u8);
} hv_upcall_ifindex SEC(".maps");

static __always_inline int hv__trace_upcall(struct datapath___hv *dp, struct sk_buff *skb,
					    const struct sw_flow_key___hv *key, __u8 cmd)
{
	struct hv_trace_upcall *e;
	__u32 ifindex = BPF_CORE_READ(skb, dev, ifindex);
	__u16 mac = BPF_CORE_READ(skb, mac_header);
	__u32 tail = BPF_CORE_READ(skb, tail);
	unsigned char *head;
	__u64 now;

	if (hv_trace_cfg.filter_map && !bpf_map_lookup_elem(&hv_upcall_ifindex, &ifindex))
		return 0;
	now = bpf_ktime_get_ns();
	e = hv__trace_reserve(now, sizeof(*e));
	if (!e)
		return 0;
	e->ts_ns = now;
	e->netns = BPF_CORE_READ(dp, net.net, ns.inum);
	e->dp_ifindex = hv__dp_ifindex(dp);
	e->ifindex = ifindex;
	e->len = BPF_CORE_READ(skb, len);
	e->cpu = bpf_get_smp_processor_id();
	e->port = BPF_CORE_READ(key, phy.in_port);
	e->cmd = cmd;
	e->hdr_len = 0;
	/* The frame from its MAC header (0xffff: none set), as far as the linear
	 * part goes. A fixed-size read: the bytes past `tail` are not shown. */
	head = BPF_CORE_READ(skb, head);
	if (mac != 0xffff && tail > mac &&
	    bpf_probe_read_kernel(e->hdr, sizeof(e->hdr), head + mac) == 0)
		e->hdr_len = tail - mac > sizeof(e->hdr) ? sizeof(e->hdr) : tail - mac;
	hv__trace_submit(e);
	return 0;
}

SEC("tp_btf/ovs_dp_upcall")
int BPF_PROG(hv_trace_upcall_btf, struct datapath___hv *dp, struct sk_buff *skb,
	     const struct sw_flow_key___hv *key, const struct dp_upcall_info___hv *info)
{
	/* 6.12's verifier wants trusted-or-null arguments checked before use. */
	if (!dp || !skb || !key || !info)
		return 0;
	return hv__trace_upcall(dp, skb, key, BPF_CORE_READ(info, cmd));
}

SEC("raw_tp/ovs_dp_upcall")
int BPF_PROG(hv_trace_upcall_raw, struct datapath___hv *dp, struct sk_buff *skb,
	     const struct sw_flow_key___hv *key, const struct dp_upcall_info___hv *info)
{
	if (!dp || !skb || !key || !info)
		return 0;
	return hv__trace_upcall(dp, skb, key, BPF_CORE_READ(info, cmd));
}
