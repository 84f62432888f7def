#include "pinning/host_policy.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace hvtel::pinning {
namespace {

using V = std::vector<int>;

TEST(NovaCpuSet, RangesCommasAndExclusions) {
  EXPECT_EQ(parse_nova_cpu_set("4-7,^5,10").value(), (V{4, 6, 7, 10}));
  // Exclusions apply after all inclusions, whatever their position.
  EXPECT_EQ(parse_nova_cpu_set("^8,4-9").value(), (V{4, 5, 6, 7, 9}));
  EXPECT_EQ(parse_nova_cpu_set("0-5,^1-3").value(), (V{0, 4, 5}));
  EXPECT_EQ(parse_nova_cpu_set(" 3 , 1,,2 ").value(), (V{1, 2, 3}));
  EXPECT_EQ(parse_nova_cpu_set("2-2").value(), (V{2}));
  EXPECT_EQ(parse_nova_cpu_set("^ 1, 0-1").value(), (V{0}));
}

// Repeated and overlapping ranges are merged before expansion (a 16 KB spec
// of full ranges costs what one does).
TEST(NovaCpuSet, RepeatedRangesAreMerged) {
  std::string spec;
  while (spec.size() < 16384) spec += "0-8191,^100-8191,";
  auto cpus = parse_nova_cpu_set(spec + "5").value();
  EXPECT_EQ(cpus.size(), 100u);
  EXPECT_EQ(cpus.back(), 99);
  EXPECT_EQ(parse_nova_cpu_set("3-6,0-4,^2,6").value(), (V{0, 1, 3, 4, 5, 6}));
}

TEST(NovaCpuSet, DocumentedExample) {
  auto cpus = parse_nova_cpu_set("4-23,^8,28-47").value();
  EXPECT_EQ(cpus.size(), 39u);
  EXPECT_EQ(cpus.front(), 4);
  EXPECT_EQ(cpus.back(), 47);
  EXPECT_EQ(std::count(cpus.begin(), cpus.end(), 8), 0);
  EXPECT_EQ(std::count(cpus.begin(), cpus.end(), 24), 0);
}

TEST(NovaCpuSet, Errors) {
  EXPECT_EQ(parse_nova_cpu_set("4-").error().message, "invalid range expression '4-'");
  EXPECT_EQ(parse_nova_cpu_set("5-3").error().message, "invalid range expression '5-3'");
  EXPECT_EQ(parse_nova_cpu_set("a").error().message, "invalid inclusion expression 'a'");
  EXPECT_EQ(parse_nova_cpu_set("1,^x").error().message, "invalid exclusion expression '^x'");
  EXPECT_EQ(parse_nova_cpu_set("-1").error().message, "invalid range expression '-1'");
  EXPECT_EQ(parse_nova_cpu_set("99999").error().message, "invalid inclusion expression '99999'");
  EXPECT_EQ(parse_nova_cpu_set("1-3,^1-3").error().message, "no CPUs left after parsing '1-3,^1-3'");
  EXPECT_EQ(parse_nova_cpu_set("").error().message, "no CPUs left after parsing ''");
}

TEST(NovaConf, ComputeAndLegacyOptions) {
  auto p = parse_nova_conf(R"(# nova.conf
[DEFAULT]
debug = true
reserved_host_cpus = 0
transport_url = rabbit://x:y@h:5672/

[compute]
cpu_dedicated_set = 4-23,^8,
  28-47
cpu_shared_set: "1-3,25-27"
[libvirt]
cpu_mode = host-model
)");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_TRUE(p->cpu_dedicated_set);
  EXPECT_EQ(p->cpu_dedicated_set->size(), 39u);  // continuation line joined
  EXPECT_EQ(p->cpu_shared_set.value(), (V{1, 2, 3, 25, 26, 27}));
  EXPECT_FALSE(p->vcpu_pin_set);
  EXPECT_EQ(p->reserved_host_cpus.value(), 0);
  EXPECT_TRUE(p->warnings.empty());
}

TEST(NovaConf, LastAssignmentWinsAndEmptyIsUnset) {
  auto p = parse_nova_conf("[compute]\ncpu_dedicated_set = 1\ncpu_dedicated_set = 2-3\n"
                           "cpu_shared_set =\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->cpu_dedicated_set.value(), (V{2, 3}));
  EXPECT_FALSE(p->cpu_shared_set);
}

TEST(NovaConf, WarningsForCombinationsNovaRejects) {
  auto p = parse_nova_conf(
      "[DEFAULT]\nvcpu_pin_set = 2-7\nreserved_host_cpus = 2\n"
      "[compute]\ncpu_dedicated_set = 4-7\ncpu_shared_set = 2-4\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->vcpu_pin_set.value(), (V{2, 3, 4, 5, 6, 7}));
  ASSERT_EQ(p->warnings.size(), 3u);
  EXPECT_EQ(p->warnings[0],
            "cpu_dedicated_set and cpu_shared_set overlap on 4 (nova-compute refuses this)");
  EXPECT_NE(p->warnings[1].find("vcpu_pin_set"), std::string::npos);
  EXPECT_NE(p->warnings[2].find("reserved_host_cpus"), std::string::npos);
}

TEST(NovaConf, LegacyOnlyIsReported) {
  auto p = parse_nova_conf("[DEFAULT]\nvcpu_pin_set = 2-7\n");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->cpu_dedicated_set);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("only legacy [DEFAULT] vcpu_pin_set"), std::string::npos);
}

TEST(NovaConf, ErrorsNameTheLine) {
  EXPECT_EQ(parse_nova_conf("[compute]\n\ncpu_dedicated_set = 4-,6\n").error().message,
            "line 3: [compute] cpu_dedicated_set: invalid range expression '4-'");
  EXPECT_EQ(parse_nova_conf("[compute\n").error().message,
            "line 1: malformed section header '[compute'");
  EXPECT_EQ(parse_nova_conf("[compute]\njunk\n").error().message,
            "line 2: expected 'key = value', got 'junk'");
  EXPECT_EQ(parse_nova_conf("cpu_shared_set = 1\n").error().message,
            "line 1: option outside of a section");
  EXPECT_EQ(parse_nova_conf("[DEFAULT]\nreserved_host_cpus = two\n").error().message,
            "line 2: [DEFAULT] reserved_host_cpus: 'two' is not a CPU count");
  // Options hvtel does not interpret are not validated.
  EXPECT_TRUE(parse_nova_conf("[compute]\nfoo = 4-\n"));
}

TEST(NovaConf, LoadMissingFile) {
  auto p = load_nova_conf("/nonexistent/nova.conf");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message.rfind("read nova config /nonexistent/nova.conf: ", 0), 0u)
      << p.error().message;
}

class SysfsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("hvtel-sysfs-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void put(const std::string& rel, const std::string& text) {
    auto path = root_ / rel;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  std::filesystem::path root_;
};

TEST_F(SysfsFixture, ReadsOnlineSiblingsAndNodes) {
  put("devices/system/cpu/online", "0-3\n");
  put("devices/system/cpu/cpu0/topology/thread_siblings_list", "0,2\n");
  put("devices/system/cpu/cpu1/topology/thread_siblings_list", "1,3\n");
  put("devices/system/cpu/cpu2/topology/thread_siblings_list", "0,2\n");
  put("devices/system/cpu/cpu3/topology/thread_siblings_list", "1,3\n");
  put("devices/system/node/node0/cpulist", "0,2\n");
  put("devices/system/node/node1/cpulist", "1,3\n");
  put("devices/system/node/possible", "0-1\n");
  auto t = read_host_topology(root_.string());
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->online, (V{0, 1, 2, 3}));
  EXPECT_EQ(t->siblings.at(2), (V{0, 2}));
  EXPECT_EQ(t->siblings.at(3), (V{1, 3}));
  EXPECT_EQ(t->numa_node, (std::map<int, int>{{0, 0}, {1, 1}, {2, 0}, {3, 1}}));

  HostPolicy p;
  p.cpu_dedicated_set = V{2, 3, 4, 5};
  auto w = check_policy_against_topology(p, *t);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "cpu_dedicated_set names CPUs that are not online: 4-5");
}

