/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Minimal CO-RE views of KVM's vendor vCPU structs and the exit-reason decode.
 *
 * The vendor structs are not UAPI and live in module BTF on distro kernels
 * (kvm_intel, kvm_amd); libbpf resolves these ___x flavours against whichever
 * BTF has them. Branches for vendors whose type is absent are dead code and
 * removed at load, so one object serves Intel, AMD and PVM hosts.
 * Each of them embeds struct kvm_vcpu as its first member.
 */
#ifndef HVTEL_KVM_TYPES_BPF_H
#define HVTEL_KVM_TYPES_BPF_H

/* Not common.bpf.h: the trace object includes this and must not create the
 * agent's shared maps. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "hvtel/abi.h"

/* Intel: union vmx_exit_reason since Linux 5.10 (commit 8e53324021645). */
union vmx_exit_reason___x {
	u32 full;
} __attribute__((preserve_access_index));

struct vcpu_vmx___x {
	union vmx_exit_reason___x exit_reason;
} __attribute__((preserve_access_index));

/* AMD: the exit code is in the VMCB control area. */
struct vmcb_control_area___x {
	u64 exit_code;
} __attribute__((preserve_access_index));

struct vmcb___x {
	struct vmcb_control_area___x control;
} __attribute__((preserve_access_index));

struct vcpu_svm___x {
	struct vmcb___x *vmcb;
} __attribute__((preserve_access_index));

/* PVM (pvm.ko / built in). */
struct vcpu_pvm___x {
	u32 exit_reason;
} __attribute__((preserve_access_index));

#define KVM_ISA_VMX 1
#define KVM_ISA_SVM 2

/* Raw exit reason of the exit being traced, and which vendor decoded it. */
static __always_inline __u64 hv__exit_reason(struct kvm_vcpu *vcpu, __u32 isa, __u32 *vendor)
{
	if (bpf_core_type_exists(struct vcpu_vmx___x) && isa == KVM_ISA_VMX) {
		*vendor = HV_VENDOR_VMX;
		return BPF_CORE_READ((struct vcpu_vmx___x *)vcpu, exit_reason.full);
	}
	if (bpf_core_type_exists(struct vcpu_svm___x) && isa == KVM_ISA_SVM) {
		*vendor = HV_VENDOR_SVM;
		return BPF_CORE_READ((struct vcpu_svm___x *)vcpu, vmcb, control.exit_code);
	}
	if (bpf_core_type_exists(struct vcpu_pvm___x)) {
		*vendor = HV_VENDOR_PVM;
		return BPF_CORE_READ((struct vcpu_pvm___x *)vcpu, exit_reason);
	}
	*vendor = HV_VENDOR_UNKNOWN;
	return 0;
}

/* kvm_vcpu.vcpu_idx exists since Linux 5.13; older kernels report -1. */
static __always_inline __s32 hv__vcpu_idx(struct kvm_vcpu *vcpu)
{
	if (bpf_core_field_exists(vcpu->vcpu_idx))
		return BPF_CORE_READ(vcpu, vcpu_idx);
	return -1;
}

#endif /* HVTEL_KVM_TYPES_BPF_H */
