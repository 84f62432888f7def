/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * vCPU slot allocation for the KVM hooks: a thread that runs KVM code gets a
 * slot on its first event, straight from the free queue the agent fills.
 */
#ifndef HVTEL_VCPU_SLOT_BPF_H
#define HVTEL_VCPU_SLOT_BPF_H

#include "common.bpf.h"

/*
 * Last thread seen on each CPU. A vCPU thread exits and re-enters many times
 * in a row on the same CPU, so this turns the hv_threads hash lookup into a
 * per-CPU array read for nearly every event. The agent bumps hv_threads_gen
 * whenever it deletes or remaps a thread, which invalidates every entry.
 */
struct hv_tid_cache {
	__u32 tid;
	__u32 tgid;
	__u32 slot;
	__u32 gen;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hv_tid_cache);
} hv_tid_cache SEC(".maps");

__u32 hv_threads_gen = 0;

/* The vCPU slot of the current thread, or NULL if it has none. No allocation:
 * for hooks that cannot tell a vCPU thread from any other. */
static __always_inline struct hv_vcpu *hv__vcpu_lookup(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32, zero = 0, gen = hv_threads_gen, slot;
	struct hv_tid_cache *c = bpf_map_lookup_elem(&hv_tid_cache, &zero);
	struct hv_thread *t;

	if (c && c->tid == tid && c->tgid == tgid && c->gen == gen && tid) {
		slot = c->slot;
	} else {
		t = bpf_map_lookup_elem(&hv_threads, &tid);
		if (!t || t->tgid != tgid || t->role != HV_ROLE_VCPU)
			return NULL;
		slot = t->slot;
		if (c) {
			c->tid = tid;
			c->tgid = tgid;
			c->slot = slot;
			c->gen = gen;
		}
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
	if (nt.slot == HV_NO_SLOT)
		hv__count(HV_CNT_SLOTS_FULL);
	if (bpf_map_update_elem(&hv_new_threads, &tid, &nt, BPF_NOEXIST))
		hv__count(HV_CNT_NEW_THREAD_FULL);
	if (nt.slot == HV_NO_SLOT)
		return NULL;
	v = bpf_map_lookup_elem(&hv_vcpu, &nt.slot);
	if (!v)
		hv__count(HV_CNT_SLOT_INVALID);
	return v;
}

#endif /* HVTEL_VCPU_SLOT_BPF_H */
