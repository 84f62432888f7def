// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * On-demand exit tracing for `hvtel trace exits`: one ring-buffer event per VM
 * exit that ends (kvm_entry: handled in the kernel; kvm_userspace_exit: handed
 * to the VMM), with its latency from kvm_exit.
 *
 * Loaded and attached only while a follower reads it, with the filter in
 * .rodata, so the verifier drops the branches a follower did not ask for. It
 * shares no map with the always-on objects (vcpu_exits.bpf.c), whose exit path
 * stays as it is. Matching events pass a per-CPU token bucket; what the bucket
 * or a full ring drops is counted here for the follower to show.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "hvtel/abi.h"
#include "kvm_types.bpf.h"
#include "trace_common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A kvm_exit whose end has not fired yet, per vCPU thread. Keyed by tid, not
 * CPU: the thread may sleep (HLT) or migrate inside the exit. */
struct hv_trace_inflight {
	__u64 exit_ns;
	__u64 raw;
	__u32 vendor;
	__s32 vcpu_idx;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_TRACE_INFLIGHT);
	__type(key, __u32);
	__type(value, struct hv_trace_inflight);
} hv_trace_inflight SEC(".maps");

/* The current thread when it belongs to the traced VMM, else 0. */
static __always_inline __u64 hv__traced_thread(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (hv_trace_cfg.tgid && (__u32)(id >> 32) != hv_trace_cfg.tgid)
		return 0;
	return id;
}

static __always_inline void hv__emit(__u64 id, const struct hv_trace_inflight *f, __u32 end,
				     __u32 user_reason)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 latency = f && f->exit_ns && now > f->exit_ns ? now - f->exit_ns : 0;
	__s32 vcpu_idx = f ? f->vcpu_idx : -1;
	struct hv_trace_exit *e;

	if (hv_trace_cfg.only_user && end != HV_TRACE_END_USER)
		return;
	if (hv_trace_cfg.vcpu_idx >= 0 && vcpu_idx >= 0 && vcpu_idx != hv_trace_cfg.vcpu_idx)
		return;
	if (hv_trace_cfg.min_latency_ns && latency < hv_trace_cfg.min_latency_ns)
		return;
	e = hv__trace_reserve(now, sizeof(*e));
	if (!e)
		return;
	e->ts_ns = now;
	e->latency_ns = latency;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->vcpu_idx = vcpu_idx;
	e->cpu = bpf_get_smp_processor_id();
	if (f && f->exit_ns) {
		e->raw_reason = f->raw;
		e->vendor = f->vendor;
		e->reason_index = hv_reason_index(f->vendor, f->raw);
	} else {
		e->raw_reason = 0;
		e->vendor = HV_VENDOR_UNKNOWN;
		e->reason_index = 0;
	}
	e->end = end;
	e->user_reason = user_reason;
	hv__trace_submit(e);
}

static __always_inline int hv__trace_exit(struct kvm_vcpu *vcpu, __u32 isa)
{
	struct hv_trace_inflight f = {};
	__u64 id;
	__u32 tid;

	if (!vcpu)
		return 0;
	id = hv__traced_thread();
	if (!id)
		return 0;
	f.vcpu_idx = hv__vcpu_idx(vcpu);
	/* Known vCPU of another index: not worth a map write. */
	if (hv_trace_cfg.vcpu_idx >= 0 && f.vcpu_idx >= 0 && f.vcpu_idx != hv_trace_cfg.vcpu_idx)
		return 0;
	f.raw = hv__exit_reason(vcpu, isa, &f.vendor);
	f.exit_ns = bpf_ktime_get_ns();
	tid = (__u32)id;
	if (bpf_map_update_elem(&hv_trace_inflight, &tid, &f, BPF_ANY))
		hv__tcount(HV_TRACE_CNT_INFLIGHT_FULL);
	return 0;
}

static __always_inline int hv__trace_end(__u32 end, __u32 user_reason)
{
	struct hv_trace_inflight *f;
	__u64 id = hv__traced_thread();
	__u32 tid;

	if (!id)
		return 0;
	tid = (__u32)id;
	f = bpf_map_lookup_elem(&hv_trace_inflight, &tid);
	/* An entry with no recorded exit (first KVM_RUN, or kvm_exit absent) is no exit. */
	if (!f && end == HV_TRACE_END_ENTRY)
		return 0;
	hv__emit(id, f, end, user_reason);
	if (f)
		bpf_map_delete_elem(&hv_trace_inflight, &tid);
	return 0;
}

SEC("tp_btf/kvm_exit")
int BPF_PROG(hv_trace_exit_btf, struct kvm_vcpu *vcpu, __u32 isa)
{
	return hv__trace_exit(vcpu, isa);
}

SEC("raw_tp/kvm_exit")
int BPF_PROG(hv_trace_exit_raw, struct kvm_vcpu *vcpu, __u32 isa)
{
	return hv__trace_exit(vcpu, isa);
}

SEC("tp_btf/kvm_entry")
int BPF_PROG(hv_trace_entry_btf, struct kvm_vcpu *vcpu)
{
	return hv__trace_end(HV_TRACE_END_ENTRY, 0);
}

SEC("raw_tp/kvm_entry")
int BPF_PROG(hv_trace_entry_raw, struct kvm_vcpu *vcpu)
{
	return hv__trace_end(HV_TRACE_END_ENTRY, 0);
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(hv_trace_uexit_btf, __u32 reason, int err)
{
	return hv__trace_end(HV_TRACE_END_USER, hv_user_exit_slot(reason, err));
}

SEC("raw_tp/kvm_userspace_exit")
int BPF_PROG(hv_trace_uexit_raw, __u32 reason, int err)
{
	return hv__trace_end(HV_TRACE_END_USER, hv_user_exit_slot(reason, err));
}
