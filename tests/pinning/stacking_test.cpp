#include "pinning/stacking.h"

#include <gtest/gtest.h>

#include <map>

namespace hvtel::pinning {
namespace {

using V = std::vector<int>;
using model::CpuPolicy;
constexpr uint64_t kS = 1'000'000'000;  // ns per second
constexpr uint64_t kMs = 1'000'000;

TEST(ProcStatCpus, IdleIsIdlePlusIowaitAndTotalLeavesOutGuestTime) {
  // USER_HZ 100: one tick is 10 ms.
  auto t = parse_proc_stat_cpus(
      "cpu  10 0 10 170 10 0 0 0 0 0\n"
      "cpu0 5 0 5 80 5 0 0 0 0 0\n"
      "cpu1 5 1 5 90 5 2 3 4 50 60\n"
      "intr 12345 0 0\nctxt 999\n",
      100);
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ(t->at(0).idle_ns, 850 * kMs);
  EXPECT_EQ(t->at(0).total_ns, 950 * kMs);
  EXPECT_EQ(t->at(1).idle_ns, 950 * kMs);
  EXPECT_EQ(t->at(1).total_ns, 1150 * kMs);  // guest (50) and guest_nice (60) are in user/nice already
}

TEST(ProcStatCpus, MalformedTextIsAnErrorNamingTheLine) {
  auto bad = parse_proc_stat_cpus("cpu0 5 x 5 80 5\n", 100);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "/proc/stat: malformed line 'cpu0 5 x 5 80 5'");
  EXPECT_FALSE(parse_proc_stat_cpus("cpu0 5 0 5\n", 100));              // no idle/iowait
  EXPECT_FALSE(parse_proc_stat_cpus("cpu  1 2 3 4 5\nintr 1\n", 100));  // no cpuN line
  EXPECT_FALSE(parse_proc_stat_cpus("cpu0 1 2 3 4 5\n", 0));
}

// A floating instance with vCPUs 0-2 (tids 101-103) over pCPUs `cpuset`.
ResolvedIntent floating(const std::string& id, const V& cpuset, int vcpus = 3) {
  ResolvedIntent r;
  r.instance_id = id;
  r.pid = 100;
  r.policy = CpuPolicy::kShared;
  r.floating = {PinPart{"vcpu cpuset", cpuset}};
  for (int i = 0; i < vcpus; ++i)
    r.threads.push_back({101 + i, ThreadRole::kVcpu, i, cpuset, AllowedSource::kVcpuCpuset, {}});
  r.threads.push_back({100, ThreadRole::kEmulator, -1, cpuset, AllowedSource::kVcpuCpuset, {}});
  return r;
}

class Stacking : public ::testing::Test {
 protected:
  VcpuRunFn run() {
    return [this](pid_t tid) -> std::optional<VcpuRun> {
      auto it = vcpus.find(tid);
      return it == vcpus.end() ? std::nullopt : std::optional<VcpuRun>(it->second);
    };
  }
  // Advances every pCPU by one second, `idle_ms` of it idle.
  void tick(const std::map<int, uint64_t>& idle_ms) {
    for (auto& [c, t] : cpus) {
      t.total_ns += kS;
      auto it = idle_ms.find(c);
      t.idle_ns += (it == idle_ms.end() ? 0 : it->second) * kMs;
    }
    now += kS;
  }
  std::map<pid_t, VcpuRun> vcpus;
  std::map<int, CpuTimes> cpus = {{0, {}}, {1, {}}, {2, {}}, {3, {}}};
  uint64_t now = 10 * kS;
  StackingDetector det;
};

TEST_F(Stacking, TwoWaitingVcpusOnOnePcpuWhileAnotherIdlesIsOneFinding) {
  ResolvedIntent a = floating("inst-a", {0, 1, 2});
  vcpus = {{101, {1, 0}}, {102, {1, 0}}, {103, {2, 0}}};
  EXPECT_TRUE(det.sample({a}, run(), cpus, now).empty());  // the first sample has no interval

  tick({{0, 970}, {3, 1000}});
  vcpus = {{101, {1, 490 * kMs}}, {102, {1, 480 * kMs}}, {103, {2, 0}}};
  auto f = det.sample({a}, run(), cpus, now);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].instance_id, "inst-a");
  EXPECT_EQ(f[0].cls, ViolationClass::kFloatingStacking);
  EXPECT_EQ(f[0].cpus, (V{1}));
  // pCPU 3 idled more, but it is not in their cpuset.
  EXPECT_EQ(f[0].detail,
            "vcpus 0,1 stacked on pCPU 1 (waited 49%,48%) while pCPU 0 of their cpuset 0-2 idled 97%");

  // Within the second the judgement holds, without a new sample (reconciles run every 250 ms).
  EXPECT_FALSE(det.due(now + 999 * kMs));
  EXPECT_TRUE(det.due(now + kS));
  auto held = det.held({a});
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].detail, f[0].detail);
  EXPECT_TRUE(det.held({}).empty());  // not for an instance that is gone

  // Spread again: vCPU 1 moved to pCPU 0 and no longer waits.
  tick({{3, 1000}});
  vcpus = {{101, {1, 500 * kMs}}, {102, {0, 480 * kMs}}, {103, {2, 0}}};
  EXPECT_TRUE(det.sample({a}, run(), cpus, now).empty());
}

