/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hvtel ABI: every constant and struct that crosses between bpf/ and agent/.
 *
 * Included by the *.bpf.c programs (after vmlinux.h) and by the agent (g++).
 * Rules, enforced by tests/base/bpf/abi_test.cpp:
 *   - fixed-width __uN/__sN types only; no pointers, long, bool or bitfields;
 *   - explicit named padding, so hash keys have no uninitialised bytes;
 *   - structs are append-only; any change of an existing key/value layout bumps
 *     HV_ABI_VERSION; enum values are never reused.
 * Helpers at the bottom are pure functions used on both sides (the kernel
 * computes slots, the agent decodes them) so the mapping exists exactly once.
 */
#ifndef HVTEL_ABI_H
#define HVTEL_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
/* The helpers below are C shared with the BPF side. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#endif

#define HV_ABI_VERSION 1

/* ---- Limits --------------------------------------------------------------- */

#define HV_MAX_VCPU_SLOTS 1024      /* default size of per-vCPU arrays; --max-vcpus */
#define HV_MAX_VCPU_SLOTS_DEFAULT HV_MAX_VCPU_SLOTS
#define HV_MAX_THREADS 8192         /* tracked threads (vCPU, emulator, I/O) */
#define HV_NEW_THREADS 1024         /* discovery hash: unknown threads seen in KVM hooks */
#define HV_EXIT_REASON_SLOTS 256    /* compact exit-reason index, see hv_reason_index() */
#define HV_USER_EXIT_SLOTS 64       /* KVM_EXIT_* values 0..63 */
#define HV_HIST_SLOTS 64            /* log2(ns) slots */
#define HV_EXIT_CLASSES 4           /* enum hv_exit_class */
#define HV_MAX_CPUS 1024            /* pCPUs covered by pin bitmaps and hv_pcpu */
#define HV_CPU_WORDS (HV_MAX_CPUS / 64)
#define HV_EVENT_RING_BYTES (256 * 1024)
#define HV_COMM_LEN 16

/* ---- Enums ---------------------------------------------------------------- */

/* Which vendor code path produced the exit reasons (bss hv_exit_vendor). */
enum hv_vendor {
	HV_VENDOR_UNKNOWN = 0,
	HV_VENDOR_VMX = 1, /* Intel: vcpu_vmx.exit_reason, basic reason = low 16 bits */
	HV_VENDOR_SVM = 2, /* AMD: vcpu_svm.vmcb->control.exit_code */
	HV_VENDOR_PVM = 3, /* PVM: vcpu_pvm.exit_reason */
};

/* Exit-handling latency classes: HLT is guest idle, never mixed with service time. */
enum hv_exit_class {
	HV_CLASS_OTHER = 0,
	HV_CLASS_HALT = 1,
	HV_CLASS_IO = 2,
	HV_CLASS_MMIO = 3, /* NPF / EPT violation / EPT misconfig */
};

/* Thread roles inside a VMM process. */
enum hv_role {
	HV_ROLE_VCPU = 1,
	HV_ROLE_EMULATOR = 2,
	HV_ROLE_IOTHREAD = 3,
};

/* Flags of a tracked thread (hv_thread.flags), set by the agent from the intent. */
enum hv_thread_flags {
	HV_THREAD_PINNED = 1 << 0,    /* hv_sched.pin holds the allowed pCPUs */
	HV_THREAD_DEDICATED = 1 << 1, /* the instance has dedicated pCPUs */
};

/* Pinning violations detected in the kernel (per-event classes). */
enum hv_pv_class {
	HV_PV_OFFPIN = 0,            /* PV1: ran on a pCPU outside its pin */
	HV_PV_CORUN = 1,             /* PV4: a dedicated instance ran on another's dedicated pCPU */
	HV_PV_SHARED_ON_DEDICATED = 2, /* PV7: a shared instance ran on a dedicated pCPU */
	HV_PV_MIGRATION = 3,         /* PV8: a dedicated vCPU migrated */
	HV_PV_PIN_CHANGED = 4,       /* PV12: sched_setaffinity by a foreign process */
	HV_PV_CLASSES = 8,
};

