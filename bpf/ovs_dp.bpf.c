// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Open vSwitch kernel datapath (openvswitch.ko): upcalls and flow-table
 * commands, counted by small integer keys; the agent names datapaths, ports
 * and instances.
 *
 * - ovs_dp_upcall tracepoint (tp_btf, raw_tp or classic): one count per
 *   upcall by (netns, datapath local-port ifindex, input port, MISS/ACTION).
 *   It fires at the top of ovs_dp_upcall(), so MISS upcalls are exactly the
 *   datapath's n_missed.
 * - ovs_dp_upcall() return (fexit or kretprobe): a non-zero return is an
 *   upcall userspace never got (no listener, queue full): exactly n_lost. The
 *   tracepoint leaves its key in a per-CPU stash; the datapath runs with
 *   preemption (BH) disabled, so the return is on the same CPU with nothing
 *   in between.
 * - ovs_flow_cmd_new/set/del (fexit; kprobe + kretprobe companion): one count
 *   per genetlink command by (netns, ovs_header.dp_ifindex, op, result).
 *
 * Upcalls are the slow path (each one queues a netlink message), so shared
 * hash entries with atomic adds cost nothing measurable.
 */
/* Not common.bpf.h: this object shares no maps with the vCPU objects. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ovs_types.bpf.h"
#include "hvtel/abi.h"
#include "counters.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_OVS_UPCALL_ENTRIES);
	__type(key, struct hv_ovs_upcall_key);
	__type(value, struct hv_ovs_upcall_val);
} hv_ovs_upcalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_OVS_FLOW_ENTRIES);
	__type(key, struct hv_ovs_flow_key);
	__type(value, __u64);
} hv_ovs_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hv_ovs_upcall_stash);
} hv_ovs_upcall_stash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_OVS_FLOW_STASH);
	__type(key, __u64);
	__type(value, struct hv_ovs_flow_stash);
} hv_ovs_flow_stash SEC(".maps");

HV_COUNTER_MAP(hv_ovs_counters, HV_OVS_CNT_MAX);

static __always_inline void hv__ovs_count(__u32 which)
{
	hv__counter_inc(&hv_ovs_counters, which);
}

static __always_inline struct hv_ovs_upcall_val *hv__upcall_entry(struct hv_ovs_upcall_key *k)
{
	struct hv_ovs_upcall_val *v = bpf_map_lookup_elem(&hv_ovs_upcalls, k);
	struct hv_ovs_upcall_val zero = {};

	if (v)
		return v;
	/* NOEXIST: a racing CPU's insert wins and both count into it. */
	bpf_map_update_elem(&hv_ovs_upcalls, k, &zero, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&hv_ovs_upcalls, k);
	if (!v)
		hv__ovs_count(HV_OVS_CNT_UPCALL_MAP_FULL);
	return v;
}

/* ---- ovs_dp_upcall tracepoint ---- */

static __always_inline int hv__upcall(struct datapath___hv *dp, const struct sw_flow_key___hv *key,
				      __u32 cmd)
{
	struct hv_ovs_upcall_key k = {};
	struct hv_ovs_upcall_stash *st;
	struct hv_ovs_upcall_val *v;
	__u32 zero = 0;

	k.netns = BPF_CORE_READ(dp, net.net, ns.inum);
	k.dp_ifindex = hv__dp_ifindex(dp);
	k.port = BPF_CORE_READ(key, phy.in_port);
	k.cmd = cmd;
	v = hv__upcall_entry(&k);
	if (v)
		__sync_fetch_and_add(&v->upcalls, 1);
	st = bpf_map_lookup_elem(&hv_ovs_upcall_stash, &zero);
	if (st) {
		st->key = k;
		st->valid = 1;
	}
	return 0;
}

SEC("tp_btf/ovs_dp_upcall")
int BPF_PROG(hv_upcall_btf, struct datapath___hv *dp, struct sk_buff *skb,
	     const struct sw_flow_key___hv *key, const struct dp_upcall_info___hv *info)
{
	/* 6.12's verifier wants trusted-or-null arguments checked before use. */
	if (!dp || !key || !info)
		return 0;
	return hv__upcall(dp, key, BPF_CORE_READ(info, cmd));
}

SEC("raw_tp/ovs_dp_upcall")
int BPF_PROG(hv_upcall_raw, struct datapath___hv *dp, struct sk_buff *skb,
	     const struct sw_flow_key___hv *key, const struct dp_upcall_info___hv *info)
{
	if (!dp || !key || !info)
		return 0;
	return hv__upcall(dp, key, BPF_CORE_READ(info, cmd));
}

SEC("tracepoint/openvswitch/ovs_dp_upcall")
int hv_upcall_tp(struct trace_event_raw_ovs_dp_upcall___hv *ctx)
{
	struct datapath___hv *dp = BPF_CORE_READ(ctx, dpaddr);
	const struct sw_flow_key___hv *key = BPF_CORE_READ(ctx, keyaddr);

	if (!dp || !key)
		return 0;
	return hv__upcall(dp, key, BPF_CORE_READ(ctx, upcall_cmd));
}

