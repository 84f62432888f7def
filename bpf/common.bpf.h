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

/* tid -> tracked thread. Written by the agent, and by hv__vcpu_slot() when a
 * new thread runs KVM code. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct hv_thread);
} hv_threads SEC(".maps");

/* Unknown threads seen in KVM hooks, for the agent to name (then delete). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HV_NEW_THREADS);
	__type(key, __u32);
	__type(value, struct hv_new_thread);
} hv_new_threads SEC(".maps");

/* Free vCPU slots, zeroed by the agent before it pushes them. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
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

/* Self counters (enum hv_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HV_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hv_counters SEC(".maps");

static __always_inline void hv__count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&hv_counters, &which);

	if (v)
		*v += 1;
}


#endif /* HVTEL_COMMON_BPF_H */
