#include "kvm/exit_reasons.h"

#include <gtest/gtest.h>

#include "hvtel/abi.h"

using hvtel::kvm::exit_reason_name;
using hvtel::kvm::userspace_exit_name;

TEST(ExitReasons, SvmNamesByIndex) {
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, 0x7b)), "ioio");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, 0x78)), "hlt");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, 0x400)), "npf");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, 0x60)), "intr");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, 0x7c)), "msr");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, 0x4e)), "excp_pf");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, ~0ULL)), "err");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, hv_reason_index(HV_VENDOR_SVM, 0x9e)), "svm_0x9e");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_SVM, HV_REASON_OTHER), "other");
}

TEST(ExitReasons, VmxNames) {
  EXPECT_EQ(exit_reason_name(HV_VENDOR_VMX, 30), "io_instruction");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_VMX, 12), "hlt");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_VMX, 48), "ept_violation");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_VMX, 1), "external_interrupt");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_VMX, HV_REASON_ERR), "failed_vmentry");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_VMX, 90), "vmx_90");
}

TEST(ExitReasons, OtherVendors) {
  EXPECT_EQ(exit_reason_name(HV_VENDOR_PVM, 0x10), "pvm_0x10");
  EXPECT_EQ(exit_reason_name(HV_VENDOR_UNKNOWN, 7), "reason_7");
}

TEST(ExitReasons, Userspace) {
  EXPECT_EQ(userspace_exit_name(2), "io");
  EXPECT_EQ(userspace_exit_name(5), "hlt");
  EXPECT_EQ(userspace_exit_name(6), "mmio");
  EXPECT_EQ(userspace_exit_name(8), "shutdown");
  EXPECT_EQ(userspace_exit_name(10), "intr");
  EXPECT_EQ(userspace_exit_name(39), "memory_fault");
  EXPECT_EQ(userspace_exit_name(50), "kvm_exit_50");
  EXPECT_EQ(userspace_exit_name(HV_USER_EXIT_SLOTS - 1), "other");
  EXPECT_EQ(userspace_exit_name(HV_USER_EXIT_ERROR), "error");
}

// KVM_RUN that fails leaves run->exit_reason stale: the VMM that stopped a
// storm with immediate_exit saw EINTR, not one more "io" exit.
TEST(ExitReasons, UserspaceSlotOfAFailedKvmRun) {
  EXPECT_EQ(hv_user_exit_slot(2, 0), 2u);                     // io
  EXPECT_EQ(hv_user_exit_slot(2, -4), uint32_t{HV_KVM_EXIT_INTR});  // EINTR, stale io
  EXPECT_EQ(hv_user_exit_slot(2, -11), uint32_t{HV_KVM_EXIT_INTR}); // EAGAIN
  EXPECT_EQ(hv_user_exit_slot(2, -14), uint32_t{HV_USER_EXIT_ERROR});  // EFAULT
  EXPECT_EQ(hv_user_exit_slot(70, 0), uint32_t{HV_USER_EXIT_OTHER});
  EXPECT_EQ(userspace_exit_name(hv_user_exit_slot(2, -4)), "intr");
}

TEST(ExitReasons, ClassNames) {
  EXPECT_STREQ(hvtel::kvm::exit_class_name(HV_CLASS_HALT), "halt");
  EXPECT_STREQ(hvtel::kvm::exit_class_name(HV_CLASS_IO), "io");
  EXPECT_STREQ(hvtel::kvm::exit_class_name(HV_CLASS_MMIO), "mmio");
  EXPECT_STREQ(hvtel::kvm::exit_class_name(HV_CLASS_OTHER), "other");
}
