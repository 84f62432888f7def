#include "pinning/static_checks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace hvtel::pinning {
namespace {

using V = std::vector<int>;
using model::CpuPolicy;

class FakeReader : public PlacementReader {
 public:
  std::map<pid_t, ThreadPlacement> threads;
  std::optional<ThreadPlacement> read(pid_t, pid_t tid) const override {
    auto it = threads.find(tid);
    if (it == threads.end()) return std::nullopt;
    return it->second;
  }
};

ResolvedIntent dedicated(std::string id, std::map<int, int> vcpu_to_pcpu) {
  ResolvedIntent r;
  r.instance_id = std::move(id);
  r.pid = 100;
  r.policy = CpuPolicy::kDedicated;
  r.dedicated_vcpus = vcpu_to_pcpu;
  for (const auto& [v, p] : vcpu_to_pcpu) r.dedicated.push_back(p);
  std::sort(r.dedicated.begin(), r.dedicated.end());
  return r;
}

ResolvedIntent shared(std::string id, std::vector<PinPart> parts) {
  ResolvedIntent r;
  r.instance_id = std::move(id);
  r.pid = 200;
  r.policy = CpuPolicy::kShared;
  r.floating = std::move(parts);
  return r;
}

TEST(AffinityDrift, ReportsAffinityAndCgroupDriftWithDetail) {
  ResolvedIntent a = dedicated("inst-a", {{0, 1}});
  a.threads = {{101, ThreadRole::kVcpu, 0, {1}, AllowedSource::kPin},
               {100, ThreadRole::kEmulator, -1, {0}, AllowedSource::kPin},
               {110, ThreadRole::kIothread, 1, {0}, AllowedSource::kPin},
               {120, ThreadRole::kVcpu, 1, {0, 1}, AllowedSource::kHostCpus},
               {130, ThreadRole::kVcpu, -1, {}, AllowedSource::kUnknown}};
  FakeReader reader;
  reader.threads[101] = {{0}, V{0, 1}, "/machine/qemu-1-a.libvirt-qemu/vcpu0", true};
  reader.threads[100] = {{0}, V{0, 1}, "/system.slice", false};  // superset cgroup: fine
  reader.threads[110] = {{0}, V{1}, "/system.slice", false};     // cgroup lacks the pin
  reader.threads[120] = {{1}, std::nullopt, "", false};          // undeclared: not checked
  reader.threads[130] = {{1}, std::nullopt, "", false};

  auto f = check_affinity_drift({a}, reader);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], (Finding{"inst-a", ViolationClass::kAffinityDrift, 101, 0, {0},
                           "tid=101 vcpu=0 expected=1 actual=0 via=affinity"}));
  EXPECT_EQ(f[1], (Finding{"inst-a", ViolationClass::kAffinityDrift, 101, 0, {0, 1},
                           "tid=101 vcpu=0 expected=1 actual=0-1 "
                           "via=cgroup:/machine/qemu-1-a.libvirt-qemu/vcpu0"}));
  EXPECT_EQ(f[2], (Finding{"inst-a", ViolationClass::kAffinityDrift, 110, -1, {1},
                           "tid=110 iothread=1 expected=0 actual=1 via=cgroup:/system.slice"}));

  CheckOptions all;
  all.check_undeclared_threads = true;
  f = check_affinity_drift({a}, reader, all);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[3].detail, "tid=120 vcpu=1 expected=0-1 actual=1 via=affinity");
}

TEST(AffinityDrift, NoFindingWhenPlacementMatchesOrThreadIsGone) {
  ResolvedIntent a = dedicated("inst-a", {{0, 1}});
  a.threads = {{101, ThreadRole::kVcpu, 0, {1}, AllowedSource::kPin},
               {102, ThreadRole::kVcpu, 1, {2}, AllowedSource::kPin}};
  FakeReader reader;
  reader.threads[101] = {{1}, V{1}, "/machine/x/vcpu0", true};
  EXPECT_TRUE(check_affinity_drift({a}, reader).empty());
}

TEST(DedicatedOverlap, DedicatedVsDedicatedReportsBothOnce) {
  auto a = dedicated("inst-a", {{0, 4}, {1, 5}});
  auto b = dedicated("inst-b", {{0, 5}, {1, 6}});
  auto c = dedicated("inst-c", {{0, 7}});
  auto f = check_dedicated_overlap({a, b, c});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], (Finding{"inst-a", ViolationClass::kDedicatedOverlap, 0, -1, {5},
                           "dedicated overlaps dedicated of inst-b on 5"}));
  EXPECT_EQ(f[1], (Finding{"inst-b", ViolationClass::kDedicatedOverlap, 0, -1, {5},
                           "dedicated overlaps dedicated of inst-a on 5"}));
}

