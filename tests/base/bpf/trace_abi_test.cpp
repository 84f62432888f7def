// Layout of the structs `hvtel trace exits|runq|upcalls` share with bpf/trace_exits.bpf.c, trace_runq.bpf.c
// and trace_upcalls.bpf.c
// (include/hvtel/abi.h): a change here is an ABI change.
#include <gtest/gtest.h>

#include <cstddef>

#include "hvtel/abi.h"

namespace {

TEST(TraceAbi, ExitEventLayout) {
  EXPECT_EQ(sizeof(hv_trace_exit), 56u);
  EXPECT_EQ(offsetof(hv_trace_exit, ts_ns), 0u);
  EXPECT_EQ(offsetof(hv_trace_exit, latency_ns), 8u);
  EXPECT_EQ(offsetof(hv_trace_exit, raw_reason), 16u);
  EXPECT_EQ(offsetof(hv_trace_exit, tgid), 24u);
  EXPECT_EQ(offsetof(hv_trace_exit, tid), 28u);
  EXPECT_EQ(offsetof(hv_trace_exit, vcpu_idx), 32u);
  EXPECT_EQ(offsetof(hv_trace_exit, cpu), 36u);
  EXPECT_EQ(offsetof(hv_trace_exit, vendor), 40u);
  EXPECT_EQ(offsetof(hv_trace_exit, reason_index), 44u);
  EXPECT_EQ(offsetof(hv_trace_exit, end), 48u);
  EXPECT_EQ(offsetof(hv_trace_exit, user_reason), 52u);
}

TEST(TraceAbi, ConfigAndBucketLayout) {
  EXPECT_EQ(sizeof(hv_trace_config), 40u);
  EXPECT_EQ(offsetof(hv_trace_config, tgid), 0u);
  EXPECT_EQ(offsetof(hv_trace_config, vcpu_idx), 4u);
  EXPECT_EQ(offsetof(hv_trace_config, min_latency_ns), 8u);
  EXPECT_EQ(offsetof(hv_trace_config, rate), 16u);
  EXPECT_EQ(offsetof(hv_trace_config, burst), 24u);
  EXPECT_EQ(offsetof(hv_trace_config, only_user), 32u);
  EXPECT_EQ(offsetof(hv_trace_config, filter_map), 36u);
  EXPECT_EQ(sizeof(hv_trace_bucket), 16u);
}

TEST(TraceAbi, RunqLayout) {
  EXPECT_EQ(sizeof(hv_trace_runq), 40u);
  EXPECT_EQ(offsetof(hv_trace_runq, ts_ns), 0u);
  EXPECT_EQ(offsetof(hv_trace_runq, latency_ns), 8u);
  EXPECT_EQ(offsetof(hv_trace_runq, tgid), 16u);
  EXPECT_EQ(offsetof(hv_trace_runq, tid), 20u);
  EXPECT_EQ(offsetof(hv_trace_runq, vcpu_idx), 24u);
  EXPECT_EQ(offsetof(hv_trace_runq, cpu), 28u);
  EXPECT_EQ(offsetof(hv_trace_runq, kind), 32u);
  EXPECT_EQ(sizeof(hv_trace_runq_thread), 24u);
  EXPECT_EQ(offsetof(hv_trace_runq_thread, since_ns), 0u);
  EXPECT_EQ(offsetof(hv_trace_runq_thread, tgid), 8u);
  EXPECT_EQ(offsetof(hv_trace_runq_thread, vcpu_idx), 12u);
  EXPECT_EQ(offsetof(hv_trace_runq_thread, kind), 16u);
  EXPECT_EQ(HV_RUNQ_WAKEUP, 1);
  EXPECT_EQ(HV_RUNQ_PREEMPT, 2);
}

TEST(TraceAbi, UpcallLayout) {
  EXPECT_EQ(sizeof(hv_trace_upcall), 32u + HV_TRACE_UPCALL_HDR);
  EXPECT_EQ(offsetof(hv_trace_upcall, ts_ns), 0u);
  EXPECT_EQ(offsetof(hv_trace_upcall, netns), 8u);
  EXPECT_EQ(offsetof(hv_trace_upcall, dp_ifindex), 12u);
  EXPECT_EQ(offsetof(hv_trace_upcall, ifindex), 16u);
  EXPECT_EQ(offsetof(hv_trace_upcall, len), 20u);
  EXPECT_EQ(offsetof(hv_trace_upcall, cpu), 24u);
  EXPECT_EQ(offsetof(hv_trace_upcall, port), 28u);
  EXPECT_EQ(offsetof(hv_trace_upcall, cmd), 30u);
  EXPECT_EQ(offsetof(hv_trace_upcall, hdr_len), 31u);
  EXPECT_EQ(offsetof(hv_trace_upcall, hdr), 32u);
  EXPECT_EQ(HV_TRACE_UPCALL_HDR, 64);
}

TEST(TraceAbi, EnumValuesAreFixed) {
  EXPECT_EQ(HV_TRACE_CNT_EMITTED, 0);
  EXPECT_EQ(HV_TRACE_CNT_RATE_LIMITED, 1);
  EXPECT_EQ(HV_TRACE_CNT_RING_FULL, 2);
  EXPECT_EQ(HV_TRACE_CNT_INFLIGHT_FULL, 3);
  EXPECT_EQ(HV_TRACE_CNT_MAX, 4);
  EXPECT_EQ(HV_TRACE_END_ENTRY, 1);
  EXPECT_EQ(HV_TRACE_END_USER, 2);
  // The limits keep the bucket's 64-bit math exact: 16 s of the maximum rate
  // plus a full bucket of the maximum burst, in nano-events.
  EXPECT_LT(16 * HV_NS_PER_SEC * HV_TRACE_MAX_RATE + HV_TRACE_MAX_BURST * HV_NS_PER_SEC,
            18446744073709551615ULL);
}

}  // namespace
