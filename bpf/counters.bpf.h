/* SPDX-License-Identifier: GPL-2.0 */
/* Per-CPU self counters: every object counts its own failures (map full,
 * lost events, ...) in a per-CPU array indexed by an enum of abi.h, which the
 * agent sums at scrape time (agent/base/bpf/percpu.h). */
#ifndef HVTEL_COUNTERS_BPF_H
#define HVTEL_COUNTERS_BPF_H

#define HV_COUNTER_MAP(name, entries)                   \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, entries);           \
		__type(key, __u32);                     \
		__type(value, __u64);                   \
	} name SEC(".maps")

static __always_inline void hv__counter_inc(void *map, __u32 which)
{
	__u64 *v = bpf_map_lookup_elem(map, &which);

	if (v)
		*v += 1;
}

#endif /* HVTEL_COUNTERS_BPF_H */