TEST(DedicatedOverlap, DedicatedVsOtherInstancesFloatingSets) {
  auto a = dedicated("inst-a", {{0, 4}, {1, 5}, {2, 6}});
  auto b = dedicated("inst-b", {{0, 8}});
  b.floating = {{"emulatorpin", {6, 8}}, {"iothreadpin 1", {1}}};
  auto s = shared("inst-s", {{"vcpu cpuset", {1, 2, 3, 4, 5}}});
  // a's own emulator on its own pCPUs is not an overlap.
  a.floating = {{"emulatorpin", {4, 5, 6}}};
  auto f = check_dedicated_overlap({a, b, s});
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].instance_id, "inst-a");
  EXPECT_EQ(f[0].detail, "dedicated overlaps emulatorpin of inst-b on 6");
  EXPECT_EQ(f[0].cpus, (V{6}));
  EXPECT_EQ(f[1].instance_id, "inst-b");
  EXPECT_EQ(f[1].detail, "emulatorpin overlaps dedicated of inst-a on 6");
  EXPECT_EQ(f[2].instance_id, "inst-a");
  EXPECT_EQ(f[2].detail, "dedicated overlaps vcpu cpuset of inst-s on 4-5");
  EXPECT_EQ(f[2].cpus, (V{4, 5}));
  EXPECT_EQ(f[3].instance_id, "inst-s");
  EXPECT_EQ(f[3].detail, "vcpu cpuset overlaps dedicated of inst-a on 4-5");
}

TEST(DedicatedOverlap, DisjointInstancesAreClean) {
  auto a = dedicated("inst-a", {{0, 4}});
  auto b = dedicated("inst-b", {{0, 5}});
  auto s = shared("inst-s", {{"vcpu cpuset", {1, 2}}});
  EXPECT_TRUE(check_dedicated_overlap({a, b, s}).empty());
}

TEST(SharedOnDedicated, DeclaredSetsIntersectingTheDedicatedSet) {
  HostPolicy p;
  p.cpu_dedicated_set = V{4, 5, 6, 7};
  p.cpu_shared_set = V{1, 2, 3};
  auto s = shared("inst-s", {{"vcpu cpuset", {1, 2, 3}}, {"emulatorpin", {3, 4}}});
  auto ok = shared("inst-ok", {{"vcpu cpuset", {1, 2, 3}}});
  auto m = dedicated("inst-m", {{0, 4}});
  m.policy = CpuPolicy::kMixed;
  m.floating = {{"vcpupin 1", {3, 7}}, {"emulatorpin", {5}}};
  auto d = dedicated("inst-d", {{0, 6}});
  auto f = check_shared_on_dedicated({s, ok, m, d}, p, {0, 1, 2, 3, 4, 5, 6, 7});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], (Finding{"inst-s", ViolationClass::kSharedOnDedicated, 0, -1, {4},
                           "emulatorpin 3-4 overlaps cpu_dedicated_set on 4"}));
  EXPECT_EQ(f[1], (Finding{"inst-m", ViolationClass::kSharedOnDedicated, 0, -1, {7},
                           "vcpupin 1 3,7 overlaps cpu_dedicated_set on 7"}));
}

TEST(SharedOnDedicated, ExplicitSharedWithoutCpusetFloatsEverywhere) {
  HostPolicy p;
  p.cpu_dedicated_set = V{2, 3};
  auto s = shared("inst-s", {});
  auto f = check_shared_on_dedicated({s}, p, {0, 1, 2, 3});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].detail, "no cpuset: floats over all host CPUs, including cpu_dedicated_set 2-3");
  EXPECT_EQ(f[0].cpus, (V{2, 3}));
  // Without nova.conf there is no dedicated set to intrude on.
  EXPECT_TRUE(check_shared_on_dedicated({s}, HostPolicy{}, {0, 1, 2, 3}).empty());
}

