/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI of the ovs_dp BPF object (bpf/ovs_dp.bpf.c <-> agent/ovs_dp/): keys,
 * values and constants of its maps. Same rules as include/hvtel/abi.h
 * (fixed-width types, named padding, append-only), pinned by
 * tests/ovs_dp/ovs_dp_abi_test.cpp. Candidate to move into abi.h.
 */
#ifndef HVTEL_OVS_DP_ABI_H
#define HVTEL_OVS_DP_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

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

#endif /* HVTEL_OVS_DP_ABI_H */
