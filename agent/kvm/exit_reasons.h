// Names for exit reasons. The kernel side only computes compact indices
// (hv_reason_index() in abi.h); meaning lives here.
//
// Names are the lower-case kernel UAPI constant names: asm/vmx.h
// EXIT_REASON_* for Intel ("io_instruction"), asm/svm.h SVM_EXIT_* for AMD
// ("ioio", "npf"), linux/kvm.h KVM_EXIT_* for exits to the VMM ("io", "mmio").
// They are label values, i.e. public interface: never rename one.
#pragma once

#include <cstdint>
#include <string>

namespace hvtel::kvm {

// Name of a compact reason index for a vendor (enum hv_vendor). Unknown
// indices get a stable hex form ("svm_0x9e", "vmx_90", "pvm_0x12").
std::string exit_reason_name(uint32_t vendor, uint32_t index);

// Name of a KVM_EXIT_* reason (index HV_USER_EXIT_SLOTS-1 is "other").
std::string userspace_exit_name(uint32_t reason);

// Name of an enum hv_exit_class value: "other", "halt", "io", "mmio".
const char* exit_class_name(uint32_t cls);

// "vmx", "svm", "pvm" or "unknown".
const char* vendor_name(uint32_t vendor);

}  // namespace hvtel::kvm