TEST(PinnedCpuUnavailable, OfflineAndFloorGovernorOnDedicatedPcpus) {
  std::vector<ResolvedIntent> intents = {dedicated("inst-a", {{0, 2}, {1, 3}}),
                                         dedicated("inst-b", {{0, 4}}), dedicated("inst-c", {{0, 5}}),
                                         shared("inst-s", {PinPart{"vcpu cpuset", {6}}})};
  CpuAvailability cpus;
  cpus.online = {0, 1, 2, 4, 5, 6};  // 3 offline; 6 (shared only) is never looked at
  cpus.governor = {{2, "powersave"}, {4, "powersave"}, {5, "performance"}, {6, "powersave"}};
  cpus.driver = {{2, "acpi-cpufreq"}, {4, "intel_pstate"}, {5, "acpi-cpufreq"}, {6, "acpi-cpufreq"}};
  auto f = check_pinned_cpu_unavailable(intents, cpus);
  ASSERT_EQ(f.size(), 1u);  // intel_pstate's powersave is its dynamic default: inst-b is fine
  EXPECT_EQ(f[0].instance_id, "inst-a");
  EXPECT_EQ(f[0].cls, ViolationClass::kPinnedCpuUnavailable);
  EXPECT_EQ(f[0].cpus, (V{2, 3}));
  EXPECT_EQ(f[0].detail, "pCPU 2 governor powersave; pCPU 3 offline");
}

TEST(PinnedCpuUnavailable, AllOnlineWithoutCpufreqIsClean) {
  CpuAvailability cpus;
  cpus.online = {0, 1, 2, 3};
  EXPECT_TRUE(check_pinned_cpu_unavailable({dedicated("inst-a", {{0, 2}, {1, 3}})}, cpus).empty());
  cpus.governor = {{2, "powersave"}};  // no driver known: a generic governor, reported
  EXPECT_EQ(check_pinned_cpu_unavailable({dedicated("inst-a", {{0, 2}, {1, 3}})}, cpus).size(), 1u);
}

// 2 sockets x 4 cores x 2 threads: siblings n and n+8.
std::map<int, std::vector<int>> smt_siblings() {
  std::map<int, std::vector<int>> s;
  for (int c = 0; c < 8; ++c) s[c] = s[c + 8] = {c, c + 8};
  return s;
}

ResolvedIntent with_threads(ResolvedIntent r, std::string policy) {
  r.thread_policy = std::move(policy);
  return r;
}

TEST(ThreadPolicy, RequireWantsEachRunOfVcpusOnOneCore) {
  auto ok = with_threads(dedicated("req-ok", {{0, 1}, {1, 9}, {2, 2}, {3, 10}, {4, 3}}), "require");
  auto split = with_threads(dedicated("req-split", {{0, 4}, {1, 12}, {2, 5}, {3, 6}}), "require");
  auto f = check_thread_policy({ok, split}, {}, smt_siblings());
  ASSERT_EQ(f.size(), 1u);  // req-ok: pairs 1/9, 2/10 and a lone vCPU 4 on 3
  EXPECT_EQ(f[0].instance_id, "req-split");
  EXPECT_EQ(f[0].cls, ViolationClass::kThreadPolicy);
  EXPECT_EQ(f[0].cpus, (V{5, 6}));
  EXPECT_EQ(f[0].detail, "thread_policy=require: vcpus 2-3 on pCPUs 5-6, not siblings of one core");
}

TEST(ThreadPolicy, RequireOnAHostWithoutSmt) {
  std::map<int, std::vector<int>> flat = {{0, {0}}, {1, {1}}, {2, {2}}};
  auto f = check_thread_policy({with_threads(dedicated("req", {{0, 1}, {1, 2}}), "require")}, {}, flat);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].cpus, (V{1, 2}));
  EXPECT_EQ(f[0].detail, "thread_policy=require: the host has no SMT siblings");
}

TEST(ThreadPolicy, IsolateKeepsTheSiblingsOfItsPcpusUnused) {
  HostPolicy p;
  p.cpu_shared_set = V{0, 7, 8};
  auto ok = with_threads(dedicated("iso-ok", {{0, 1}, {1, 2}}), "isolate");  // 9, 10 unused
  auto own = with_threads(dedicated("iso-own", {{0, 3}, {1, 11}}), "isolate");
  auto other = with_threads(dedicated("iso-other", {{0, 4}, {1, 5}}), "isolate");
  auto shared_sib = with_threads(dedicated("iso-shared", {{0, 15}}), "isolate");  // 7 is shared
  auto b = dedicated("inst-b", {{0, 12}});                                           // sibling of 4
  auto s = shared("inst-s", {PinPart{"vcpu cpuset", {13}}});                           // sibling of 5
  auto f = check_thread_policy({ok, own, other, shared_sib, b, s}, p, smt_siblings());
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& x : f) got.emplace_back(x.instance_id, x.detail);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"iso-own", "thread_policy=isolate: vcpus 0-1 on sibling pCPUs 3,11"},
                     {"iso-other", "thread_policy=isolate: sibling pCPU 12 of 4 is in dedicated of inst-b"},
                     {"iso-other", "thread_policy=isolate: sibling pCPU 13 of 5 is in vcpu cpuset of inst-s"},
                     {"iso-shared", "thread_policy=isolate: sibling pCPU 7 of 15 is in cpu_shared_set"}}));
}