/* Who ran on a dedicated pCPU instead of its owner (PV5). */
enum hv_intruder {
	HV_INTRUDER_KTHREAD = 0,
	HV_INTRUDER_HOST = 1,
	HV_INTRUDER_VM_VCPU = 2,
	HV_INTRUDER_VM_EMULATOR = 3,
	HV_INTRUDER_VM_IOTHREAD = 4,
	HV_INTRUDERS = 8,
};

/* Ring-buffer event types. */
enum hv_event_type {
	HV_EVENT_PINNING = 1,  /* struct hv_event with class = enum hv_pv_class */
};

/* Per-CPU self counters (map hv_counters), exported as hvtel_bpf_lost_events_total etc. */
enum hv_counter {
	HV_CNT_UNKNOWN_THREAD = 0, /* KVM event from a thread the agent does not track (yet) */
	HV_CNT_NEW_THREAD_FULL = 1, /* discovery map full: a new vCPU thread was not reported;
	                             * its slot went back, it tries again on its next event */
	HV_CNT_SLOT_INVALID = 2,   /* thread mapped to a slot outside the arrays */
	HV_CNT_RINGBUF_FULL = 3,   /* trace event dropped: ring buffer full */
	HV_CNT_SLOTS_FULL = 4,     /* no free vCPU slot: the thread's events are not counted */
	HV_CNT_MAX = 8,
};

/* ---- Map keys and values -------------------------------------------------- */

/* hv_threads: tid -> thread. Written by the agent, read by every program. */
struct hv_thread {
	__u32 slot;        /* index into hv_vcpu (vCPU role only) */
	__u32 role;        /* enum hv_role */
	__u32 tgid;        /* owning process: a recycled tid of another process is not this thread */
	__u32 instance;    /* agent's instance number, 0 until the agent has named the thread */
	__u32 vcpu_index;  /* vCPU index within the instance */
	__u32 flags;       /* enum hv_thread_flags */
};

/*
 * hv_new_threads: tid -> what the kernel knew when an untracked thread first ran
 * KVM code. The kernel side has already given the thread a slot (popped from
 * hv_free_slots) so nothing is lost while the agent names it.
 */
struct hv_new_thread {
	__u32 tgid;
	__u32 slot;        /* slot taken from hv_free_slots, HV_NO_SLOT if none was free */
	__s32 vcpu_id;     /* kvm_vcpu.vcpu_id (x86: APIC id), -1 if the hook had no vcpu */
	__s32 vcpu_idx;    /* kvm_vcpu.vcpu_idx (creation order), -1 if unknown */
	__u32 vmm_pid;     /* kvm->userspace_pid, 0 if unknown */
	__u32 _pad0;
	__u64 first_ns;
};

#define HV_NO_SLOT 0xffffffffu

/*
 * hv_control: one element, mmapped; switches the agent writes and every
 * object reads.
 */
struct hv_control {
	__u32 threads_gen;    /* bumped whenever the agent deletes or remaps a thread */
	__u32 switch_cache;   /* 1 once sched_switch keeps the per-CPU thread cache current */
	__u32 vmm_timing_off; /* 1 between VMM-timing sample windows (kvm_fpu detached) */
	__u32 _pad;
};



/*
 * hv_vcpu: one element per vCPU slot (BPF_F_MMAPABLE array, read by the agent
 * through mmap at scrape time). Only the vCPU's own thread writes its element,
 * and a thread runs on one CPU at a time, so plain increments are exact and
 * there is no per-CPU fan-out to sum on many-core hosts.
 */
struct hv_vcpu {
	/* in-flight state, first so the hot fields share a cache line */
	__u64 exit_ns;        /* kvm_exit timestamp, 0 when not inside an exit */
	__u64 user_exit_ns;   /* kvm_userspace_exit timestamp, 0 when in KVM_RUN */
	__u32 exit_class;     /* class of the exit in flight */
	__u32 _pad0;
	__u64 _pad1[5];
	/* counters */
	__u64 exits[HV_EXIT_REASON_SLOTS];          /* by hv_reason_index() */
	__u64 user_exits[HV_USER_EXIT_SLOTS];       /* by KVM_EXIT_* */
	__u64 handle_hist[HV_EXIT_CLASSES][HV_HIST_SLOTS]; /* exit -> entry, log2 ns */
	__u64 handle_sum_ns[HV_EXIT_CLASSES];
	__u64 vmm_hist[HV_HIST_SLOTS];              /* userspace exit -> next KVM_RUN */
	__u64 vmm_sum_ns;
	__u64 _pad2[3];
};

