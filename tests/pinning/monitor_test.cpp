#include "pinning/monitor.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

namespace hvtel::pinning {
namespace {

using V = std::vector<int>;
constexpr uint64_t kSecond = 1'000'000'000;

class FakeReader : public PlacementReader {
 public:
  explicit FakeReader(std::map<pid_t, V> affinity) : affinity_(std::move(affinity)) {}
  std::optional<ThreadPlacement> read(pid_t, pid_t tid) const override {
    auto it = affinity_.find(tid);
    if (it == affinity_.end()) return std::nullopt;
    return ThreadPlacement{it->second, std::nullopt, "", false};
  }

 private:
  std::map<pid_t, V> affinity_;
};

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hvtel-monitor-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "sys/devices/system/cpu");
    std::ofstream(dir_ / "sys/devices/system/cpu/online") << "0-7\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  MonitorConfig config() {
    MonitorConfig c;
    c.sysfs_root = (dir_ / "sys").string();
    c.nova_conf_path = write("nova.conf", "[compute]\ncpu_dedicated_set = 4-7\n"
                                          "cpu_shared_set = 1-3\n");
    c.inventory_path = write("inv.yaml",
                             "vmms:\n"
                             "  - pid: 100\n    policy: dedicated\n    vcpu_pins: {0: \"4\", 1: \"5\"}\n"
                             "  - name: floater\n    policy: shared\n    cpuset: \"3-4\"\n");
    return c;
  }
  static model::Instance vmm(std::string id, std::string name, pid_t pid, int vcpus) {
    model::Instance i;
    i.instance_id = std::move(id);
    i.instance_name = std::move(name);
    i.pid = pid;
    i.vcpus = vcpus;
    for (int v = 0; v < vcpus; ++v) i.vcpu_threads.push_back({pid + 1 + v, v});
    return i;
  }
  std::string fifo_path() {
    const std::string p = (dir_ / "inv.fifo").string();
    ::mkfifo(p.c_str(), 0600);
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(MonitorTest, EndToEndFromFilesToRegistry) {
  PinningMonitor mon(config());
  ASSERT_TRUE(mon.load());
  EXPECT_EQ(mon.topology().online, (V{0, 1, 2, 3, 4, 5, 6, 7}));
  mon.set_placement_reader(std::make_unique<FakeReader>(std::map<pid_t, V>{
      {101, {4}}, {102, {6}}, {201, {3, 4}}}));

  std::vector<model::Instance> instances = {vmm("pid-100", "qemu", 100, 2),
                                            vmm("pid-200", "floater", 200, 1),
                                            vmm("pid-300", "unknown", 300, 1)};
  const auto& intents = mon.reconcile(instances);
  ASSERT_EQ(intents.size(), 2u);  // pid-300 has no intent: not tracked
  EXPECT_EQ(intents[0].dedicated, (V{4, 5}));
  EXPECT_EQ(instances[1].intent.vcpu_cpuset, (V{3, 4}));

  auto reg = mon.registry();
  EXPECT_TRUE(reg->counters("pid-100", ViolationClass::kAffinityDrift)->active);   // 102 on 6
  EXPECT_TRUE(reg->counters("pid-100", ViolationClass::kDedicatedOverlap)->active);
  EXPECT_TRUE(reg->counters("pid-200", ViolationClass::kDedicatedOverlap)->active);
  EXPECT_TRUE(reg->counters("pid-200", ViolationClass::kSharedOnDedicated)->active);
  EXPECT_FALSE(reg->counters("pid-200", ViolationClass::kAffinityDrift)->active);
  EXPECT_FALSE(reg->counters("pid-300", ViolationClass::kAffinityDrift));

  auto active = reg->active_findings();
  ASSERT_EQ(active.size(), 4u);
  EXPECT_EQ(active[0].detail, "tid=102 vcpu=1 expected=5 actual=6 via=affinity");
  EXPECT_EQ(active[1].detail, "dedicated overlaps vcpu cpuset of pid-200 on 4");
  EXPECT_EQ(active[2].detail, "vcpu cpuset overlaps dedicated of pid-100 on 4");
  EXPECT_EQ(active[3].detail, "vcpu cpuset 3-4 overlaps cpu_dedicated_set on 4");
}

TEST_F(MonitorTest, DedicatedPcpuGoingOfflineIsUnavailableUntilItReturns) {
  PinningMonitor mon(config());
  ASSERT_TRUE(mon.load());
  mon.set_placement_reader(std::make_unique<FakeReader>(std::map<pid_t, V>{{101, {4}}, {102, {5}}}));
  std::vector<model::Instance> instances = {vmm("pid-100", "qemu", 100, 2)};
  auto reg = mon.registry();
  mon.reconcile(instances);
  EXPECT_FALSE(reg->counters("pid-100", ViolationClass::kPinnedCpuUnavailable)->active);

  write("sys/devices/system/cpu/online", "0-4,6-7\n");  // pCPU 5 (vCPU 1's) goes offline
  mon.reconcile(instances);
  auto c = reg->counters("pid-100", ViolationClass::kPinnedCpuUnavailable);
  EXPECT_TRUE(c->active);
  EXPECT_EQ(c->count, 1u);
  auto active = reg->active_findings();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].detail, "pCPU 5 offline");

  mon.reconcile(instances);  // still offline: the same violation, not a new one
  EXPECT_EQ(reg->counters("pid-100", ViolationClass::kPinnedCpuUnavailable)->count, 1u);
  write("sys/devices/system/cpu/online", "0-7\n");
  mon.reconcile(instances);
  c = reg->counters("pid-100", ViolationClass::kPinnedCpuUnavailable);
  EXPECT_FALSE(c->active);
  EXPECT_EQ(c->count, 1u);
}