TEST(ThreadPolicy, PreferUnsetOrUnknownSiblingsAreNotChecked) {
  auto prefer = with_threads(dedicated("prefer", {{0, 4}, {1, 5}}), "prefer");
  auto unset = dedicated("unset", {{0, 6}, {1, 7}});
  EXPECT_TRUE(check_thread_policy({prefer, unset}, {}, smt_siblings()).empty());
  auto req = with_threads(dedicated("req", {{0, 4}, {1, 5}}), "require");
  EXPECT_TRUE(check_thread_policy({req}, {}, {}).empty());  // sysfs without topology
  EXPECT_EQ(check_thread_policy({req}, {}, smt_siblings()).size(), 1u);
}

TEST(NumaMisplaced, OnlyVcpusOnANodeOutsideTheirNumatune) {
  ResolvedIntent a = shared("inst-a", {PinPart{"vcpu cpuset", {0, 1, 2, 3}}});
  a.threads = {{101, ThreadRole::kVcpu, 0, {0, 1, 2, 3}, AllowedSource::kVcpuCpuset, {0}},
               {102, ThreadRole::kVcpu, 1, {0, 1, 2, 3}, AllowedSource::kVcpuCpuset, {1}},
               {103, ThreadRole::kVcpu, 2, {0, 1, 2, 3}, AllowedSource::kVcpuCpuset, {0, 1}},
               {104, ThreadRole::kVcpu, 3, {0, 1, 2, 3}, AllowedSource::kVcpuCpuset, {}},
               {105, ThreadRole::kVcpu, 4, {0, 1, 2, 3}, AllowedSource::kVcpuCpuset, {0}},
               {100, ThreadRole::kEmulator, -1, {0, 1, 2, 3}, AllowedSource::kVcpuCpuset, {}}};
  const std::map<int, int> nodes = {{0, 0}, {1, 0}, {2, 1}, {3, 1}};
  // 101 on node 1 (bound to 0): misplaced. 102 on node 1: fine. 103 either node: fine.
  // 104 unbound, 105 never seen running, the emulator: not checked.
  const std::map<pid_t, int> ran = {{101, 3}, {102, 2}, {103, 0}, {104, 2}, {100, 3}};
  auto last = [&](pid_t tid) -> std::optional<int> {
    auto it = ran.find(tid);
    return it == ran.end() ? std::nullopt : std::optional<int>(it->second);
  };
  auto f = check_numa_misplaced({a}, nodes, last);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].instance_id, "inst-a");
  EXPECT_EQ(f[0].cls, ViolationClass::kNumaMisplaced);
  EXPECT_EQ(f[0].tid, 101);
  EXPECT_EQ(f[0].vcpu, 0);
  EXPECT_EQ(f[0].cpus, (V{3}));
  EXPECT_EQ(f[0].detail, "vcpu=0 tid=101 pcpu=3 node=1 numatune=0");
  // A pCPU no node lists (offline when read) is not evidence of anything.
  EXPECT_TRUE(check_numa_misplaced({a}, {{0, 0}, {1, 0}, {2, 1}}, last).empty());
  // One node, or no sched data: nothing to misplace.
  EXPECT_TRUE(check_numa_misplaced({a}, {{0, 0}, {1, 0}, {2, 0}, {3, 0}}, last).empty());
  EXPECT_TRUE(check_numa_misplaced({a}, nodes, LastCpuFn{}).empty());
}