/*
 * hv_sched: one element per thread slot (same index as hv_vcpu), mmapped.
 * Written by the scheduler programs; `pin` is written by the agent.
 */
struct hv_sched {
	__u64 wakeup_ns;      /* woken or preempted (runnable) since, 0 when not waiting */
	__u64 oncpu_ns;       /* switched in at, 0 when not running */
	__u32 cpu;            /* pCPU it last ran on */
	__u32 running_pv;     /* bitmask of hv_pv_class in effect while it runs */
	__u64 _pad0[5];
	__u64 run_ns;         /* on-CPU time */
	__u64 wait_ns;        /* runnable but not running */
	__u64 preemptions;    /* involuntary switch-outs */
	__u64 migrations;     /* moves between pCPUs */
	__u64 switches;       /* switch-ins */
	__u64 _pad1[3];
	__u64 rq_hist[HV_HIST_SLOTS]; /* run-queue latency, log2 ns */
	__u64 rq_sum_ns;
	__u64 _pad2[7];
	__u64 pv_count[HV_PV_CLASSES];
	__u64 pv_ns[HV_PV_CLASSES];
	__u64 pv_last_event_ns[HV_PV_CLASSES]; /* event rate limit */
	__u64 pin[HV_CPU_WORDS];               /* allowed pCPUs (HV_THREAD_PINNED) */
};

/* hv_pcpu: one element per pCPU. owner_* written by the agent; the rest only
 * by that CPU's own sched_switch. */
struct hv_pcpu {
	__u32 owner_instance; /* instance with this pCPU dedicated, 0 if none */
	__u32 foreign_kind;   /* enum hv_intruder of the task running now */
	__u64 foreign_since;  /* a non-owner task runs here since, 0 if none */
	__u64 _pad0[6];
	__u64 foreign_ns[HV_INTRUDERS];
};

/* Ring-buffer event (live CLI only; rate-limited in the kernel). */
struct hv_event {
	__u64 ts_ns;
	__u32 type;        /* enum hv_event_type */
	__u32 pv_class;    /* enum hv_pv_class */
	__u32 instance;    /* hv_thread.instance of the thread concerned */
	__u32 slot;
	__u32 vcpu_index;
	__u32 cpu;         /* pCPU concerned */
	__u32 tid;         /* thread concerned */
	__u32 other_pid;   /* intruder / caller pid, 0 if none */
	__u64 duration_ns; /* time in violation (switch-out events), 0 if instantaneous */
	char other_comm[HV_COMM_LEN];
};

/* ---- Open vSwitch kernel datapath (bpf/ovs_dp.bpf.c) ---------------------- */

#define HV_OVS_UPCALL_ENTRIES 4096 /* (datapath, port, cmd) series */
#define HV_OVS_FLOW_ENTRIES 256    /* (datapath, op, result) series */
#define HV_OVS_FLOW_STASH 1024     /* flow commands in flight (kprobe variant only) */

/* OVS_PACKET_CMD_* (UAPI linux/openvswitch.h): why the datapath made an upcall. */
#define HV_OVS_UPCALL_MISS 1   /* no megaflow matched */
#define HV_OVS_UPCALL_ACTION 2 /* a userspace() action (sFlow, controller, ...) */

/* Datapath flow-table commands (the genetlink command that ran). */
enum hv_ovs_op {
	HV_OVS_OP_NEW = 0, /* OVS_FLOW_CMD_NEW: install (or modify in place without NLM_F_EXCL) */
	HV_OVS_OP_SET = 1, /* OVS_FLOW_CMD_SET: replace actions */
	HV_OVS_OP_DEL = 2, /* OVS_FLOW_CMD_DEL: one flow, or a flush when no key/UFID */
	HV_OVS_OPS = 4,
};

/* Per-CPU self counters (map hv_ovs_counters). */
enum hv_ovs_counter {
	HV_OVS_CNT_UPCALL_MAP_FULL = 0, /* upcall not counted: hv_ovs_upcalls full */
	HV_OVS_CNT_FLOW_MAP_FULL = 1,   /* flow command not counted: hv_ovs_flows full */
	HV_OVS_CNT_UNATTRIBUTED = 2,    /* failed upcall with no recorded (datapath, port) */
	HV_OVS_CNT_MAX = 8,
};

