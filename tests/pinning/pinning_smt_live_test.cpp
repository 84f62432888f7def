// PV9 thread_policy at run time, on a host with SMT: cores {0,1} and {2,3}. An instance under
// hw:cpu_thread_policy=isolate has its vCPU dedicated to pCPU 3, so Nova keeps pCPU 3's sibling, pCPU 2,
// free. The agent and the test stay on pCPU 0; a busy loop on pCPU 2 is the "another owner" of the class.
// This binary's scenarios run through the kvm-scenario-smt shim: a host whose cpu 2 and 3 are not siblings
// runs them in a VM-lab guest with 4 vCPUs as two cores of two threads.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "support/agent.h"
#include "support/live.h"
#include "support/test_env.h"

using hvtel::testing::Agent;
using hvtel::testing::Process;
using hvtel::testing::Scrape;

namespace {

constexpr const char* kI = "e0000000-0000-4000-8000-00000000000e";

std::optional<double> thread_policy(const Scrape& s, const char* family) {
  return s.value(family, {{"instance_id", kI}, {"class", "thread_policy"}});
}

// Every class of the instance but `except` is still 0.
void expect_no_other_class(const Scrape& s, const std::string& except) {
  for (const auto& smp : hvtel::testing::parse_exposition(s.text())) {
    if (smp.name == "hvtel_pinning_violations_total" && smp.labels.at("instance_id") == kI &&
        smp.labels.at("class") != except) {
      EXPECT_EQ(smp.value, 0.0) << smp.labels.at("class");
    }
  }
}

class PinningSmt : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    HV_REQUIRE(hvtel::testing::is_root() && ::stat("/dev/kvm", &st) == 0, "needs root and /dev/kvm");
    HV_REQUIRE(
        hvtel::testing::first_line("/sys/devices/system/cpu/cpu3/topology/thread_siblings_list") == "2-3",
        "needs cpus 2 and 3 to be SMT siblings");
    char tmpl[] = "/tmp/hvtel-inventory.XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    inventory_ = tmpl;
    std::ofstream(inventory_)
        << "vmms:\n  - uuid: " << kI
        << "\n    policy: dedicated\n    thread_policy: isolate\n    vcpu_pins: {0: \"3\"}\n";
  }
  void TearDown() override {
    if (!inventory_.empty()) unlink(inventory_.c_str());
  }
  std::string inventory_;
};

TEST_F(PinningSmt, ABusySiblingOfAnIsolateInstanceIsThreadPolicyUntilItIdles) {
  // The test, the agent and the VMM's main thread on pCPU 0: nothing of ours runs on the sibling.
  hvtel::testing::OnCpu on_cpu0(0);
  ASSERT_TRUE(on_cpu0.ok());
  Agent agent({"--pinning-zero-series", "--inventory", inventory_});
  ASSERT_TRUE(agent.ready()) << agent.process().err();
  Process vmm({TESTVMM_BIN, "--storm", "30", "-n", "1", "-a", "3", "-A", "0", "-uuid", kI});
  ASSERT_TRUE(vmm.wait_output("READY", 5000, true));

  // The clean baseline: the instance runs, its sibling idles, for 5 s (five judgements): no class fires.
  auto s = agent.wait_for(
      [](const Scrape& x) {
        return x.count("hvtel_vcpu_threads", {{"instance_id", kI}}) > 0;
      },
      5000);
  ASSERT_EQ(s.count("hvtel_vcpu_threads", {{"instance_id", kI}}), 1u) << s.text();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  s = agent.scrape();
  EXPECT_EQ(thread_policy(s, "hvtel_pinning_violation_active"), 0.0) << s.text();
  EXPECT_EQ(thread_policy(s, "hvtel_pinning_violations_total"), 0.0);
  expect_no_other_class(s, "");

  // Another owner on the sibling: a host busy loop on pCPU 2 for 4 s.
  double hog_cpu = 0;
  std::thread hog([&] { hog_cpu = hvtel::testing::hog(2, 4.0); });
  s = agent.wait_for(
      [](const Scrape& x) { return thread_policy(x, "hvtel_pinning_violation_active") == 1.0; }, 4000);
  EXPECT_EQ(thread_policy(s, "hvtel_pinning_violation_active"), 1.0) << s.text();
  EXPECT_EQ(thread_policy(s, "hvtel_pinning_violations_total"), 1.0);
  hog.join();
  EXPECT_GT(hog_cpu, 3.0);

  // The loop ends, the sibling idles: the class clears, one onset in all.
  s = agent.wait_for(
      [](const Scrape& x) { return thread_policy(x, "hvtel_pinning_violation_active") == 0.0; }, 4000);
  EXPECT_EQ(thread_policy(s, "hvtel_pinning_violation_active"), 0.0) << s.text();
  EXPECT_EQ(thread_policy(s, "hvtel_pinning_violations_total"), 1.0);
  const double seconds = thread_policy(s, "hvtel_pinning_violation_seconds_total").value_or(0);
  EXPECT_GE(seconds, 2.0);  // from the first judgement that saw it to the last, 4 s of loop
  EXPECT_LE(seconds, 5.0);
  expect_no_other_class(s, "thread_policy");
  hvtel::testing::figure("hog_cpu_s", hog_cpu);
  hvtel::testing::figure("thread_policy_s", seconds);
  vmm.terminate();
}

}  // namespace
