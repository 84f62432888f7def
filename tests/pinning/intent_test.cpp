#include "pinning/intent.h"

#include <gtest/gtest.h>

namespace hvtel::pinning {
namespace {

using V = std::vector<int>;
using model::CpuPolicy;

HostPolicy nova(V dedicated, V shared) {
  HostPolicy p;
  p.cpu_dedicated_set = std::move(dedicated);
  p.cpu_shared_set = std::move(shared);
  return p;
}

model::Instance pinned(std::string id, std::map<int, V> pins) {
  model::Instance i;
  i.instance_id = std::move(id);
  i.pid = 100;
  i.vcpus = static_cast<int>(pins.size());
  i.intent.vcpu_pins = std::move(pins);
  for (int v = 0; v < i.vcpus; ++v) i.vcpu_threads.push_back({101 + v, v});
  i.emulator_threads.push_back({100, -1});
  return i;
}

TEST(Intent, InfersDedicatedFromSinglePinsInsideTheSet) {
  auto inst = pinned("a", {{0, {6}}, {1, {30}}});
  auto r = resolve_intent(inst, nova({4, 5, 6, 30, 31}, {1, 2}), {});
  EXPECT_EQ(r.policy, CpuPolicy::kDedicated);
  EXPECT_TRUE(r.inferred);
  EXPECT_EQ(r.dedicated, (V{6, 30}));
  EXPECT_EQ(r.dedicated_vcpus, (std::map<int, int>{{0, 6}, {1, 30}}));
  EXPECT_TRUE(r.floating.empty());
}

TEST(Intent, DoesNotInferDedicatedOutsideTheSet) {
  auto inst = pinned("a", {{0, {6}}, {1, {2}}});
  auto r = resolve_intent(inst, nova({4, 5, 6}, {1, 2}), {});
  EXPECT_EQ(r.policy, CpuPolicy::kShared);
  EXPECT_TRUE(r.inferred);
  EXPECT_TRUE(r.dedicated.empty());
  ASSERT_EQ(r.floating.size(), 2u);
  EXPECT_EQ(r.floating[0].what, "vcpupin 0");
  EXPECT_EQ(r.floating[1].what, "vcpupin 1");
}

TEST(Intent, DoesNotInferFromPartialOrSharedOrMultiPins) {
  auto partial = pinned("a", {{0, {4}}});
  partial.vcpus = 2;
  EXPECT_EQ(resolve_intent(partial, nova({4, 5}, {1}), {}).policy, CpuPolicy::kShared);
  auto same = pinned("b", {{0, {4}}, {1, {4}}});
  EXPECT_EQ(resolve_intent(same, nova({4, 5}, {1}), {}).policy, CpuPolicy::kShared);
  auto multi = pinned("c", {{0, {4, 5}}});
  EXPECT_EQ(resolve_intent(multi, nova({4, 5}, {1}), {}).policy, CpuPolicy::kShared);
}

TEST(Intent, WithoutNovaConfSinglePinsMeanDedicated) {
  auto inst = pinned("a", {{0, {1}}});
  auto r = resolve_intent(inst, HostPolicy{}, {0, 1});
  EXPECT_EQ(r.policy, CpuPolicy::kDedicated);
  EXPECT_TRUE(r.inferred);
  EXPECT_EQ(r.dedicated, (V{1}));
}

TEST(Intent, ExtraSpecAndExplicitPolicyWin) {
  auto inst = pinned("a", {{0, {1}}, {1, {2}}});
  inst.nova = model::NovaInfo{};
  inst.nova->extra_specs["hw:cpu_policy"] = "shared";
  inst.nova->extra_specs["hw:emulator_threads_policy"] = "share";
  inst.nova->extra_specs["hw:cpu_thread_policy"] = "require";
  auto r = resolve_intent(inst, nova({1, 2}, {0}), {});
  EXPECT_EQ(r.policy, CpuPolicy::kShared);
  EXPECT_FALSE(r.inferred);
  EXPECT_EQ(r.emulator_policy, "share");
  EXPECT_EQ(r.thread_policy, "require");
  inst.intent.thread_policy = "isolate";  // an inventory's word beats the extra spec
  EXPECT_EQ(resolve_intent(inst, nova({1, 2}, {0}), {}).thread_policy, "isolate");
  inst.intent.policy = CpuPolicy::kDedicated;  // the source's word beats the extra spec
  r = resolve_intent(inst, nova({1, 2}, {0}), {});
  EXPECT_EQ(r.policy, CpuPolicy::kDedicated);
  EXPECT_EQ(r.dedicated, (V{1, 2}));
}

TEST(Intent, ExplicitDedicatedKeepsPinsOutsideTheSetInD) {
  auto inst = pinned("a", {{0, {2}}});
  inst.intent.policy = CpuPolicy::kDedicated;
  auto r = resolve_intent(inst, nova({4, 5}, {1, 2}), {});
  EXPECT_EQ(r.dedicated, (V{2}));
}

TEST(Intent, MixedSplitsDedicatedAndFloatingVcpus) {
  auto inst = pinned("a", {{0, {4}}, {1, {1}}, {2, {1, 2}}});
  inst.intent.policy = CpuPolicy::kMixed;
  auto r = resolve_intent(inst, nova({4, 5}, {1, 2}), {});
  EXPECT_EQ(r.dedicated, (V{4}));
  EXPECT_EQ(r.dedicated_vcpus, (std::map<int, int>{{0, 4}}));
  ASSERT_EQ(r.floating.size(), 2u);
  EXPECT_EQ(r.floating[0].what, "vcpupin 1");
  EXPECT_EQ(r.floating[1].what, "vcpupin 2");
  EXPECT_EQ(r.floating[1].cpus, (V{1, 2}));
}

TEST(Intent, PerThreadAllowedSets) {
  model::Instance inst;
  inst.instance_id = "a";
  inst.pid = 100;
  inst.vcpus = 3;
  inst.intent.vcpu_pins = {{0, {4}}};
  inst.intent.vcpu_cpuset = {1, 2};
  inst.intent.iothread_pins = {{1, {3}}};
  inst.vcpu_threads = {{101, 0}, {102, 1}, {103, -1}};
  inst.emulator_threads = {{100, -1}};
  inst.iothreads = {{110, 1}, {111, 2}};
  auto r = resolve_intent(inst, HostPolicy{}, {0, 1, 2, 3, 4, 5});
  ASSERT_EQ(r.threads.size(), 6u);
  auto check = [&](size_t i, pid_t tid, ThreadRole role, int index, V allowed,
                   AllowedSource src) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r.threads[i].tid, tid);
    EXPECT_EQ(r.threads[i].role, role);
    EXPECT_EQ(r.threads[i].index, index);
    EXPECT_EQ(r.threads[i].allowed, allowed);
    EXPECT_EQ(r.threads[i].source, src);
  };
  check(0, 101, ThreadRole::kVcpu, 0, {4}, AllowedSource::kPin);
  check(1, 102, ThreadRole::kVcpu, 1, {1, 2}, AllowedSource::kVcpuCpuset);
  check(2, 103, ThreadRole::kVcpu, -1, {}, AllowedSource::kUnknown);
  check(3, 100, ThreadRole::kEmulator, -1, {1, 2}, AllowedSource::kVcpuCpuset);
  check(4, 110, ThreadRole::kIothread, 1, {3}, AllowedSource::kPin);
  check(5, 111, ThreadRole::kIothread, 2, {1, 2}, AllowedSource::kVcpuCpuset);

