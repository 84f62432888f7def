// PV11 numa_misplaced live: a test-VMM guest whose intent (an inventory file) binds it to NUMA node 0,
// its vCPU thread moved by taskset to a pCPU of node 1 and back. Needs a host with two NUMA nodes: this
// binary's scenarios run through the kvm-scenario-numa2 shim, so on a one-node host they run in a VM-lab
// guest with one vCPU on each node.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "support/agent.h"
#include "support/test_env.h"

using hvtel::testing::Agent;
using hvtel::testing::Process;
using hvtel::testing::Scrape;

namespace {

constexpr const char* kN = "c0000000-0000-4000-8000-00000000000c";

// The first pCPU of NUMA node `node`, from sysfs; nullopt without that node or without CPUs on it.
std::optional<int> first_cpu_of_node(int node) {
  std::ifstream f("/sys/devices/system/node/node" + std::to_string(node) + "/cpulist");
  int cpu = -1;
  if (!(f >> cpu) || cpu < 0) return std::nullopt;
  return cpu;
}

std::optional<double> misplaced_active(const Scrape& s) {
  return s.value("hvtel_pinning_violation_active", {{"instance_id", kN}, {"class", "numa_misplaced"}});
}
double misplaced_onsets(const Scrape& s) {
  return s.value("hvtel_pinning_violations_total", {{"instance_id", kN}, {"class", "numa_misplaced"}})
      .value_or(-1);
}

class PinningNuma : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    HV_REQUIRE(hvtel::testing::is_root() && ::stat("/dev/kvm", &st) == 0, "needs root and /dev/kvm");
    node0_ = first_cpu_of_node(0);
    node1_ = first_cpu_of_node(1);
    HV_REQUIRE(node0_ && node1_, "needs two NUMA nodes with CPUs");
    char tmpl[] = "/tmp/hvtel-inventory.XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    inventory_ = tmpl;
    // Shared over both nodes' pCPUs, so moving the vCPU breaks no pin: only numatune says node 0.
    std::ofstream(inventory_) << "vmms:\n  - uuid: " << kN << "\n    policy: shared\n    cpuset: \""
                              << *node0_ << "," << *node1_ << "\"\n    numa_nodeset: \"0\"\n";
  }
  void TearDown() override {
    if (!inventory_.empty()) unlink(inventory_.c_str());
  }
  std::optional<int> node0_, node1_;
  std::string inventory_;
};

TEST_F(PinningNuma, VcpuMovedToTheOtherNodeIsMisplacedOnceUntilItReturns) {
  Agent agent({"--inventory", inventory_});
  ASSERT_TRUE(agent.ready()) << agent.process().err();
  const std::string c0 = std::to_string(*node0_), c1 = std::to_string(*node1_);
  Process vmm({TESTVMM_BIN, "--storm", "40", "-n", "1", "-a", c0, "-A", c0, "-uuid", kN});
  ASSERT_TRUE(vmm.wait_output("READY", 5000, true));
  auto s = agent.wait_for(
      [](const Scrape& x) {
        return x.count("hvtel_vcpu_threads", {{"instance_id", kN}}) > 0;
      },
      5000);
  ASSERT_EQ(s.count("hvtel_vcpu_threads", {{"instance_id", kN}}), 1u) << s.text();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a reconcile or more on node 0
  s = agent.scrape();
  // On its node: no violation, and by default no series for a class that never fired.
  ASSERT_FALSE(misplaced_active(s).has_value()) << s.text();

  pid_t tid = hvtel::testing::thread_named(vmm.pid(), "CPU 0/KVM");
  ASSERT_GT(tid, 0);
  ASSERT_EQ(hvtel::testing::run_command("taskset -p -c " + c1 + " " + std::to_string(tid) + " >/dev/null"),
            0);
  s = agent.wait_for([](const Scrape& x) { return misplaced_active(x) == 1.0; }, 5000);
  EXPECT_EQ(misplaced_active(s), 1.0) << s.text();
  EXPECT_EQ(misplaced_onsets(s), 1.0);

  // Held over a few reconciles (1 s apart), then back on node 0.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  s = agent.scrape();
  EXPECT_EQ(misplaced_onsets(s), 1.0) << "one onset, not one per reconcile\n" << s.text();
  ASSERT_EQ(hvtel::testing::run_command("taskset -p -c " + c0 + " " + std::to_string(tid) + " >/dev/null"),
            0);
  s = agent.wait_for([](const Scrape& x) { return misplaced_active(x) == 0.0; }, 5000);
  EXPECT_EQ(misplaced_active(s), 0.0) << s.text();
  EXPECT_EQ(misplaced_onsets(s), 1.0);
  double seconds =
      s.value("hvtel_pinning_violation_seconds_total", {{"instance_id", kN}, {"class", "numa_misplaced"}})
          .value_or(0);
  EXPECT_GE(seconds, 1.0);  // active from the first reconcile that saw it to the last, 2.5 s apart or more
  hvtel::testing::figure("misplaced_s", seconds);
  hvtel::testing::figure("onsets", misplaced_onsets(s));
}

}  // namespace
