// Pins the ovs_dp map layouts shared with bpf/ovs_dp.bpf.c: keys are hashed
// byte-wise, so no implicit padding, and the agent reads them by these sizes.
#include "hvtel/abi.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <type_traits>

static_assert(sizeof(hv_ovs_upcall_key) == 16);
static_assert(offsetof(hv_ovs_upcall_key, netns) == 0);
static_assert(offsetof(hv_ovs_upcall_key, dp_ifindex) == 4);
static_assert(offsetof(hv_ovs_upcall_key, port) == 8);
static_assert(offsetof(hv_ovs_upcall_key, cmd) == 12);
static_assert(sizeof(hv_ovs_upcall_val) == 16);
static_assert(offsetof(hv_ovs_upcall_val, failures) == 8);
static_assert(sizeof(hv_ovs_flow_key) == 16);
static_assert(offsetof(hv_ovs_flow_key, op) == 8);
static_assert(offsetof(hv_ovs_flow_key, ok) == 12);
static_assert(sizeof(hv_ovs_upcall_stash) == 24);
static_assert(sizeof(hv_ovs_flow_stash) == 8);
static_assert(std::is_trivially_copyable_v<hv_ovs_upcall_key>);
static_assert(std::is_trivially_copyable_v<hv_ovs_flow_key>);

TEST(OvsDpAbi, ConstantsMatchTheUapi) {
  // OVS_PACKET_CMD_MISS / _ACTION in linux/openvswitch.h.
  EXPECT_EQ(HV_OVS_UPCALL_MISS, 1);
  EXPECT_EQ(HV_OVS_UPCALL_ACTION, 2);
  EXPECT_EQ(HV_OVS_OP_NEW, 0);
  EXPECT_EQ(HV_OVS_OP_SET, 1);
  EXPECT_EQ(HV_OVS_OP_DEL, 2);
  EXPECT_LE(HV_OVS_CNT_UNATTRIBUTED, HV_OVS_CNT_MAX - 1);
}