TEST_F(SysfsFixture, CpuAvailabilityReadsOnlineGovernorAndDriver) {
  put("devices/system/cpu/online", "0,2-3\n");
  put("devices/system/cpu/cpu2/cpufreq/scaling_governor", "powersave\n");
  put("devices/system/cpu/cpu2/cpufreq/scaling_driver", "acpi-cpufreq\n");
  put("devices/system/cpu/cpu3/cpufreq/scaling_governor", "performance\n");
  auto a = read_cpu_availability(root_.string(), {1, 2, 3});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->online, (V{0, 2, 3}));
  EXPECT_EQ(a->governor, (std::map<int, std::string>{{2, "powersave"}, {3, "performance"}}));
  EXPECT_EQ(a->driver, (std::map<int, std::string>{{2, "acpi-cpufreq"}}));
  put("devices/system/cpu/online", "garbage\n");
  auto bad = read_cpu_availability(root_.string(), {1});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("malformed cpu list 'garbage"), std::string::npos);
}

TEST_F(SysfsFixture, NumaNodesFromEachNodeCpulist) {
  EXPECT_EQ(read_numa_nodes(root_.string()), (std::map<int, int>{}));  // no NUMA sysfs: no nodes
  put("devices/system/node/node0/cpulist", "0-1\n");
  put("devices/system/node/node1/cpulist", "2-3\n");
  put("devices/system/node/node2/cpulist", "\n");  // memory-only node
  put("devices/system/node/has_cpu", "0-1\n");
  EXPECT_EQ(read_numa_nodes(root_.string()), (std::map<int, int>{{0, 0}, {1, 0}, {2, 1}, {3, 1}}));
  put("devices/system/node/node1/cpulist", "2-x\n");
  auto bad = read_numa_nodes(root_.string());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            root_.string() + "/devices/system/node/node1/cpulist: malformed cpu list '2-x'");
}

TEST_F(SysfsFixture, MissingOnlineIsAnError) {
  put("devices/system/cpu/cpu0/topology/thread_siblings_list", "0\n");
  EXPECT_FALSE(read_host_topology(root_.string()));
}

TEST_F(SysfsFixture, MalformedOnlineIsAnError) {
  put("devices/system/cpu/online", "0-\n");
  auto t = read_host_topology(root_.string());
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("malformed cpu list"), std::string::npos);
}

}  // namespace
}  // namespace hvtel::pinning

namespace hvtel::pinning {
namespace {

// Deterministic garbage: every parse either fails with a message or returns a
// sorted, bounded, non-empty set.
TEST(NovaCpuSet, GarbageNeverCrashesAndResultsAreWellFormed) {
  const std::string alphabet = "0123456789-,^ \t[]=:#;xq\n";
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1103515245u + 12345u; };
  int ok = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    size_t len = next() % 24;
    for (size_t j = 0; j < len; ++j) s += alphabet[(next() >> 8) % alphabet.size()];
    auto cpus = parse_nova_cpu_set(s);
    if (cpus) {
      ++ok;
      ASSERT_FALSE(cpus->empty()) << s;
      ASSERT_TRUE(std::is_sorted(cpus->begin(), cpus->end())) << s;
      ASSERT_LE(cpus->back(), kMaxCpuId) << s;
    } else {
      ASSERT_FALSE(cpus.error().message.empty()) << s;
    }
    auto conf = parse_nova_conf("[compute]\ncpu_dedicated_set = " + s + "\n");
    ASSERT_TRUE(conf || !conf.error().message.empty());
  }
  EXPECT_GT(ok, 0);  // the generator does produce valid specs too
}

}  // namespace
}  // namespace hvtel::pinning
