/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel struct drift, in one place. Each shim names the change it covers.
 */
#ifndef HVTEL_CORE_FIXES_BPF_H
#define HVTEL_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/* task_struct.state was renamed __state in Linux 5.14 (commit 2f064a59a11f). */
struct task_struct___o {
	volatile long state;
} __attribute__((preserve_access_index));

static __always_inline long hv__task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___o *)t, state);
}

#define HV_PF_KTHREAD 0x00200000 /* include/linux/sched.h, stable since 2.6 */

#endif /* HVTEL_CORE_FIXES_BPF_H */
