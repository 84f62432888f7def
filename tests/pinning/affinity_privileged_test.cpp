// PV2 against the real kernel: a thread whose affinity differs from the
// declared intent is reported with its tid, vCPU and both sets, and stops
// being reported once the affinity matches.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fmt/core.h>
#include <mutex>
#include <thread>

#include "pinning/intent.h"
#include "pinning/static_checks.h"
#include "pinning/violations.h"
#include "support/test_env.h"

namespace hvtel::pinning {
namespace {

bool pin(std::thread& t, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(t.native_handle(), sizeof set, &set) == 0;
}

TEST(AffinityDriftPrivileged, RealThreadAgainstIntent) {
  HV_REQUIRE_ROOT();
  HV_REQUIRE(std::thread::hardware_concurrency() >= 2, "needs CPUs 0 and 1");

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::atomic<pid_t> tid{0};
  std::thread worker([&] {
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stop; });
  });
  while (tid.load() == 0) std::this_thread::yield();

  model::Instance inst;
  inst.instance_id = "priv-test";
  inst.pid = ::getpid();
  inst.vcpus = 1;
  inst.intent.policy = model::CpuPolicy::kDedicated;
  inst.intent.vcpu_pins = {{0, {1}}};
  inst.vcpu_threads = {{tid.load(), 0}};
  auto intents = resolve_intents({inst}, HostPolicy{}, {0, 1});
  ASSERT_EQ(intents.size(), 1u);

  ProcPlacementReader reader;  // the real /proc and /sys/fs/cgroup
  ViolationRegistry reg;

  ASSERT_TRUE(pin(worker, 0));
  auto findings = check_affinity_drift(intents, reader);
  reg.reconcile({"priv-test"}, findings);
  ASSERT_EQ(findings.size(), 1u) << (findings.size() > 1 ? findings[1].detail : "");
  EXPECT_EQ(findings[0].instance_id, "priv-test");
  EXPECT_EQ(findings[0].cls, ViolationClass::kAffinityDrift);
  EXPECT_EQ(findings[0].tid, tid.load());
  EXPECT_EQ(findings[0].vcpu, 0);
  EXPECT_EQ(findings[0].cpus, (std::vector<int>{0}));
  EXPECT_EQ(findings[0].detail,
            fmt::format("tid={} vcpu=0 expected=1 actual=0 via=affinity", tid.load()));
  EXPECT_TRUE(reg.counters("priv-test", ViolationClass::kAffinityDrift)->active);

  ASSERT_TRUE(pin(worker, 1));
  findings = check_affinity_drift(intents, reader);
  reg.reconcile({"priv-test"}, findings);
  EXPECT_TRUE(findings.empty()) << findings[0].detail;
  auto c = reg.counters("priv-test", ViolationClass::kAffinityDrift).value();
  EXPECT_FALSE(c.active);
  EXPECT_EQ(c.count, 1u);

  {
    std::lock_guard lock(mu);
    stop = true;
  }
  cv.notify_all();
  worker.join();
}

}  // namespace
}  // namespace hvtel::pinning
