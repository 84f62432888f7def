/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps and helpers shared by every hvtel BPF object.
 *
 * Each object declares the shared maps again; the agent loads the first object
 * and hands the same map fds to the others (bpf_map__reuse_fd), so all
 * programs see one thread table and one set of vCPU slots.
 */
#ifndef HVTEL_COMMON_BPF_H
#define HVTEL_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "hvtel/abi.h"
#include "counters.bpf.h"

/* tid -> tracked thread. Written by the agent, and by hv__vcpu_slot() when a
 * new thread runs KVM code. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct hv_thread);
} hv_threads SEC(".maps");

/* Unknown threads seen in KVM hooks, for the agent to name (then delete).
 * Not an LRU: an evicted report would leak its slot and leave the thread
 * unnamed; a full map fails the insert, which hv__vcpu_new() counts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_NEW_THREADS);
	__type(key, __u32);
	__type(value, struct hv_new_thread);
} hv_new_threads SEC(".maps");

/* Free vCPU slots, zeroed by the agent before it pushes them. A stack, so the
 * lowest slots freed last are taken first: the slots in use stay below the most
 * vCPUs there ever were at once, and the agent maps only that much of hv_vcpu
 * and hv_sched. */
struct {
  __uint(type, BPF_MAP_TYPE_STACK);
  __uint(max_entries, HV_MAX_VCPU_SLOTS);
  __type(value, __u32);
} hv_free_slots SEC(".maps");

/* Per-vCPU state, counters and histograms; mmapped by the agent. The agent
 * sets max_entries (--max-vcpus) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, HV_MAX_VCPU_SLOTS);
	__type(key, __u32);
	__type(value, struct hv_vcpu);
} hv_vcpu SEC(".maps");

/* Agent-written switches (struct hv_control). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hv_control);
} hv_control SEC(".maps");

/*
 * The thread on each CPU, as far as the KVM hooks care: its vCPU slot. A vCPU
 * thread exits and re-enters many times in a row on one CPU, so this turns
 * the hv_threads hash lookup into a per-CPU array read for nearly every KVM
 * event. `trusted` entries were written for the thread that is on the CPU
 * until the next switch, which rewrites them (sched_switch, or a KVM hook
 * once hv_control.switch_cache says sched_switch is attached): the KVM hooks
 * then skip even the bpf_get_current_pid_tgid() call, which costs ~40 ns
 * with retpolines and SRSO return thunks. Entries of an older threads_gen are
 * stale.
 */
struct hv_tid_cache {
	__u32 tid;
	__u32 tgid;
	__u32 slot;      /* HV_NO_SLOT: not a known vCPU thread */
	__u32 gen;
	__u32 trusted;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hv_tid_cache);
} hv_tid_cache SEC(".maps");

static __always_inline __u32 hv__threads_gen(void)
{
	__u32 zero = 0;
	struct hv_control *ctl = bpf_map_lookup_elem(&hv_control, &zero);

	return ctl ? ctl->threads_gen : 0;
}

/* Self counters (enum hv_counter). */
HV_COUNTER_MAP(hv_counters, HV_CNT_MAX);

static __always_inline void hv__count(__u32 which)
{
	hv__counter_inc(&hv_counters, which);
}


#endif /* HVTEL_COMMON_BPF_H */