/*
 * A datapath: the ifindex of its local (OVSP_LOCAL) port, which is what
 * ovs_header.dp_ifindex carries and what /sys/class/net/<dp>/ifindex shows,
 * in the network namespace with this inode number. ifindex 0: the local port
 * could not be read.
 */
struct hv_ovs_upcall_key {
	__u32 netns;
	__s32 dp_ifindex;
	__u32 port;   /* datapath port number: sw_flow_key.phy.in_port */
	__u32 cmd;    /* HV_OVS_UPCALL_* */
};

struct hv_ovs_upcall_val {
	__u64 upcalls;  /* ovs_dp_upcall() calls (the datapath's n_missed counts the MISS ones) */
	__u64 failures; /* of which returned an error: not queued to userspace (n_lost) */
};

struct hv_ovs_flow_key {
	__u32 netns;
	__s32 dp_ifindex; /* ovs_header.dp_ifindex of the command, 0 if unknown */
	__u32 op;         /* enum hv_ovs_op */
	__u32 ok;         /* 1: the command returned 0, 0: it failed */
};

/* Per-CPU: the upcall in progress, from the tracepoint to ovs_dp_upcall()'s return. */
struct hv_ovs_upcall_stash {
	struct hv_ovs_upcall_key key;
	__u32 valid;
	__u32 _pad0;
};

/* Per thread: a flow command in progress (kprobe -> kretprobe). */
struct hv_ovs_flow_stash {
	__u32 netns;
	__s32 dp_ifindex;
};

/* ---- On-demand exit tracing (bpf/trace_exits.bpf.c) ------------------------ */
/* Loaded and attached only while `hvtel trace exits` follows; nothing of it
 * exists otherwise, so the always-on path above pays nothing for it. */

#define HV_TRACE_RING_BYTES (1024 * 1024)
#define HV_TRACE_INFLIGHT 4096        /* vCPU threads inside an exit at once */
#define HV_TRACE_MAX_RATE 10000000ULL /* events/s per CPU (keeps the bucket math in 64 bits) */
#define HV_TRACE_MAX_BURST 1000000ULL
#define HV_NS_PER_SEC 1000000000ULL

/* Per-CPU counters of the trace object (map hv_trace_counters). */
enum hv_trace_counter {
	HV_TRACE_CNT_EMITTED = 0,       /* events written to the ring */
	HV_TRACE_CNT_RATE_LIMITED = 1,  /* matched the filter, dropped by the token bucket */
	HV_TRACE_CNT_RING_FULL = 2,     /* matched and passed the bucket, ring buffer full */
	HV_TRACE_CNT_INFLIGHT_FULL = 3, /* kvm_exit not recorded: in-flight map full */
	HV_TRACE_CNT_MAX = 4,
};

/* How an exit ended. */
enum hv_trace_end {
	HV_TRACE_END_ENTRY = 1, /* handled in the kernel: kvm_entry into the guest again */
	HV_TRACE_END_USER = 2,  /* handed to the VMM: kvm_userspace_exit (KVM_RUN returned) */
};

/* Set in .rodata before load (one object per follower): the filter runs in
 * the kernel, so the rate limit and the drop counts apply to matching events. */
struct hv_trace_config {
	__u32 tgid;           /* VMM process; 0: every process */
	__s32 vcpu_idx;       /* kvm_vcpu.vcpu_idx; -1: every vCPU (unknown indices pass) */
	__u64 min_latency_ns; /* 0: no minimum; exits of unknown latency (0) never pass one */
	__u64 rate;           /* token bucket: events per second per CPU; 0: unlimited */
	__u64 burst;          /* bucket depth, events */
	__u32 only_user;      /* 1: only exits handed to the VMM */
        __u32 filter_map;     /* 1: only what the object's filter map holds (upcalls: input ifindexes) */
};

/* One exit, as the ring buffer carries it. */
struct hv_trace_exit {
	__u64 ts_ns;        /* bpf_ktime_get_ns() when the exit ended */
	__u64 latency_ns;   /* kvm_exit -> end; 0 when kvm_exit did not fire (PVM) */
	__u64 raw_reason;   /* vendor exit reason (valid when vendor != HV_VENDOR_UNKNOWN) */
	__u32 tgid;
	__u32 tid;
	__s32 vcpu_idx;     /* -1: unknown (no kvm_exit with the vcpu in hand) */
	__u32 cpu;
	__u32 vendor;       /* enum hv_vendor; HV_VENDOR_UNKNOWN: kvm_exit did not fire */
	__u32 reason_index; /* hv_reason_index(vendor, raw_reason) */
	__u32 end;          /* enum hv_trace_end */
	__u32 user_reason;  /* hv_user_exit_slot() when end == HV_TRACE_END_USER, else 0 */
};