// Two nodes: pCPUs 0-3 on node 0, 4-7 on node 1. vCPU 0 of pid 100 is bound to node 0 by numatune.
TEST_F(MonitorTest, VcpuOnAnotherNodeIsNumaMisplacedOnceWithItsSeconds) {
  std::filesystem::create_directories(dir_ / "sys/devices/system/node/node0");
  std::filesystem::create_directories(dir_ / "sys/devices/system/node/node1");
  write("sys/devices/system/node/node0/cpulist", "0-3\n");
  write("sys/devices/system/node/node1/cpulist", "4-7\n");
  write("sys/devices/system/node/has_cpu", "0-1\n");  // not a node directory
  auto c = config();
  c.nova_conf_path.clear();  // no cpu_dedicated_set: the cpuset is no shared_on_dedicated
  c.inventory_path = write("inv.yaml",
                           "vmms:\n  - pid: 100\n    policy: shared\n    cpuset: \"0-7\"\n"
                           "    numa_nodeset: \"0\"\n");
  uint64_t now = 1'000'000'000;
  c.registry.clock = [&now] { return now; };
  PinningMonitor mon(c);
  ASSERT_TRUE(mon.load());
  std::map<pid_t, int> ran_on = {{101, 2}};
  VcpuRunFn last_cpu = [&](pid_t tid) -> std::optional<VcpuRun> {
    auto it = ran_on.find(tid);
    return it == ran_on.end() ? std::nullopt : std::optional<VcpuRun>(VcpuRun{.cpu = it->second});
  };
  std::vector<model::Instance> instances = {vmm("pid-100", "qemu", 100, 1)};
  auto reg = mon.registry();
  mon.reconcile(instances, last_cpu);  // on node 0: right where numatune binds it
  auto k = reg->counters("pid-100", ViolationClass::kNumaMisplaced);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->count, 0u);
  EXPECT_FALSE(k->active);

  ran_on[101] = 5;  // node 1
  now += 1'000'000'000;
  mon.reconcile(instances, last_cpu);
  ran_on[101] = 6;  // still node 1: the same violation
  now += 2'000'000'000;
  mon.reconcile(instances, last_cpu);
  k = reg->counters("pid-100", ViolationClass::kNumaMisplaced);
  EXPECT_TRUE(k->active);
  EXPECT_EQ(k->count, 1u);
  EXPECT_EQ(k->ns, 2'000'000'000u);
  auto active = reg->active_findings();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].detail, "vcpu=0 tid=101 pcpu=6 node=1 numatune=0");

  ran_on[101] = 1;  // back on node 0
  now += 1'000'000'000;
  mon.reconcile(instances, last_cpu);
  k = reg->counters("pid-100", ViolationClass::kNumaMisplaced);
  EXPECT_FALSE(k->active);
  EXPECT_EQ(k->count, 1u);
  EXPECT_EQ(k->ns, 2'000'000'000u);  // to the last reconcile that still saw it, not to the clearing one

  // Without the sched probes' data the class is not checked at all.
  ran_on[101] = 7;
  mon.reconcile(instances);
  EXPECT_EQ(reg->counters("pid-100", ViolationClass::kNumaMisplaced)->count, 1u);
}

