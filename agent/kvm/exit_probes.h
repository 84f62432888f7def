// The vcpu_exits BPF object: its hooks (one attach variant each is chosen at
// load time) and its configuration.
#pragma once

#include <cstdint>

#include "base/bpf/object.h"
#include "hvtel/abi.h"

namespace hvtel::kvm {

struct ExitProbeOptions {
  uint32_t max_vcpus = HV_MAX_VCPU_SLOTS_DEFAULT;
  // kvm_fpu marks the VMM's return into KVM_RUN. Where kvm_entry fires (VMX,
  // SVM) the first entry after an exit to userspace marks it for free, so the
  // hook is left out there: two programs fewer per exit to the VMM.
  bool kvm_run_marker = true;
};

// Whether this kernel needs the kvm_fpu marker: not when the KVM vendor
// module's vCPU type (vcpu_vmx, vcpu_svm) is in BTF, i.e. kvm_entry fires.
bool needs_kvm_run_marker(const bpf::KernelBtf& btf);

bpf::ObjectSpec exit_object_spec(const ExitProbeOptions& opts);

}  // namespace hvtel::kvm