/* ---- On-demand run-queue tracing (bpf/trace_runq.bpf.c) -------------------- */
/* Same lifecycle, config (hv_trace_config: min_latency_ns, rate, burst; tgid
 * and vcpu_idx choose which threads the tracer puts in the thread map, which
 * is the kernel-side filter), counters and token bucket as the exit trace. */

#define HV_TRACE_RUNQ_THREADS 4096 /* vCPU threads followed at once */

/* What put the thread in the run queue. */
enum hv_runq_kind {
	HV_RUNQ_WAKEUP = 1,  /* woken (sched_wakeup, sched_wakeup_new) */
	HV_RUNQ_PREEMPT = 2, /* switched out while still runnable */
};

/* A followed vCPU thread (map hv_runq_threads, keyed by tid): inserted by the
 * tracer with since_ns 0, kept up to date by the scheduler hooks. */
struct hv_trace_runq_thread {
	__u64 since_ns;  /* when it became runnable and is still waiting; 0: not waiting */
	__u32 tgid;
	__s32 vcpu_idx;  /* from the thread's name or vCPU fd; -1: unknown */
	__u32 kind;      /* enum hv_runq_kind of since_ns */
	__u32 _pad0;
};

/* One run-queue wait, as the ring buffer carries it: emitted when the thread goes on-CPU. */
struct hv_trace_runq {
	__u64 ts_ns;      /* bpf_ktime_get_ns() at the sched_switch that ran it */
	__u64 latency_ns; /* wakeup or preemption -> on-CPU */
	__u32 tgid;
	__u32 tid;
	__s32 vcpu_idx;   /* as in hv_trace_runq_thread */
	__u32 cpu;        /* the pCPU it went on */
	__u32 kind;       /* enum hv_runq_kind */
	__u32 _pad0;
};

/* ---- On-demand upcall tracing (bpf/trace_upcalls.bpf.c) --------------------- */
/* Same lifecycle, counters and token bucket; hv_trace_config.filter_map 1
 * limits it to packets that came in on the interfaces of hv_upcall_ifindex
 * (the taps of the instance asked for). */

#define HV_TRACE_UPCALL_IFACES 1024 /* interfaces followed at once */
#define HV_TRACE_UPCALL_HDR 64      /* frame bytes carried: Ethernet, VLAN, IPv6, ports */

/* One upcall of the kernel datapath, as the ring buffer carries it. */
struct hv_trace_upcall {
  __u64 ts_ns;      /* bpf_ktime_get_ns() at the ovs_dp_upcall tracepoint */
  __u32 netns;      /* inode of the datapath's network namespace */
  __s32 dp_ifindex; /* the datapath's local port (0: unknown) */
  __u32 ifindex;    /* skb->dev: the interface the packet came in on */
  __u32 len;        /* skb->len */
  __u32 cpu;
  __u16 port;   /* datapath port number (sw_flow_key.phy.in_port) */
  __u8 cmd;     /* HV_OVS_UPCALL_MISS or HV_OVS_UPCALL_ACTION */
  __u8 hdr_len; /* bytes of hdr that are the frame's, from its MAC header */
  __u8 hdr[HV_TRACE_UPCALL_HDR];
};

/* Per-CPU token bucket. credit counts nano-events (1 event = HV_NS_PER_SEC),
 * so refill is elapsed_ns * rate with no division. */
struct hv_trace_bucket {
	__u64 credit;
	__u64 last_ns; /* 0: never used (starts full) */
};

/* ---- Shared pure helpers -------------------------------------------------- */