/* ---- ovs_dp_upcall() return: failures ---- */

static __always_inline int hv__upcall_ret(int ret)
{
	struct hv_ovs_upcall_stash *st;
	struct hv_ovs_upcall_val *v;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&hv_ovs_upcall_stash, &zero);
	if (!st || !st->valid) {
		if (ret)
			hv__ovs_count(HV_OVS_CNT_UNATTRIBUTED);
		return 0;
	}
	st->valid = 0;
	if (!ret)
		return 0;
	v = hv__upcall_entry(&st->key);
	if (v)
		__sync_fetch_and_add(&v->failures, 1);
	return 0;
}

SEC("fexit/ovs_dp_upcall")
int BPF_PROG(hv_upcall_ret_fexit, void *dp, void *skb, void *key, void *info, __u32 cutlen,
	     int ret)
{
	return hv__upcall_ret(ret);
}

SEC("kretprobe/ovs_dp_upcall")
int BPF_KRETPROBE(hv_upcall_ret_kretprobe, int ret)
{
	return hv__upcall_ret(ret);
}

/* ---- flow-table commands ---- */

static __always_inline void hv__flow_dp(struct genl_info *info, struct hv_ovs_flow_stash *out)
{
	/* genl_info.userhdr was removed in 6.7; it always pointed just past the genl header. */
	void *genlhdr = BPF_CORE_READ(info, genlhdr);
	__s32 ifindex = 0;

	out->netns = BPF_CORE_READ(info, _net.net, ns.inum);
	if (genlhdr)
		bpf_probe_read_kernel(&ifindex, sizeof(ifindex), genlhdr + HV_GENL_HDRLEN);
	out->dp_ifindex = ifindex;
}

static __always_inline void hv__flow_count(const struct hv_ovs_flow_stash *dp, __u32 op, int ret)
{
	struct hv_ovs_flow_key k = {
		.netns = dp->netns, .dp_ifindex = dp->dp_ifindex, .op = op, .ok = ret == 0,
	};
	__u64 zero = 0, *v = bpf_map_lookup_elem(&hv_ovs_flows, &k);

	if (!v) {
		bpf_map_update_elem(&hv_ovs_flows, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&hv_ovs_flows, &k);
	}
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		hv__ovs_count(HV_OVS_CNT_FLOW_MAP_FULL);
}

static __always_inline int hv__flow_exit(struct genl_info *info, __u32 op, int ret)
{
	struct hv_ovs_flow_stash dp = {};

	if (!info)
		return 0;
	hv__flow_dp(info, &dp);
	hv__flow_count(&dp, op, ret);
	return 0;
}

/* kprobe variant: the entry records the datapath for the return, per thread
 * (genetlink handlers run in the sender's context and may migrate). */
static __always_inline int hv__flow_entry(struct genl_info *info)
{
	struct hv_ovs_flow_stash dp = {};
	__u64 id = bpf_get_current_pid_tgid();

	if (!info)
		return 0;
	hv__flow_dp(info, &dp);
	bpf_map_update_elem(&hv_ovs_flow_stash, &id, &dp, BPF_ANY);
	return 0;
}

static __always_inline int hv__flow_return(__u32 op, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct hv_ovs_flow_stash *st = bpf_map_lookup_elem(&hv_ovs_flow_stash, &id);
	struct hv_ovs_flow_stash dp = {};

	/* No entry record (stash full, or attached mid-call): the datapath is unknown (0). */
	if (st) {
		dp = *st;
		bpf_map_delete_elem(&hv_ovs_flow_stash, &id);
	}
	hv__flow_count(&dp, op, ret);
	return 0;
}

#define HV_FLOW_HOOKS(fn, op)							\
	SEC("fexit/" #fn)							\
	int BPF_PROG(hv_##fn##_fexit, struct sk_buff *skb, struct genl_info *info, int ret) \
	{									\
		return hv__flow_exit(info, op, ret);				\
	}									\
	SEC("kprobe/" #fn)							\
	int BPF_KPROBE(hv_##fn##_kprobe, struct sk_buff *skb, struct genl_info *info) \
	{									\
		return hv__flow_entry(info);					\
	}									\
	SEC("kretprobe/" #fn)							\
	int BPF_KRETPROBE(hv_##fn##_kretprobe, int ret)				\
	{									\
		return hv__flow_return(op, ret);				\
	}

HV_FLOW_HOOKS(ovs_flow_cmd_new, HV_OVS_OP_NEW)
HV_FLOW_HOOKS(ovs_flow_cmd_set, HV_OVS_OP_SET)
HV_FLOW_HOOKS(ovs_flow_cmd_del, HV_OVS_OP_DEL)