  inst.intent.vcpu_cpuset.clear();
  r = resolve_intent(inst, HostPolicy{}, {0, 1, 2, 3, 4, 5});
  check(1, 102, ThreadRole::kVcpu, 1, {0, 1, 2, 3, 4, 5}, AllowedSource::kHostCpus);
  r = resolve_intent(inst, HostPolicy{}, {});
  check(1, 102, ThreadRole::kVcpu, 1, {}, AllowedSource::kUnknown);
}

TEST(Intent, VcpuNumaNodesFromTheCellMemnodeElseTheMemoryNodeset) {
  model::Instance inst = pinned("a", {{0, {1}}, {1, {5}}, {2, {2}}});
  inst.pid = 100;
  inst.intent.vcpu_cells = {{0, 0}, {1, 1}, {2, 2}};
  inst.intent.numa_memnodes = {{0, {0}}, {1, {1}}};  // cell 2 has no memnode
  inst.intent.numa_nodeset = {0, 1};
  inst.vcpu_threads = {{101, 0}, {102, 1}, {103, 2}, {104, -1}};
  inst.emulator_threads = {{100, -1}};
  auto r = resolve_intent(inst, HostPolicy{}, {0, 1, 2, 3, 4, 5});
  ASSERT_EQ(r.threads.size(), 5u);
  EXPECT_EQ(r.threads[0].numa_nodes, (V{0}));
  EXPECT_EQ(r.threads[1].numa_nodes, (V{1}));
  EXPECT_EQ(r.threads[2].numa_nodes, (V{0, 1}));
  EXPECT_TRUE(r.threads[3].numa_nodes.empty());  // index unknown
  EXPECT_TRUE(r.threads[4].numa_nodes.empty());  // the emulator is not a vCPU
  inst.intent.numa_nodeset.clear();
  r = resolve_intent(inst, HostPolicy{}, {0, 1, 2, 3, 4, 5});
  EXPECT_TRUE(r.threads[2].numa_nodes.empty());  // no binding at all
}

TEST(Intent, OnlyInstancesWithIntentAreTracked) {
  model::Instance none;
  none.instance_id = "none";
  model::Instance spec;
  spec.instance_id = "spec";
  spec.nova = model::NovaInfo{};
  spec.nova->extra_specs["hw:cpu_policy"] = "dedicated";
  auto pins = pinned("pins", {{0, {1}}});
  EXPECT_FALSE(has_intent(none));
  EXPECT_TRUE(has_intent(spec));
  auto all = resolve_intents({none, spec, pins}, HostPolicy{}, {});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].instance_id, "spec");
  EXPECT_EQ(all[0].policy, CpuPolicy::kDedicated);
  EXPECT_EQ(all[1].instance_id, "pins");
}

}  // namespace
}  // namespace hvtel::pinning