/* log2 slot of a nanosecond duration: slot s holds [2^s, 2^(s+1)), slot 0 holds 0 and 1. */
static inline __u32 hv_log2_slot(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

#define HV_REASON_OTHER 0xff  /* anything that does not fit the compact space */
#define HV_REASON_ERR 0xfe    /* SVM_EXIT_ERR / VMX failed VM entry */

/* Compact a raw vendor exit reason into [0, HV_EXIT_REASON_SLOTS). */
static inline __u32 hv_reason_index(__u32 vendor, __u64 raw)
{
	switch (vendor) {
	case HV_VENDOR_VMX:
		if (raw & 0x80000000ULL)
			return HV_REASON_ERR;
		raw &= 0xffff;
		return raw < 0xfe ? (__u32)raw : HV_REASON_OTHER;
	case HV_VENDOR_SVM:
		if (raw == 0xffffffffffffffffULL)
			return HV_REASON_ERR;
		if (raw < 0xe0)
			return (__u32)raw;
		if (raw >= 0x400 && raw < 0x41e)
			return 0xe0 + (__u32)(raw - 0x400);
		return HV_REASON_OTHER;
	default:
		return raw < 0xfe ? (__u32)raw : HV_REASON_OTHER;
	}
}

/* Latency class of a compact reason index. */
static inline __u32 hv_exit_class(__u32 vendor, __u32 idx)
{
	switch (vendor) {
	case HV_VENDOR_VMX:
		if (idx == 12) return HV_CLASS_HALT;            /* HLT */
		if (idx == 30) return HV_CLASS_IO;              /* IO_INSTRUCTION */
		if (idx == 48 || idx == 49) return HV_CLASS_MMIO; /* EPT_VIOLATION/MISCONFIG */
		return HV_CLASS_OTHER;
	case HV_VENDOR_SVM:
		if (idx == 0x78 || idx == 0xa6) return HV_CLASS_HALT; /* HLT, IDLE_HLT */
		if (idx == 0x7b) return HV_CLASS_IO;                  /* IOIO */
		if (idx == 0xe0) return HV_CLASS_MMIO;                /* NPF (0x400) */
		return HV_CLASS_OTHER;
	default:
		return HV_CLASS_OTHER;
	}
}

#define HV_KVM_EXIT_INTR 10                          /* KVM_EXIT_INTR */
#define HV_USER_EXIT_ERROR (HV_USER_EXIT_SLOTS - 2)  /* KVM_RUN failed: no exit reason */
#define HV_USER_EXIT_OTHER (HV_USER_EXIT_SLOTS - 1)  /* a KVM_EXIT_* beyond the slots */

/*
 * The hv_vcpu.user_exits slot of one kvm_userspace_exit(reason, err). A
 * KVM_RUN that failed (err < 0) leaves run->exit_reason as the previous exit
 * left it: -EINTR/-EAGAIN (a signal, immediate_exit) counts as KVM_EXIT_INTR,
 * as the VMM sees it; any other error as HV_USER_EXIT_ERROR.
 */
static inline __u32 hv_user_exit_slot(__u32 reason, __s32 err)
{
	if (err < 0)
		return err == -4 /* EINTR */ || err == -11 /* EAGAIN */ ? HV_KVM_EXIT_INTR
									 : HV_USER_EXIT_ERROR;
	return reason < HV_USER_EXIT_ERROR ? reason : HV_USER_EXIT_OTHER;
}

/*
 * Takes one event from the bucket at time `now`: 1 if it may be emitted, 0 if
 * it is over the rate. rate 0 is unlimited. Callers keep rate <=
 * HV_TRACE_MAX_RATE and burst <= HV_TRACE_MAX_BURST; elapsed time is capped
 * at 16 s, by which any bucket is full, so nothing overflows.
 */
static inline __u32 hv_trace_bucket_take(struct hv_trace_bucket *b, __u64 now, __u64 rate,
					 __u64 burst)
{
	__u64 cap = burst * HV_NS_PER_SEC, el;

	if (!rate)
		return 1;
	if (!b->last_ns) {
		b->credit = cap;
		b->last_ns = now;
	}
	el = now > b->last_ns ? now - b->last_ns : 0;
	b->last_ns = now;
	if (el > 16 * HV_NS_PER_SEC)
		el = 16 * HV_NS_PER_SEC;
	b->credit += el * rate;
	if (b->credit > cap)
		b->credit = cap;
	if (b->credit < HV_NS_PER_SEC)
		return 0;
	b->credit -= HV_NS_PER_SEC;
	return 1;
}

#ifdef __cplusplus
#pragma GCC diagnostic pop
#endif

#endif /* HVTEL_ABI_H */
