// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Empty programs, one per attach type, loaded and attached one at a time by
 * `hvtel status` to learn what this kernel really accepts.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(fp_tp_btf)
{
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(fp_raw_tp)
{
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int fp_tracepoint(void *ctx)
{
	return 0;
}

SEC("fentry/vfs_read")
int BPF_PROG(fp_fentry)
{
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(fp_kprobe)
{
	return 0;
}
