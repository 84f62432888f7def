// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * On-demand run-queue tracing for `hvtel trace runq`: one ring-buffer event
 * per run-queue wait of a followed vCPU thread, from its wakeup or preemption
 * to the sched_switch that puts it on a CPU.
 *
 * Loaded and attached only while a follower reads it. The threads followed
 * are the keys of hv_runq_threads, which the tracer fills from procfs with the
 * vCPU threads of the instance (and vCPU) asked for: that map is the filter,
 * so every other task costs one hash miss per hook. It shares no map with
 * vcpu_sched.bpf.c, whose accounting stays as it is; a wait is the same wait
 * (wakeup, or switched out still runnable, to switched in), except that a
 * wakeup a thread had while running does not survive its next block.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "hvtel/abi.h"
#include "core_fixes.bpf.h"
#include "trace_common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HV_TRACE_RUNQ_THREADS);
	__type(key, __u32);
	__type(value, struct hv_trace_runq_thread);
} hv_runq_threads SEC(".maps");

static __always_inline struct hv_trace_runq_thread *hv__runq_thread(struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);

	return bpf_map_lookup_elem(&hv_runq_threads, &tid);
}

static __always_inline void hv__runq_wakeup(struct task_struct *p)
{
	struct hv_trace_runq_thread *t = hv__runq_thread(p);

	if (t && !t->since_ns) {
		t->since_ns = bpf_ktime_get_ns();
		t->kind = HV_RUNQ_WAKEUP;
	}
}

static __always_inline void hv__runq_switch(bool preempt, struct task_struct *prev,
					    struct task_struct *next)
{
	struct hv_trace_runq_thread *t = hv__runq_thread(prev);
	struct hv_trace_runq *e;
	__u64 now, since;

	if (t) {
		/* Still queued (preempted, or switched out runnable): waiting from now.
		 * Blocked: any earlier wakeup is spent. A task preempted while about to
		 * sleep keeps its state but stays queued, hence `preempt`. */
		if (preempt || hv__task_state(prev) == 0) {
			t->since_ns = bpf_ktime_get_ns();
			t->kind = HV_RUNQ_PREEMPT;
		} else {
			t->since_ns = 0;
		}
	}
	t = hv__runq_thread(next);
	if (!t || !t->since_ns)
		return;
	now = bpf_ktime_get_ns();
	since = t->since_ns;
	t->since_ns = 0;
	if (hv_trace_cfg.min_latency_ns && now - since < hv_trace_cfg.min_latency_ns)
		return;
	e = hv__trace_reserve(now, sizeof(*e));
	if (!e)
		return;
	e->ts_ns = now;
	e->latency_ns = now > since ? now - since : 0;
	e->tgid = t->tgid;
	e->tid = BPF_CORE_READ(next, pid);
	e->vcpu_idx = t->vcpu_idx;
	e->cpu = bpf_get_smp_processor_id();
	e->kind = t->kind;
	e->_pad0 = 0;
	hv__trace_submit(e);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(hv_trace_rq_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	hv__runq_switch(preempt, prev, next);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(hv_trace_rq_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	hv__runq_switch(preempt, prev, next);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(hv_trace_rq_wakeup_btf, struct task_struct *p)
{
	hv__runq_wakeup(p);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(hv_trace_rq_wakeup_raw, struct task_struct *p)
{
	hv__runq_wakeup(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(hv_trace_rq_wakenew_btf, struct task_struct *p)
{
	hv__runq_wakeup(p);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(hv_trace_rq_wakenew_raw, struct task_struct *p)
{
	hv__runq_wakeup(p);
	return 0;
}