// Two floating vCPUs (tids 101, 102) over pCPUs 0-1, both queued on pCPU 1 while /proc/stat says pCPU 0
// idles: floating_stacking from the second reconcile (the first has no interval) until they spread.
TEST_F(MonitorTest, StackedFloatingVcpusAreFloatingStackingUntilTheySpread) {
  std::filesystem::create_directories(dir_ / "proc");
  auto stat = [&](int idle0, int idle1, int total) {  // seconds, as USER_HZ ticks: user nice system idle iowait
    const long hz = sysconf(_SC_CLK_TCK);
    write("proc/stat", "cpu  0 0 0 0 0\n" + fmt::format("cpu0 {} 0 0 {} 0\ncpu1 {} 0 0 {} 0\n",
                                                         (total - idle0) * hz, idle0 * hz,
                                                         (total - idle1) * hz, idle1 * hz));
  };
  auto c = config();
  c.nova_conf_path.clear();
  c.proc_root = (dir_ / "proc").string();
  c.inventory_path = write("inv.yaml", "vmms:\n  - pid: 100\n    policy: shared\n    cpuset: \"0-1\"\n");
  uint64_t now = 100 * kSecond;
  c.registry.clock = [&now] { return now; };
  PinningMonitor mon(c);
  ASSERT_TRUE(mon.load());
  mon.set_placement_reader(std::make_unique<FakeReader>(std::map<pid_t, V>{{101, {0, 1}}, {102, {0, 1}}}));
  std::map<pid_t, VcpuRun> runs = {{101, {1, 0}}, {102, {1, 0}}};
  VcpuRunFn run = [&](pid_t tid) -> std::optional<VcpuRun> {
    auto it = runs.find(tid);
    return it == runs.end() ? std::nullopt : std::optional<VcpuRun>(it->second);
  };
  std::vector<model::Instance> instances = {vmm("pid-100", "qemu", 100, 2)};
  auto reg = mon.registry();
  stat(10, 0, 10);
  mon.reconcile(instances, run);
  EXPECT_FALSE(reg->counters("pid-100", ViolationClass::kFloatingStacking)->active);

  for (int i = 1; i <= 3; ++i) {  // three seconds stacked: pCPU 0 all idle, each vCPU waits half the time
    now += kSecond;
    runs = {{101, {1, i * kSecond / 2}}, {102, {1, i * kSecond / 2}}};
    stat(10 + i, 0, 10 + i);
    mon.reconcile(instances, run);
  }
  auto k = reg->counters("pid-100", ViolationClass::kFloatingStacking);
  EXPECT_TRUE(k->active);
  EXPECT_EQ(k->count, 1u);
  EXPECT_EQ(k->ns, 2 * kSecond);
  auto active = reg->active_findings();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].detail,
            "vcpus 0,1 stacked on pCPU 1 (waited 50%,50%) while pCPU 0 of their cpuset 0-1 idled 100%");
  EXPECT_FALSE(reg->counters("pid-100", ViolationClass::kAffinityDrift)->active);

  now += kSecond;  // spread: one on each pCPU, neither waits
  runs = {{101, {0, 3 * kSecond / 2}}, {102, {1, 3 * kSecond / 2}}};
  stat(13, 0, 14);
  mon.reconcile(instances, run);
  k = reg->counters("pid-100", ViolationClass::kFloatingStacking);
  EXPECT_FALSE(k->active);
  EXPECT_EQ(k->count, 1u);
}

