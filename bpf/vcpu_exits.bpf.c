// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * VM exits per vCPU: counts by exit reason, exit-handling latency (kvm_exit to
 * the next kvm_entry of the same vCPU), exits to the VMM by KVM_EXIT_* reason
 * and the VMM's handling time (KVM_RUN return to the next KVM_RUN entry).
 *
 * Every hook exists as tp_btf, raw_tp and classic tracepoint; the agent
 * autoloads one variant per hook (tp_btf is the cheapest on the exit path).
 * All state is per vCPU slot, written only by that vCPU's own thread.
 */
#include "common.bpf.h"
#include "kvm_types.bpf.h"
#include "vcpu_slot.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Vendor of the last decoded exit (enum hv_vendor), for the agent's reason names. */
__u32 hv_exit_vendor = 0;

static __always_inline void hv__exit(struct hv_vcpu *v, __u32 vendor, __u64 raw)
{
	__u32 idx = hv_reason_index(vendor, raw);

	/* Keep the mask: clang folds it away otherwise, and the 6.1/6.12
	 * verifiers then see an unbounded index. */
	barrier_var(idx);
	idx &= HV_EXIT_REASON_SLOTS - 1;
	v->exits[idx]++;
	v->exit_class = hv_exit_class(vendor, idx);
	v->exit_ns = bpf_ktime_get_ns();
	if (hv_exit_vendor != vendor)
		hv_exit_vendor = vendor;
}

/*
 * The VMM is done with an exit to userspace: the vCPU thread is back in
 * KVM_RUN. Marked by kvm_fpu(load=1) at the start of every KVM_RUN, or, where
 * kvm_entry fires (VMX, SVM), by the first guest entry after it, so those
 * hosts need no kvm_fpu program at all. Whichever comes first consumes it.
 */
static __always_inline void hv__vmm_done(struct hv_vcpu *v, __u64 now)
{
	__u64 start = v->user_exit_ns, d;
	__u32 s;

	if (!start)
		return;
	v->user_exit_ns = 0;
	d = now - start;
	s = hv_log2_slot(d);
	barrier_var(s);
	s &= HV_HIST_SLOTS - 1;
	v->vmm_hist[s]++;
	v->vmm_sum_ns += d;
}

static __always_inline void hv__entry(struct hv_vcpu *v)
{
	__u64 start = v->exit_ns, now, d;
	__u32 c, s;

	if (!start && !v->user_exit_ns)
		return;
	now = bpf_ktime_get_ns();
	hv__vmm_done(v, now);
	if (!start)
		return;
	v->exit_ns = 0;
	d = now - start;
	c = v->exit_class;
	s = hv_log2_slot(d);
	barrier_var(c);
	barrier_var(s);
	c &= HV_EXIT_CLASSES - 1;
	s &= HV_HIST_SLOTS - 1;
	v->handle_hist[c][s]++;
	v->handle_sum_ns[c] += d;
}

static __always_inline void hv__user_exit(struct hv_vcpu *v, __u32 reason, __s32 err)
{
	__u32 zero = 0;
	struct hv_control *ctl = bpf_map_lookup_elem(&hv_control, &zero);

	reason = hv_user_exit_slot(reason, err);
	barrier_var(reason);
	reason &= HV_USER_EXIT_SLOTS - 1;
	v->user_exits[reason]++;
	/* Between VMM-timing sample windows (hv_control.vmm_timing_off, hosts that
	 * need the kvm_fpu marker) nothing consumes a timestamp: skip the clock. */
	v->user_exit_ns = ctl && ctl->vmm_timing_off ? 0 : bpf_ktime_get_ns();
}


#define HV_IDENT_FROM_VCPU(vcpu)						\
	do {									\
		__id.vcpu_id = BPF_CORE_READ(vcpu, vcpu_id);			\
		__id.vcpu_idx = hv__vcpu_idx(vcpu);				\
		__id.vmm_pid = BPF_CORE_READ(vcpu, kvm, userspace_pid);		\
	} while (0)

/* ---- kvm_exit ---- */

static __always_inline int hv__kvm_exit(struct kvm_vcpu *vcpu, __u32 isa)
{
	struct hv_vcpu *v;
	__u32 vendor;
	__u64 raw;

	/* 6.12's verifier wants the trusted-or-null argument checked first. */
	if (!vcpu)
		return 0;
	v = hv__vcpu_slot(HV_IDENT_FROM_VCPU(vcpu));
	if (!v)
		return 0;
	raw = hv__exit_reason(vcpu, isa, &vendor);
	hv__exit(v, vendor, raw);
	return 0;
}

