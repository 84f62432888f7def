// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Scheduling of tracked VMM threads (vCPUs, emulator and I/O threads):
 * run-queue latency, on-CPU and waiting time, preemptions, migrations; and
 * the per-event CPU-pinning violations (PV1 off-pin run, PV4 co-run on a
 * dedicated pCPU, PV5 intruder time, PV7 shared instance on a dedicated pCPU,
 * PV8 dedicated vCPU migration, PV12 affinity changed by a foreign process).
 *
 * sched_switch runs for every task on the host: for untracked tasks on
 * non-dedicated pCPUs it costs two hash misses and one array read.
 */
#include "common.bpf.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Per thread slot: scheduling counters and the pin bitmap (agent-written). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, HV_MAX_VCPU_SLOTS);
	__type(key, __u32);
	__type(value, struct hv_sched);
} hv_sched SEC(".maps");

/* Per pCPU: dedicated owner (agent-written) and foreign-time accounting. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, HV_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct hv_pcpu);
} hv_pcpu SEC(".maps");

/* Processes allowed to change a tracked thread's affinity (libvirtd, virtqemud). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} hv_affinity_allow SEC(".maps");

/* Violation events for the live CLI; consumed by polling, never woken per event. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, HV_EVENT_RING_BYTES);
} hv_events SEC(".maps");

/* At most one event per second per thread and class. */
#define HV_EVENT_INTERVAL_NS 1000000000ULL

/*
 * pid/tgid of a task. tp_btf hands us trusted pointers that can be read
 * directly; raw_tp needs probe reads. `btf` is a compile-time constant in
 * every caller, so only one form survives.
 */
#define HV_TASK_FIELD(t, f, btf) ((btf) ? (t)->f : BPF_CORE_READ(t, f))

static __always_inline struct hv_thread *hv__thread_of(struct task_struct *t, const bool btf)
{
	__u32 tid = HV_TASK_FIELD(t, pid, btf);
	struct hv_thread *th;

	if (!tid)
		return NULL; /* idle */
	th = bpf_map_lookup_elem(&hv_threads, &tid);
	if (!th || th->tgid != (__u32)HV_TASK_FIELD(t, tgid, btf))
		return NULL;
	return th;
}

static __always_inline void hv__event(struct hv_sched *s, const struct hv_thread *th, __u32 cls,
				      __u32 cpu, __u32 tid, __u64 now, __u64 duration,
				      struct task_struct *other)
{
	struct hv_event *e;