// thread_policy=isolate on pCPU 3 of a host with cores 0,1 and 2,3: the sibling pCPU 2 must stay unused.
// /proc/stat says it is busy for two seconds (PV9 at run time), then idle again.
TEST_F(MonitorTest, ABusySiblingOfAnIsolateInstanceIsThreadPolicyUntilItIdles) {
  std::ofstream(dir_ / "sys/devices/system/cpu/online") << "0-3\n";
  for (int c = 0; c < 4; ++c) {
    std::filesystem::create_directories(dir_ / fmt::format("sys/devices/system/cpu/cpu{}/topology", c));
    write(fmt::format("sys/devices/system/cpu/cpu{}/topology/thread_siblings_list", c),
          c < 2 ? "0-1\n" : "2-3\n");
  }
  std::filesystem::create_directories(dir_ / "proc");
  auto stat = [&](int busy2, int total) {  // seconds, as USER_HZ ticks: user nice system idle iowait
    const long hz = sysconf(_SC_CLK_TCK);
    std::string text = "cpu  0 0 0 0 0\n";
    for (int c = 0; c < 4; ++c) {
      const int busy = c == 2 ? busy2 : 0;
      text += fmt::format("cpu{} {} 0 0 {} 0\n", c, busy * hz, (total - busy) * hz);
    }
    write("proc/stat", text);
  };
  auto c = config();
  c.nova_conf_path.clear();
  c.proc_root = (dir_ / "proc").string();
  c.inventory_path = write("inv.yaml",
                           "vmms:\n  - pid: 100\n    policy: dedicated\n    thread_policy: isolate\n"
                           "    vcpu_pins: {0: \"3\"}\n");
  uint64_t now = 100 * kSecond;
  c.registry.clock = [&now] { return now; };
  PinningMonitor mon(c);
  ASSERT_TRUE(mon.load());
  ASSERT_EQ(mon.topology().siblings.at(3), (V{2, 3}));
  mon.set_placement_reader(std::make_unique<FakeReader>(std::map<pid_t, V>{{101, {3}}}));
  std::vector<model::Instance> instances = {vmm("pid-100", "qemu", 100, 1)};
  auto reg = mon.registry();
  stat(0, 10);
  mon.reconcile(instances, {});
  EXPECT_FALSE(reg->counters("pid-100", ViolationClass::kThreadPolicy)->active);

  for (int i = 1; i <= 3; ++i) {  // busy the whole second, three times
    now += kSecond;
    stat(i, 10 + i);
    mon.reconcile(instances, {});
  }
  auto k = reg->counters("pid-100", ViolationClass::kThreadPolicy);
  EXPECT_TRUE(k->active);
  EXPECT_EQ(k->count, 1u);
  EXPECT_EQ(k->ns, 2 * kSecond);
  auto active = reg->active_findings();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].detail, "thread_policy=isolate: sibling pCPU 2 of 3 busy 100% of the last 1.0 s");

  now += kSecond;  // idle again
  stat(3, 14);
  mon.reconcile(instances, {});
  k = reg->counters("pid-100", ViolationClass::kThreadPolicy);
  EXPECT_FALSE(k->active);
  EXPECT_EQ(k->count, 1u);
}