SEC("tp_btf/kvm_exit")
int BPF_PROG(hv_exit_btf, struct kvm_vcpu *vcpu, __u32 isa)
{
	return hv__kvm_exit(vcpu, isa);
}

SEC("raw_tp/kvm_exit")
int BPF_PROG(hv_exit_raw, struct kvm_vcpu *vcpu, __u32 isa)
{
	return hv__kvm_exit(vcpu, isa);
}

SEC("tracepoint/kvm/kvm_exit")
int hv_exit_tp(struct trace_event_raw_kvm_exit *ctx)
{
	__u32 isa = BPF_CORE_READ(ctx, isa);
	__u32 vendor = isa == KVM_ISA_VMX ? HV_VENDOR_VMX :
		       isa == KVM_ISA_SVM ? HV_VENDOR_SVM : HV_VENDOR_UNKNOWN;
	struct hv_vcpu *v = hv__vcpu_slot(__id.vcpu_id = BPF_CORE_READ(ctx, vcpu_id));

	if (v)
		hv__exit(v, vendor, BPF_CORE_READ(ctx, exit_reason));
	return 0;
}

/* ---- kvm_entry ---- */

static __always_inline int hv__kvm_entry(struct kvm_vcpu *vcpu)
{
	struct hv_vcpu *v;

	if (!vcpu)
		return 0;
	v = hv__vcpu_slot(HV_IDENT_FROM_VCPU(vcpu));
	if (v)
		hv__entry(v);
	return 0;
}

SEC("tp_btf/kvm_entry")
int BPF_PROG(hv_entry_btf, struct kvm_vcpu *vcpu)
{
	return hv__kvm_entry(vcpu);
}

SEC("raw_tp/kvm_entry")
int BPF_PROG(hv_entry_raw, struct kvm_vcpu *vcpu)
{
	return hv__kvm_entry(vcpu);
}

SEC("tracepoint/kvm/kvm_entry")
int hv_entry_tp(struct trace_event_raw_kvm_entry *ctx)
{
	struct hv_vcpu *v = hv__vcpu_slot(__id.vcpu_id = BPF_CORE_READ(ctx, vcpu_id));

	if (v)
		hv__entry(v);
	return 0;
}

/* ---- kvm_userspace_exit: KVM_RUN returns to the VMM ---- */

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(hv_uexit_btf, __u32 reason, int err)
{
	struct hv_vcpu *v = hv__vcpu_slot((void)0);

	if (v)
		hv__user_exit(v, reason, err);
	return 0;
}

SEC("raw_tp/kvm_userspace_exit")
int BPF_PROG(hv_uexit_raw, __u32 reason, int err)
{
	struct hv_vcpu *v = hv__vcpu_slot((void)0);

	if (v)
		hv__user_exit(v, reason, err);
	return 0;
}

SEC("tracepoint/kvm/kvm_userspace_exit")
int hv_uexit_tp(struct trace_event_raw_kvm_userspace_exit *ctx)
{
	struct hv_vcpu *v = hv__vcpu_slot((void)0);

	if (v)
		hv__user_exit(v, BPF_CORE_READ(ctx, reason), BPF_CORE_READ(ctx, errno));
	return 0;
}

/* ---- kvm_fpu: load=1 at the start of each KVM_RUN ---- */

SEC("tp_btf/kvm_fpu")
int BPF_PROG(hv_fpu_btf, int load)
{
	struct hv_vcpu *v;

	if (!load)
		return 0;
	v = hv__vcpu_lookup();
	if (v && v->user_exit_ns)
		hv__vmm_done(v, bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/kvm_fpu")
int BPF_PROG(hv_fpu_raw, int load)
{
	struct hv_vcpu *v;

	if (!load)
		return 0;
	v = hv__vcpu_lookup();
	if (v && v->user_exit_ns)
		hv__vmm_done(v, bpf_ktime_get_ns());
	return 0;
}

SEC("tracepoint/kvm/kvm_fpu")
int hv_fpu_tp(struct trace_event_raw_kvm_fpu *ctx)
{
	struct hv_vcpu *v;

	if (!BPF_CORE_READ(ctx, load))
		return 0;
	v = hv__vcpu_lookup();
	if (v && v->user_exit_ns)
		hv__vmm_done(v, bpf_ktime_get_ns());
	return 0;
}
