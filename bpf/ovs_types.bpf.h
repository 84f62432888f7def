/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Minimal CO-RE views of Open vSwitch kernel datapath types.
 *
 * They live in the openvswitch module's BTF, not in vmlinux.h; libbpf resolves
 * these ___hv flavours against it at load. Only names stable since Linux 4.x
 * are used: datapath.ports/net, vport.port_no/dev/dp_hash_node,
 * sw_flow_key.phy.in_port, dp_upcall_info.cmd/portid, and the classic
 * tracepoint record's dpaddr/keyaddr/upcall_cmd/upcall_port. struct datapath
 * is otherwise opaque (its flow_table drifted in 5.9).
 */
#ifndef HVTEL_OVS_TYPES_BPF_H
#define HVTEL_OVS_TYPES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

#define HV_OVSP_LOCAL 0              /* the datapath's own (internal) port */
#define HV_DP_VPORT_HASH_BUCKETS 1024 /* net/openvswitch/datapath.h */
#define HV_GENL_HDRLEN 4             /* NLMSG_ALIGN(sizeof(struct genlmsghdr)) */

struct datapath___hv {
	struct hlist_head *ports; /* DP_VPORT_HASH_BUCKETS buckets, by port_no */
	possible_net_t net;
} __attribute__((preserve_access_index));

struct vport___hv {
	struct net_device *dev;
	__u16 port_no;
	struct hlist_node dp_hash_node;
} __attribute__((preserve_access_index));

struct sw_flow_key___hv {
	struct {
		__u32 priority;
		__u32 skb_mark;
		__u16 in_port;
	} __attribute__((packed)) phy;
} __attribute__((preserve_access_index));

struct dp_upcall_info___hv {
	__u32 portid;
	__u8 cmd;
} __attribute__((preserve_access_index));

/* The classic tracepoint's record (TRACE_EVENT in net/openvswitch/openvswitch_trace.h). */
struct trace_event_raw_ovs_dp_upcall___hv {
	void *dpaddr;
	const void *keyaddr;
	__u8 upcall_cmd;
	__u32 upcall_port;
} __attribute__((preserve_access_index));

/* ifindex of the datapath's local port: what ovs_header.dp_ifindex names it by.
 * Port 0 hashes to bucket 0, shared only with ports 1024, 2048, ... */
static __always_inline __s32 hv__dp_ifindex(struct datapath___hv* dp) {
  struct hlist_head* ports = BPF_CORE_READ(dp, ports);
  struct hlist_node* n;

  if (!ports) return 0;
  n = BPF_CORE_READ(ports, first);
  for (int i = 0; i < 4 && n; i++) {
    struct vport___hv* v = (void*)n - bpf_core_field_offset(struct vport___hv, dp_hash_node);

    if (BPF_CORE_READ(v, port_no) == HV_OVSP_LOCAL) return BPF_CORE_READ(v, dev, ifindex);
    n = BPF_CORE_READ(n, next);
  }
  return 0;
}

#endif /* HVTEL_OVS_TYPES_BPF_H */
