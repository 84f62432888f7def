/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * vCPU slot allocation for the KVM hooks: a thread that runs KVM code gets a
 * slot on its first event, straight from the free queue the agent fills.
 */
#ifndef HVTEL_VCPU_SLOT_BPF_H
#define HVTEL_VCPU_SLOT_BPF_H

#include "common.bpf.h"

/* The vCPU slot of the current thread, or NULL if it has none. No allocation:
 * for hooks that cannot tell a vCPU thread from any other. */
static __always_inline struct hv_vcpu *hv__vcpu_lookup(void)
{
	__u32 zero = 0, gen, slot, tid, tgid;
	struct hv_control *ctl = bpf_map_lookup_elem(&hv_control, &zero);
	struct hv_tid_cache *c = bpf_map_lookup_elem(&hv_tid_cache, &zero);
	struct hv_thread *t;
	__u64 id;

	if (!ctl || !c)
		return NULL;
	gen = ctl->threads_gen;
	/* KVM hooks run with preemption off: no switch can come in between. */
	if (c->trusted && c->gen == gen && c->slot != HV_NO_SLOT)
		return bpf_map_lookup_elem(&hv_vcpu, &c->slot);
	id = bpf_get_current_pid_tgid();
	tid = (__u32)id;
	tgid = id >> 32;
	if (c->tid == tid && c->tgid == tgid && c->gen == gen && tid && c->slot != HV_NO_SLOT) {
		slot = c->slot;
	} else {
		t = bpf_map_lookup_elem(&hv_threads, &tid);
		if (!t || t->tgid != tgid || t->role != HV_ROLE_VCPU)
			return NULL;
		slot = t->slot;
		c->tid = tid;
		c->tgid = tgid;
		c->slot = slot;
		c->gen = gen;
		c->trusted = ctl->switch_cache;
	}
	return bpf_map_lookup_elem(&hv_vcpu, &slot);
}

/* What a KVM hook knows about the vCPU, read only on a thread's first event. */
struct hv_vcpu_ident {
	__s32 vcpu_id;
	__s32 vcpu_idx;
	__u32 vmm_pid;
};

/*
 * The vCPU slot of the current thread, allocating one on first sight.
 *
 * Only KVM hooks call this, so only threads that run KVM_RUN get a slot. A new
 * thread takes a free slot at once and is reported in hv_new_threads: its very
 * first exits are counted, and the agent names it later. ident() fills what
 * the hook knows about the vCPU; it runs only on that first event.
 */
#define hv__vcpu_slot(ident_expr) ({						\
	struct hv_vcpu *__v = hv__vcpu_lookup();				\
	if (!__v) {								\
		struct hv_vcpu_ident __id = { -1, -1, 0 };			\
		ident_expr;							\
		__v = hv__vcpu_new(&__id);					\
	}									\
	__v;									\
})

static __always_inline struct hv_vcpu *hv__vcpu_new(struct hv_vcpu_ident *ident)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct hv_new_thread nt = {};
	struct hv_thread thr = {};
	struct hv_vcpu *v;
	__u32 slot;

	/* A tid still mapped to a dead thread of another process, or a thread
	 * already reported when no slot was free: not counted. */
	if (bpf_map_lookup_elem(&hv_threads, &tid) || bpf_map_lookup_elem(&hv_new_threads, &tid)) {
		hv__count(HV_CNT_UNKNOWN_THREAD);
		return NULL;
	}
	nt.tgid = id >> 32;
	nt.vcpu_id = ident->vcpu_id;
	nt.vcpu_idx = ident->vcpu_idx;
	nt.vmm_pid = ident->vmm_pid;
	nt.first_ns = bpf_ktime_get_ns();
	nt.slot = HV_NO_SLOT;
	if (bpf_map_pop_elem(&hv_free_slots, &slot) == 0) {
		thr.slot = slot;
		thr.role = HV_ROLE_VCPU;
		thr.tgid = nt.tgid;
		thr.vcpu_index = ident->vcpu_idx >= 0 ? ident->vcpu_idx : 0;
		if (bpf_map_update_elem(&hv_threads, &tid, &thr, BPF_NOEXIST) == 0)
			nt.slot = slot;
		else
			bpf_map_push_elem(&hv_free_slots, &slot, 0);
	}
	/* Discovery map full (the agent has not drained it yet): give the slot
	 * back, so none is held by a thread the agent never hears of; the
	 * thread tries again on its next event. One lost event, one reason. */
	if (bpf_map_update_elem(&hv_new_threads, &tid, &nt, BPF_NOEXIST)) {
		hv__count(HV_CNT_NEW_THREAD_FULL);
		if (nt.slot != HV_NO_SLOT) {
			bpf_map_delete_elem(&hv_threads, &tid);
			bpf_map_push_elem(&hv_free_slots, &nt.slot, 0);
		}
		return NULL;
	}
	if (nt.slot == HV_NO_SLOT) {
		hv__count(HV_CNT_SLOTS_FULL);
		return NULL;
	}
	v = bpf_map_lookup_elem(&hv_vcpu, &nt.slot);
	if (!v)
		hv__count(HV_CNT_SLOT_INVALID);
	return v;
}

#endif /* HVTEL_VCPU_SLOT_BPF_H */
