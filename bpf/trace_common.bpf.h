/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every on-demand trace object (trace_exits, trace_runq) has: the filter
 * in .rodata, the per-CPU token bucket, the drop counters and the ring. Each
 * object gets its own copy of these maps: they exist only while followed and
 * are shared with nothing else.
 */
#ifndef HVTEL_TRACE_COMMON_BPF_H
#define HVTEL_TRACE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "hvtel/abi.h"

const volatile struct hv_trace_config hv_trace_cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hv_trace_bucket);
} hv_trace_bucket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HV_TRACE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hv_trace_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, HV_TRACE_RING_BYTES);
} hv_trace_ring SEC(".maps");

static __always_inline void hv__tcount(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&hv_trace_counters, &which);

	if (v)
		*v += 1;
}

/*
 * For an event that passed the filter: a ring record of `size` bytes when the
 * bucket has a token and the ring has room, else NULL with the drop counted.
 * The caller fills the record and hands it to hv__trace_submit().
 */
static __always_inline void *hv__trace_reserve(__u64 now, __u64 size)
{
	struct hv_trace_bucket *b;
	__u32 zero = 0;
	void *e;

	if (hv_trace_cfg.rate) {
		b = bpf_map_lookup_elem(&hv_trace_bucket, &zero);
		if (!b)
			return NULL;
		if (!hv_trace_bucket_take(b, now, hv_trace_cfg.rate, hv_trace_cfg.burst)) {
			hv__tcount(HV_TRACE_CNT_RATE_LIMITED);
			return NULL;
		}
	}
	e = bpf_ringbuf_reserve(&hv_trace_ring, size, 0);
	if (!e)
		hv__tcount(HV_TRACE_CNT_RING_FULL);
	return e;
}

static __always_inline void hv__trace_submit(void *e)
{
	bpf_ringbuf_submit(e, 0);
	hv__tcount(HV_TRACE_CNT_EMITTED);
}

#endif /* HVTEL_TRACE_COMMON_BPF_H */
