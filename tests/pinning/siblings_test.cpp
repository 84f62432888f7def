#include "pinning/siblings.h"

#include <gtest/gtest.h>

#include <map>

namespace hvtel::pinning {
namespace {

using V = std::vector<int>;
constexpr uint64_t kS = 1'000'000'000;  // ns per second
constexpr uint64_t kMs = 1'000'000;

// Two cores of two threads: pCPUs 0,1 and 2,3.
const std::map<int, V> kSmt = {{0, {0, 1}}, {1, {0, 1}}, {2, {2, 3}}, {3, {2, 3}}};

// An instance with vCPU 0 dedicated to pCPU 3 under `policy`.
ResolvedIntent on3(const std::string& id, const std::string& policy, V dedicated = {3}) {
  ResolvedIntent r;
  r.instance_id = id;
  r.policy = model::CpuPolicy::kDedicated;
  r.thread_policy = policy;
  r.dedicated = dedicated;
  for (size_t i = 0; i < dedicated.size(); ++i) r.dedicated_vcpus[static_cast<int>(i)] = dedicated[i];
  return r;
}

// pCPU `cpu` busy `busy_ms` of every second since t=0, the others idle, at second `t`.
std::map<int, CpuTimes> at(uint64_t t, int cpu, uint64_t busy_ms) {
  std::map<int, CpuTimes> m;
  for (int c = 0; c < 4; ++c) {
    const uint64_t busy = c == cpu ? t * busy_ms * kMs : 0;
    m[c] = CpuTimes{.idle_ns = t * kS - busy, .total_ns = t * kS};
  }
  return m;
}

TEST(SiblingBusy, ABusySiblingOfAnIsolateInstanceIsAFindingEachSecondItStaysBusy) {
  SiblingBusyDetector d;
  const std::vector<ResolvedIntent> intents = {on3("inst-a", "isolate")};
  ASSERT_TRUE(SiblingBusyDetector::applies(intents, kSmt));
  EXPECT_TRUE(d.sample(intents, kSmt, at(10, 2, 830), 10 * kS).empty());  // no interval yet
  auto f = d.sample(intents, kSmt, at(11, 2, 830), 11 * kS);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].instance_id, "inst-a");
  EXPECT_EQ(f[0].cls, ViolationClass::kThreadPolicy);
  EXPECT_EQ(f[0].cpus, V{2});
  EXPECT_EQ(f[0].detail, "thread_policy=isolate: sibling pCPU 2 of 3 busy 83% of the last 1.0 s");
  // Held until the next judgement, for the instances still there.
  EXPECT_FALSE(d.due(11 * kS + 500 * kMs));
  EXPECT_EQ(d.held(intents), f);
  EXPECT_TRUE(d.held({}).empty());
  EXPECT_TRUE(d.due(12 * kS));
}

TEST(SiblingBusy, HousekeepingOnTheSiblingOrLoadElsewhereIsNoFinding) {
  SiblingBusyDetector d;
  const std::vector<ResolvedIntent> intents = {on3("inst-a", "isolate")};
  d.sample(intents, kSmt, at(10, 2, 90), 10 * kS);
  EXPECT_TRUE(d.sample(intents, kSmt, at(11, 2, 90), 11 * kS).empty());  // 9 % < 10 %
  d.sample(intents, kSmt, at(10, 0, 1000), 12 * kS);
  EXPECT_TRUE(d.sample(intents, kSmt, at(11, 0, 1000), 13 * kS).empty());  // pCPU 0 is no sibling of 3
  // The dedicated pCPU itself is the instance's to use.
  d.sample(intents, kSmt, at(10, 3, 1000), 14 * kS);
  EXPECT_TRUE(d.sample(intents, kSmt, at(11, 3, 1000), 15 * kS).empty());
}

TEST(SiblingBusy, OnlyIsolateReservesSiblingsAndOnlyThoseOutsideItsOwnPcpus) {
  EXPECT_FALSE(SiblingBusyDetector::applies({on3("a", "require")}, kSmt));
  EXPECT_FALSE(SiblingBusyDetector::applies({on3("a", "prefer")}, kSmt));
  EXPECT_FALSE(SiblingBusyDetector::applies({on3("a", "")}, kSmt));
  EXPECT_FALSE(SiblingBusyDetector::applies({on3("a", "isolate", {2, 3})}, kSmt));  // a whole core
  EXPECT_FALSE(SiblingBusyDetector::applies({on3("a", "isolate")}, {}));            // no SMT topology known
  EXPECT_FALSE(SiblingBusyDetector::applies({on3("a", "isolate")}, {{3, {3}}}));    // no SMT
  SiblingBusyDetector d;
  const std::vector<ResolvedIntent> require = {on3("a", "require")};
  d.sample(require, kSmt, at(10, 2, 1000), 10 * kS);
  EXPECT_TRUE(d.sample(require, kSmt, at(11, 2, 1000), 11 * kS).empty());
}

TEST(SiblingBusy, AnOfflineSiblingOrCountersGoingBackAreNoEvidence) {
  SiblingBusyDetector d;
  const std::vector<ResolvedIntent> intents = {on3("inst-a", "isolate")};
  d.sample(intents, kSmt, at(10, 2, 900), 10 * kS);
  auto gone = at(11, 2, 900);
  gone.erase(2);
  EXPECT_TRUE(d.sample(intents, kSmt, gone, 11 * kS).empty());
  d.sample(intents, kSmt, at(20, 2, 900), 12 * kS);
  EXPECT_TRUE(d.sample(intents, kSmt, at(19, 2, 900), 13 * kS).empty());  // back in time: a hotplug reset
}

}  // namespace
}  // namespace hvtel::pinning