TEST(EmulatorPolicy, ShareAndIsolate) {
  HostPolicy p;
  p.cpu_dedicated_set = V{4, 5, 6, 7, 8};
  p.cpu_shared_set = V{1, 2, 3};
  auto share_ok = dedicated("share-ok", {{0, 4}});
  share_ok.emulator_policy = "share";
  share_ok.floating = {{"emulatorpin", {1, 2, 3}}, {"iothreadpin 1", {1, 2, 3}}};
  auto share_bad = dedicated("share-bad", {{0, 5}});
  share_bad.emulator_policy = "share";
  share_bad.floating = {{"emulatorpin", {3, 5}}};
  auto iso_ok = dedicated("iso-ok", {{0, 6}});
  iso_ok.emulator_policy = "isolate";
  iso_ok.floating = {{"emulatorpin", {8}}};
  auto iso_bad = dedicated("iso-bad", {{0, 7}});
  iso_bad.emulator_policy = "isolate";
  iso_bad.floating = {{"emulatorpin", {7}}};
  auto unpinned = dedicated("unpinned", {{0, 4}});
  unpinned.emulator_policy = "isolate";
  auto unset = dedicated("unset", {{0, 4}});
  unset.floating = {{"emulatorpin", {4}}};

  auto f = check_emulator_policy({share_ok, share_bad, iso_ok, iso_bad, unpinned, unset}, p);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], (Finding{"share-bad", ViolationClass::kEmulatorPolicyMismatch, 0, -1, {5},
                           "emulator_threads_policy=share: emulatorpin 3,5 is outside "
                           "cpu_shared_set 1-3 on 5"}));
  EXPECT_EQ(f[1], (Finding{"iso-bad", ViolationClass::kEmulatorPolicyMismatch, 0, -1, {7},
                           "emulator_threads_policy=isolate: emulatorpin 7 should be one pCPU "
                           "outside the dedicated pCPUs 7"}));
  EXPECT_EQ(f[2], (Finding{"unpinned", ViolationClass::kEmulatorPolicyMismatch, 0, -1, {},
                           "emulator_threads_policy=isolate: emulator threads are not pinned"}));
}

// ProcPlacementReader against a fixture /proc and /sys/fs/cgroup.
class ProcFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("hvtel-proc-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void put(const std::string& rel, const std::string& text) {
    auto path = root_ / rel;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  ProcPlacementReader reader() const {
    return ProcPlacementReader((root_ / "proc").string(), (root_ / "cgroup").string());
  }
  std::filesystem::path root_;
};

TEST_F(ProcFixture, CgroupV2PerThreadLeaf) {
  put("proc/100/task/101/status", "Name:\tCPU 0/KVM\nCpus_allowed:\t2\nCpus_allowed_list:\t1\n");
  put("proc/100/task/101/cgroup",
      "0::/machine.slice/machine-qemu\\x2d1\\x2da.scope/libvirt/vcpu0\n");
  put("cgroup/machine.slice/machine-qemu\\x2d1\\x2da.scope/libvirt/vcpu0/cpuset.cpus.effective",
      "1\n");
  auto p = reader().read(100, 101);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->cpus_allowed, (V{1}));
  EXPECT_EQ(p->cgroup_effective, (V{1}));
  EXPECT_EQ(p->cgroup_path, "/machine.slice/machine-qemu\\x2d1\\x2da.scope/libvirt/vcpu0");
  EXPECT_TRUE(p->per_thread_cgroup);
}

TEST_F(ProcFixture, CgroupV1CpusetWinsOnHybridHosts) {
  put("proc/100/task/100/status", "Cpus_allowed_list:\t0-3\n");
  put("proc/100/task/100/cgroup",
      "4:memory:/x\n3:cpuset,cpu:/machine/qemu-1-a.libvirt-qemu/emulator\n0::/\n");
  put("cgroup/cpuset/machine/qemu-1-a.libvirt-qemu/emulator/cpuset.effective_cpus", "0-1\n");
  auto p = reader().read(100, 100);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->cpus_allowed, (V{0, 1, 2, 3}));
  EXPECT_EQ(p->cgroup_effective, (V{0, 1}));
  EXPECT_EQ(p->cgroup_path, "/machine/qemu-1-a.libvirt-qemu/emulator");
  EXPECT_TRUE(p->per_thread_cgroup);
}

TEST_F(ProcFixture, CgroupV2UnderUnifiedAndRootCgroup) {
  put("proc/7/task/8/status", "Cpus_allowed_list:\t0-1\n");
  put("proc/7/task/8/cgroup", "0::/\n");
  put("cgroup/unified/cpuset.cpus.effective", "0-1\n");
  auto p = reader().read(7, 8);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->cgroup_effective, (V{0, 1}));
  EXPECT_EQ(p->cgroup_path, "/");
  EXPECT_FALSE(p->per_thread_cgroup);
}

TEST_F(ProcFixture, MissingThreadAndMissingCgroupFiles) {
  EXPECT_FALSE(reader().read(1, 2));
  put("proc/7/task/9/status", "Cpus_allowed_list:\t0\n");
  auto p = reader().read(7, 9);  // no cgroup file: affinity only
  ASSERT_TRUE(p);
  EXPECT_EQ(p->cpus_allowed, (V{0}));
  EXPECT_FALSE(p->cgroup_effective);
  put("proc/7/task/10/status", "Name:\tx\n");  // no Cpus_allowed_list: unreadable
  EXPECT_FALSE(reader().read(7, 10));
}

}  // namespace
}  // namespace hvtel::pinning
