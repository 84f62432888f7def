// Pins the kernel/user ABI: a layout change here must come with an
// HV_ABI_VERSION bump (see the rules at the top of include/hvtel/abi.h).
#include "hvtel/abi.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <type_traits>

static_assert(HV_ABI_VERSION == 1);

static_assert(sizeof(hv_control) == 16);
static_assert(offsetof(hv_control, threads_gen) == 0);
static_assert(offsetof(hv_control, switch_cache) == 4);
static_assert(offsetof(hv_control, vmm_timing_off) == 8);
static_assert(sizeof(hv_thread) == 24);
static_assert(offsetof(hv_thread, slot) == 0);
static_assert(offsetof(hv_thread, role) == 4);
static_assert(offsetof(hv_thread, tgid) == 8);
static_assert(offsetof(hv_thread, instance) == 12);
static_assert(offsetof(hv_thread, vcpu_index) == 16);

static_assert(sizeof(hv_new_thread) == 32);
static_assert(offsetof(hv_new_thread, tgid) == 0);
static_assert(offsetof(hv_new_thread, slot) == 4);
static_assert(offsetof(hv_new_thread, vcpu_id) == 8);
static_assert(offsetof(hv_new_thread, vcpu_idx) == 12);
static_assert(offsetof(hv_new_thread, vmm_pid) == 16);
static_assert(offsetof(hv_new_thread, first_ns) == 24);

// The hot fields share the first cache line; counters follow.
static_assert(offsetof(hv_vcpu, exit_ns) == 0);
static_assert(offsetof(hv_vcpu, user_exit_ns) == 8);
static_assert(offsetof(hv_vcpu, exit_class) == 16);
static_assert(offsetof(hv_vcpu, exits) == 64);
static_assert(offsetof(hv_vcpu, user_exits) == 64 + 8 * HV_EXIT_REASON_SLOTS);
static_assert(offsetof(hv_vcpu, handle_hist) == offsetof(hv_vcpu, user_exits) + 8 * HV_USER_EXIT_SLOTS);
static_assert(sizeof(hv_vcpu) == 64 + 8 * (HV_EXIT_REASON_SLOTS + HV_USER_EXIT_SLOTS +
                                           HV_EXIT_CLASSES * HV_HIST_SLOTS + HV_EXIT_CLASSES +
                                           HV_HIST_SLOTS + 1 + 3));
static_assert(sizeof(hv_vcpu) % 64 == 0, "slots must not share cache lines");

static_assert(std::is_trivially_copyable_v<hv_thread>);
static_assert(std::is_trivially_copyable_v<hv_new_thread>);
static_assert(std::is_trivially_copyable_v<hv_vcpu>);

// Masks used as bounds in the BPF programs.
static_assert((HV_EXIT_REASON_SLOTS & (HV_EXIT_REASON_SLOTS - 1)) == 0);
static_assert((HV_HIST_SLOTS & (HV_HIST_SLOTS - 1)) == 0);
static_assert((HV_EXIT_CLASSES & (HV_EXIT_CLASSES - 1)) == 0);

TEST(Abi, Log2Slot) {
  EXPECT_EQ(hv_log2_slot(0), 0u);
  EXPECT_EQ(hv_log2_slot(1), 0u);
  EXPECT_EQ(hv_log2_slot(2), 1u);
  EXPECT_EQ(hv_log2_slot(3), 1u);
  EXPECT_EQ(hv_log2_slot(1023), 9u);
  EXPECT_EQ(hv_log2_slot(1024), 10u);
  EXPECT_EQ(hv_log2_slot(2'000'000), 20u);  // 2 ms
  EXPECT_EQ(hv_log2_slot(1ULL << 40), 40u);
  EXPECT_EQ(hv_log2_slot(~0ULL), 63u);
}

TEST(Abi, ReasonIndexVmx) {
  EXPECT_EQ(hv_reason_index(HV_VENDOR_VMX, 30), 30u);            // IO_INSTRUCTION
  EXPECT_EQ(hv_reason_index(HV_VENDOR_VMX, 0x0800'0000 | 48), 48u);  // high flag bits dropped
  EXPECT_EQ(hv_reason_index(HV_VENDOR_VMX, 0x8000'0021), uint32_t{HV_REASON_ERR});
  EXPECT_EQ(hv_reason_index(HV_VENDOR_VMX, 0x1ff), uint32_t{HV_REASON_OTHER});
}

TEST(Abi, ReasonIndexSvm) {
  EXPECT_EQ(hv_reason_index(HV_VENDOR_SVM, 0x7b), 0x7bu);   // IOIO
  EXPECT_EQ(hv_reason_index(HV_VENDOR_SVM, 0x400), 0xe0u);  // NPF
  EXPECT_EQ(hv_reason_index(HV_VENDOR_SVM, 0x403), 0xe3u);  // VMGEXIT
  EXPECT_EQ(hv_reason_index(HV_VENDOR_SVM, ~0ULL), uint32_t{HV_REASON_ERR});
  EXPECT_EQ(hv_reason_index(HV_VENDOR_SVM, 0x8000'0001), uint32_t{HV_REASON_OTHER});
}

TEST(Abi, ExitClass) {
  EXPECT_EQ(hv_exit_class(HV_VENDOR_SVM, 0x78), uint32_t{HV_CLASS_HALT});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_SVM, 0x7b), uint32_t{HV_CLASS_IO});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_SVM, 0xe0), uint32_t{HV_CLASS_MMIO});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_SVM, 0x60), uint32_t{HV_CLASS_OTHER});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_VMX, 12), uint32_t{HV_CLASS_HALT});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_VMX, 30), uint32_t{HV_CLASS_IO});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_VMX, 48), uint32_t{HV_CLASS_MMIO});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_VMX, 49), uint32_t{HV_CLASS_MMIO});
  EXPECT_EQ(hv_exit_class(HV_VENDOR_PVM, 12), uint32_t{HV_CLASS_OTHER});
}