TEST_F(Stacking, NotWhenTheOtherPcpusAreBusyOrOnlyOneVcpuWaits) {
  ResolvedIntent a = floating("inst-a", {0, 1});
  vcpus = {{101, {1, 0}}, {102, {1, 0}}, {103, {1, 0}}};
  det.sample({a}, run(), cpus, now);
  // Three vCPUs waiting on pCPU 1, but pCPU 0 idled only 40 %: an overcommitted host, not stacking.
  tick({{0, 400}});
  vcpus = {{101, {1, 600 * kMs}}, {102, {1, 600 * kMs}}, {103, {1, 600 * kMs}}};
  EXPECT_TRUE(det.sample({a}, run(), cpus, now).empty());
  // pCPU 0 idle, but only vCPU 0 waited 10 % or more (vCPU 1 waited 9 %).
  tick({{0, 1000}});
  vcpus = {{101, {1, 800 * kMs}}, {102, {1, 690 * kMs}}, {103, {1, 600 * kMs}}};
  EXPECT_TRUE(det.sample({a}, run(), cpus, now).empty());
}

TEST_F(Stacking, DedicatedVcpusAndSinglePcpuSetsAreNotFloating) {
  ResolvedIntent d = floating("inst-d", {0, 1});
  d.policy = CpuPolicy::kMixed;
  d.dedicated_vcpus = {{0, 1}, {1, 1}};  // vCPUs 0 and 1 dedicated (overlapping, PV3's business)
  d.dedicated = {1};
  ResolvedIntent one = floating("inst-one", {1}, 2);
  for (auto& t : one.threads) t.tid += 10;  // tids 111, 112
  vcpus = {{101, {1, 0}}, {102, {1, 0}}, {103, {1, 0}}, {111, {1, 0}}, {112, {1, 0}}};
  det.sample({d, one}, run(), cpus, now);
  tick({{0, 1000}, {2, 1000}});
  vcpus = {{101, {1, 500 * kMs}},
           {102, {1, 500 * kMs}},
           {103, {1, 500 * kMs}},
           {111, {1, 500 * kMs}},
           {112, {1, 500 * kMs}}};
  // inst-d: only vCPU 2 floats; inst-one: pinned to pCPU 1 by its own cpuset, nowhere else to go.
  EXPECT_TRUE(det.sample({d, one}, run(), cpus, now).empty());
}

TEST_F(Stacking, ANewVcpuOrAWaitCounterGoingBackIsNoEvidence) {
  ResolvedIntent a = floating("inst-a", {0, 1}, 2);
  vcpus = {{101, {1, 900 * kMs}}};
  det.sample({a}, run(), cpus, now);
  // 102 appears (a new thread in the slot): no previous value, so no interval for it.
  tick({{0, 1000}});
  vcpus = {{101, {1, 1400 * kMs}}, {102, {1, 500 * kMs}}};
  EXPECT_TRUE(det.sample({a}, run(), cpus, now).empty());
  // 101's counter reads lower than before (a torn read): clamped, so it waited 0.
  tick({{0, 1000}});
  vcpus = {{101, {1, 1300 * kMs}}, {102, {1, 1000 * kMs}}};
  EXPECT_TRUE(det.sample({a}, run(), cpus, now).empty());
  // Both wait again: measured from the clamped 1400 ms.
  tick({{0, 1000}});
  vcpus = {{101, {1, 1900 * kMs}}, {102, {1, 1500 * kMs}}};
  auto f = det.sample({a}, run(), cpus, now);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].detail,
            "vcpus 0,1 stacked on pCPU 1 (waited 50%,50%) while pCPU 0 of their cpuset 0-1 idled 100%");
}

}  // namespace
}  // namespace hvtel::pinning