TEST_F(MonitorTest, OneNodeHostNeverMisplaces) {
  std::filesystem::create_directories(dir_ / "sys/devices/system/node/node0");
  write("sys/devices/system/node/node0/cpulist", "0-7\n");
  auto c = config();
  c.nova_conf_path.clear();  // no cpu_dedicated_set: the cpuset is no shared_on_dedicated
  c.inventory_path = write("inv.yaml",
                           "vmms:\n  - pid: 100\n    policy: shared\n    cpuset: \"0-7\"\n"
                           "    numa_nodeset: \"1\"\n");
  PinningMonitor mon(c);
  ASSERT_TRUE(mon.load());
  std::vector<model::Instance> instances = {vmm("pid-100", "qemu", 100, 1)};
  mon.reconcile(instances, [](pid_t) { return std::optional<VcpuRun>(VcpuRun{.cpu = 3}); });
  EXPECT_EQ(mon.registry()->counters("pid-100", ViolationClass::kNumaMisplaced)->count, 0u);
  EXPECT_TRUE(mon.registry()->active_findings().empty());
}

TEST_F(MonitorTest, BadConfigIsCountedAndTheLastGoodOneKept) {
  auto c = config();
  PinningMonitor mon(c);
  ASSERT_TRUE(mon.load());
  write("nova.conf", "[compute]\ncpu_dedicated_set = 7-4\n");
  write("inv.yaml", "vmms:\n  - pid: 1\n");
  auto s = mon.load();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message,
            c.nova_conf_path + ": line 2: [compute] cpu_dedicated_set: invalid range expression "
                               "'7-4'");
  EXPECT_EQ(mon.host_policy().cpu_dedicated_set, (V{4, 5, 6, 7}));
  auto families = mon.registry()->Collect();
  int errors = 0;
  for (const auto& f : families) {
    if (f.name != "hvtel_pinning_config_errors_total") continue;
    for (const auto& m : f.metric) errors += static_cast<int>(m.counter.value);
  }
  EXPECT_EQ(errors, 2);
}

// Every way an operator (or a ConfigMap update) changes a file is seen by a
// stat, without reading it, once it has settled (unchanged since the previous
// look); load() makes the current state the reference.
TEST_F(MonitorTest, ConfigChangedSeesEditsReplacementsAndDeletionOnceSettled) {
  auto c = config();
  PinningMonitor mon(c);
  ASSERT_TRUE(mon.load());
  EXPECT_FALSE(mon.config_changed());
  EXPECT_FALSE(mon.config_changed());
  write("inv.yaml", "vmms: []\n");  // an edit in place (size changes)
  EXPECT_FALSE(mon.config_changed());  // first seen: may still be being written
  EXPECT_TRUE(mon.config_changed());   // the same at the next look: settled
  ASSERT_TRUE(mon.load());
  EXPECT_FALSE(mon.config_changed());
  const std::string tmp = c.inventory_path + ".new";  // an editor's write-and-rename
  std::ofstream(tmp) << "vmms: []\n";
  ASSERT_EQ(std::rename(tmp.c_str(), c.inventory_path.c_str()), 0);
  EXPECT_FALSE(mon.config_changed());
  EXPECT_TRUE(mon.config_changed());
  ASSERT_TRUE(mon.load());
  ASSERT_EQ(std::remove(c.nova_conf_path.c_str()), 0);  // deleted
  EXPECT_FALSE(mon.config_changed());
  EXPECT_TRUE(mon.config_changed());
  auto s = mon.load();
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find(c.nova_conf_path), std::string::npos) << s.error().message;
  EXPECT_EQ(mon.host_policy().cpu_dedicated_set, (V{4, 5, 6, 7}));  // the last good one
  EXPECT_FALSE(mon.config_changed());  // still deleted: no reload loop
  EXPECT_FALSE(mon.config_changed());
}

// The inventory given as a device or a FIFO is refused at once (the agent
// must not block at start-up nor read /dev/zero until it runs out of memory).
TEST_F(MonitorTest, InventoryThatIsNotARegularFileIsRefused) {
  for (const std::string& path : {std::string("/dev/zero"), fifo_path()}) {
    SCOPED_TRACE(path);
    auto c = config();
    c.inventory_path = path;
    PinningMonitor mon(c);
    auto s = mon.load();
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find(path + ": not a regular file"), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace hvtel::pinning