	barrier_var(cls);
	cls &= HV_PV_CLASSES - 1;
	if (now - s->pv_last_event_ns[cls] < HV_EVENT_INTERVAL_NS)
		return;
	s->pv_last_event_ns[cls] = now;
	e = bpf_ringbuf_reserve(&hv_events, sizeof(*e), 0);
	if (!e) {
		hv__count(HV_CNT_RINGBUF_FULL);
		return;
	}
	e->ts_ns = now;
	e->type = HV_EVENT_PINNING;
	e->pv_class = cls;
	e->instance = th->instance;
	e->slot = th->slot;
	e->vcpu_index = th->vcpu_index;
	e->cpu = cpu;
	e->tid = tid;
	e->duration_ns = duration;
	e->other_pid = 0;
	e->other_comm[0] = 0;
	if (other) {
		e->other_pid = BPF_CORE_READ(other, tgid);
		BPF_CORE_READ_STR_INTO(&e->other_comm, other, comm);
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* The KVM hooks' per-CPU thread cache, for the thread coming in (common.bpf.h). */
static __always_inline void hv__cache_switch_in(struct task_struct *next, struct hv_thread *tn,
						__u32 gen, const bool btf)
{
	__u32 zero = 0;
	struct hv_tid_cache *c = bpf_map_lookup_elem(&hv_tid_cache, &zero);

	if (!c)
		return;
	c->tid = HV_TASK_FIELD(next, pid, btf);
	c->tgid = HV_TASK_FIELD(next, tgid, btf);
	c->slot = tn && tn->role == HV_ROLE_VCPU ? tn->slot : HV_NO_SLOT;
	c->gen = gen;
	c->trusted = 1;
}

static __always_inline void hv__switch(struct task_struct *prev, struct task_struct *next,
				       const bool btf)
{
	/* Before the lookups: the agent bumps it after it changes hv_threads. */
	__u32 gen = hv__threads_gen();
	__u32 cpu = bpf_get_smp_processor_id();
	struct hv_pcpu *pc = bpf_map_lookup_elem(&hv_pcpu, &cpu);
	struct hv_thread *tp = hv__thread_of(prev, btf);
	struct hv_thread *tn = hv__thread_of(next, btf);
	struct hv_sched *s;
	__u64 now;

	hv__cache_switch_in(next, tn, gen, btf);

	/* Untracked tasks on a pCPU nobody owns: nothing to do, not even a clock read.
	 * The barrier keeps clang from testing (tp | tn), which the verifier refuses. */
	if (!tp) {
		barrier_var(tn);
		if (!tn && !(pc && (pc->owner_instance || pc->foreign_since)))
			return;
	}
	now = bpf_ktime_get_ns();

	if (tp && (s = bpf_map_lookup_elem(&hv_sched, &tp->slot))) {
		if (s->oncpu_ns) {
			__u64 d = now - s->oncpu_ns;

			s->run_ns += d;
			for (__u32 c = 0; c < HV_PV_CLASSES; c++) {
				if (!(s->running_pv & (1u << c)))
					continue;
				s->pv_ns[c] += d;
				hv__event(s, tp, c, cpu, HV_TASK_FIELD(prev, pid, btf), now, d, NULL);
			}
			s->oncpu_ns = 0;
			s->running_pv = 0;
		}
		/* Still runnable: preempted, and waiting from now on. */
		if (hv__task_state(prev) == 0) {
			s->preemptions++;
			s->wakeup_ns = now;
		}
	}

	if (pc && pc->foreign_since) {
		__u32 kind = pc->foreign_kind;

		barrier_var(kind);
		kind &= HV_INTRUDERS - 1;
		pc->foreign_ns[kind] += now - pc->foreign_since;
		pc->foreign_since = 0;
	}

	if (tn && (s = bpf_map_lookup_elem(&hv_sched, &tn->slot))) {
		__u32 pv = 0;

		s->switches++;
		if (s->wakeup_ns) {
			__u64 d = now - s->wakeup_ns;

			__u32 slot = hv_log2_slot(d);

			barrier_var(slot);
			slot &= HV_HIST_SLOTS - 1;
			s->rq_hist[slot]++;
			s->rq_sum_ns += d;
			s->wait_ns += d;
			s->wakeup_ns = 0;
		}
		if (tn->flags & HV_THREAD_PINNED) {
			__u32 w = cpu / 64;

			barrier_var(w);
			w &= HV_CPU_WORDS - 1;
			if (cpu >= HV_MAX_CPUS || !((s->pin[w] >> (cpu % 64)) & 1))
				pv |= 1u << HV_PV_OFFPIN;
		}
		if (pc && pc->owner_instance && pc->owner_instance != tn->instance)
			pv |= (tn->flags & HV_THREAD_DEDICATED) ? 1u << HV_PV_CORUN
								: 1u << HV_PV_SHARED_ON_DEDICATED;
		for (__u32 c = 0; c < HV_PV_CLASSES; c++)
			if (pv & (1u << c))
				s->pv_count[c]++;
		s->running_pv = pv;
		s->oncpu_ns = now;
		s->cpu = cpu;
	}

	/* PV5: anyone but the owner's own threads (and idle) on a dedicated pCPU. */
	if (pc && pc->owner_instance && HV_TASK_FIELD(next, pid, btf) != 0 &&
	    !(tn && tn->instance == pc->owner_instance)) {
		__u32 kind;

		if (tn)
			kind = tn->role == HV_ROLE_VCPU	    ? HV_INTRUDER_VM_VCPU :
			       tn->role == HV_ROLE_IOTHREAD ? HV_INTRUDER_VM_IOTHREAD :
							      HV_INTRUDER_VM_EMULATOR;
		else
			kind = (HV_TASK_FIELD(next, flags, btf) & HV_PF_KTHREAD) ? HV_INTRUDER_KTHREAD :
										   HV_INTRUDER_HOST;
		pc->foreign_kind = kind;
		pc->foreign_since = now;
	}
}

static __always_inline void hv__wakeup(struct task_struct *p, const bool btf)
{
	struct hv_thread *t = hv__thread_of(p, btf);
	struct hv_sched *s;

	if (t && (s = bpf_map_lookup_elem(&hv_sched, &t->slot)) && !s->wakeup_ns)
		s->wakeup_ns = bpf_ktime_get_ns();
}

static __always_inline void hv__migrate(struct task_struct *p, int dest, const bool btf)
{
	struct hv_thread *t = hv__thread_of(p, btf);
	struct hv_sched *s;

	if (!t || !(s = bpf_map_lookup_elem(&hv_sched, &t->slot)))
		return;
	if ((__u32)dest == s->cpu)
		return;
	s->migrations++;
	if ((t->flags & HV_THREAD_DEDICATED) && t->role == HV_ROLE_VCPU) {
		s->pv_count[HV_PV_MIGRATION]++;
		hv__event(s, t, HV_PV_MIGRATION, dest, HV_TASK_FIELD(p, pid, btf), bpf_ktime_get_ns(),
			  0, NULL);
	}
}

SEC("tp_btf/sched_switch")
int BPF_PROG(hv_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	hv__switch(prev, next, true);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(hv_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	hv__switch(prev, next, false);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(hv_wakeup_btf, struct task_struct *p)
{
	hv__wakeup(p, true);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(hv_wakeup_raw, struct task_struct *p)
{
	hv__wakeup(p, false);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(hv_wakenew_btf, struct task_struct *p)
{
	hv__wakeup(p, true);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(hv_wakenew_raw, struct task_struct *p)
{
	hv__wakeup(p, false);
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(hv_migrate_btf, struct task_struct *p, int dest_cpu)
{
	hv__migrate(p, dest_cpu, true);
	return 0;
}

SEC("raw_tp/sched_migrate_task")
int BPF_PROG(hv_migrate_raw, struct task_struct *p, int dest_cpu)
{
	hv__migrate(p, dest_cpu, false);
	return 0;
}

/* sys_enter_sched_setaffinity's record (see its tracefs format). */
struct hv_setaffinity_args {
	__u64 common;
	__s32 nr;
	__u32 _pad;
	__u64 pid;
	__u64 len;
	__u64 user_mask_ptr;
};

/* PV12: only this syscall's tracepoint, so other syscalls pay nothing. */
SEC("tracepoint/syscalls/sys_enter_sched_setaffinity")
int hv_setaff_tp(struct hv_setaffinity_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 caller_tgid = id >> 32;
	__u32 tid = ctx->pid ? (__u32)ctx->pid : (__u32)id;
	struct hv_thread *t = bpf_map_lookup_elem(&hv_threads, &tid);
	struct hv_sched *s;

	if (!t || t->tgid == caller_tgid || bpf_map_lookup_elem(&hv_affinity_allow, &caller_tgid))
		return 0;
	s = bpf_map_lookup_elem(&hv_sched, &t->slot);
	if (!s)
		return 0;
	s->pv_count[HV_PV_PIN_CHANGED]++;
	hv__event(s, t, HV_PV_PIN_CHANGED, bpf_get_smp_processor_id(), tid, bpf_ktime_get_ns(), 0,
		  bpf_get_current_task_btf());
	return 0;
}
