// `hvtel trace runq` against real KVM guests of the test VMM (a KVM scenario:
// on a host with /dev/kvm, else in the VM lab). Two guests run; the followed
// one has both vCPUs pinned to pCPU 1 next to a CPU hog, so its vCPU threads
// wait behind it (preemptions) as well as after their wakeups. The kernel's
// own count of the times each vCPU thread was switched in (a tracefs hist on
// sched_switch, set up while the threads are still blocked before their first
// KVM_RUN and read once they are blocked again) is the number of waits: the
// trace must show exactly those, of those threads only, on pCPU 1.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/agent.h"
#include "support/live.h"
#include "support/process.h"
#include "support/test_env.h"

using hvtel::testing::HistCount;
using hvtel::testing::json_lines;
using hvtel::testing::Process;
using hvtel::testing::programs_named;

namespace {

constexpr const char* kUuidA = "7ace0000-0000-4000-8000-0000000000c1";
constexpr const char* kUuidB = "7ace0000-0000-4000-8000-0000000000d2";

bool have_kvm() {
  struct stat st;
  return ::stat("/dev/kvm", &st) == 0;
}

// The VMMs wait this long after READY before their first KVM_RUN, so the
// trace is attached while the vCPU threads are blocked: the lab's TCG guest loads BPF slowly.
int start_delay_ms() { return std::getenv("LAB_KERNEL") ? 8000 : 3000; }

// vCPU index -> tid, from the thread names ("CPU n/KVM"), which exist before READY.
std::map<int, pid_t> vcpu_tids(pid_t pid) {
  std::map<int, pid_t> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream f(task.path() / "comm");
    std::string comm;
    std::getline(f, comm);
    if (comm.rfind("CPU ", 0) == 0) out[std::stoi(comm.substr(4))] = std::stoi(task.path().filename());
  }
  return out;
}

struct Traced {
  std::vector<nlohmann::json> waits;
  nlohmann::json summary;
};

// Stops the trace (SIGTERM: it drains its ring, prints the summary and detaches).
Traced stop_trace(Process& trace) {
  trace.terminate();
  EXPECT_EQ(trace.wait(0), 0) << trace.err();
  Traced t;
  for (auto& j : json_lines(trace.out())) {
    if (j.value("type", "") == "runq") t.waits.push_back(j);
    if (j.value("type", "") == "summary") t.summary = j;
  }
  EXPECT_TRUE(t.summary.is_object()) << "no summary line:\n" << trace.out() << trace.err();
  return t;
}

std::string filter_of(const std::map<int, pid_t>& tids) {
  std::string f;
  for (const auto& [_, tid] : tids)
    f += (f.empty() ? "" : " || ") + std::string("next_pid==") + std::to_string(tid);
  return f;
}

class TraceRunqLive : public ::testing::Test {
 protected:
  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(have_kvm(), "needs /dev/kvm (the VM lab provides it)");
    HV_REQUIRE(std::thread::hardware_concurrency() >= 2, "needs pCPU 1");
  }
};

TEST_F(TraceRunqLive, ShowsExactlyTheWaitsOfTheFollowedVcpusAsTheKernelCountsThem) {
  ASSERT_EQ(programs_named("hv_trace_rq"), 0) << "a trace program is loaded before any follower";
  const std::string delay = std::to_string(start_delay_ms());
  Process a({TESTVMM_BIN, "--storm", "3", "-n", "2", "-a", "1", "--start-delay", delay, "--hold", "120",
             "-uuid", kUuidA, "-name", "guest=runq-a,debug-threads=on"});
  Process b({TESTVMM_BIN, "--storm", "3", "-n", "1", "--start-delay", delay, "--hold", "120", "-uuid", kUuidB,
             "-name", "guest=runq-b,debug-threads=on"});
  ASSERT_TRUE(a.wait_output("READY", 10000, true)) << a.err();
  ASSERT_TRUE(b.wait_output("READY", 10000, true)) << b.err();
  auto tids = vcpu_tids(a.pid());
  ASSERT_EQ(tids.size(), 2u);
  HistCount switched_in("sched/sched_switch", "next_pid", filter_of(tids));
  ASSERT_TRUE(switched_in.ok()) << "cannot set a hist trigger on sched_switch";

  Process trace({HVTEL_BIN, "trace", "runq", "--instance", "runq-a", "--rate", "0", "--json"});
  ASSERT_TRUE(trace.wait_output("tracing pid", 30000, true)) << trace.err();
  EXPECT_EQ(programs_named("hv_trace_rq"), 3)
      << "sched_switch, sched_wakeup and sched_wakeup_new while followed";
  // The hog shares pCPU 1 with both vCPUs over their 3 s run (and the rest of the start delay).
  std::thread hog([] { hvtel::testing::hog(1, start_delay_ms() / 1000.0 + 4); });
  auto ja = hvtel::testing::vmm_summary(a, 90000);
  auto jb = hvtel::testing::vmm_summary(b, 90000);
  hog.join();
  ASSERT_TRUE(ja.value("ok", false)) << ja.dump();
  ASSERT_TRUE(jb.value("ok", false)) << jb.dump();
  auto t = stop_trace(trace);
  EXPECT_EQ(programs_named("hv_trace_rq"), 0) << "the trace programs outlived their follower";
  uint64_t hist_dropped = 0;
  auto kernel = switched_in.counts(&hist_dropped);
  ASSERT_EQ(hist_dropped, 0u);

  std::map<pid_t, int> vcpu_of;
  for (const auto& [v, tid] : tids) vcpu_of[tid] = v;
  std::map<pid_t, uint64_t> traced;
  uint64_t preempted = 0, woken = 0;
  for (const auto& e : t.waits) {
    ASSERT_EQ(e["pid"].get<int>(), a.pid()) << e.dump();
    pid_t tid = e["tid"].get<int>();
    ASSERT_EQ(vcpu_of.count(tid), 1u) << "not a vCPU thread of the followed instance: " << e.dump();
    EXPECT_EQ(e["vcpu"].get<int>(), vcpu_of[tid]) << e.dump();
    EXPECT_EQ(e["cpu"].get<int>(), 1) << "pinned to pCPU 1: " << e.dump();
    EXPECT_EQ(e["instance_id"], kUuidA);
    EXPECT_EQ(e["instance_name"], "runq-a");
    EXPECT_GT(e["latency_ns"].get<uint64_t>(), 0u) << e.dump();
    ++traced[tid];
    if (e["kind"] == "preempt") ++preempted;
    if (e["kind"] == "wakeup") ++woken;
  }
  EXPECT_EQ(preempted + woken, t.waits.size()) << "every wait is a wakeup or a preemption";
  for (const auto& [v, tid] : tids) {
    hvtel::testing::figure("traced_waits_vcpu" + std::to_string(v), static_cast<double>(traced[tid]));
    hvtel::testing::figure("kernel_switch_ins_vcpu" + std::to_string(v), static_cast<double>(kernel[tid]));
    EXPECT_GT(kernel[tid], 0u) << "vCPU " << v;
    EXPECT_EQ(traced[tid], kernel[tid]) << "vCPU " << v << " (tid " << tid << ")";
  }
  // Behind a hog at the same weight, a busy vCPU is preempted: both kinds of wait appear.
  hvtel::testing::figure("preempt_waits", static_cast<double>(preempted));
  hvtel::testing::figure("wakeup_waits", static_cast<double>(woken));
  EXPECT_GT(preempted, 0u);
  EXPECT_GT(woken, 0u);
  EXPECT_EQ(t.summary["events"].get<uint64_t>(), t.waits.size());
  EXPECT_EQ(t.summary["dropped"].get<uint64_t>(), 0u);
}

TEST_F(TraceRunqLive, OneVcpuAndTheRateLimitCountsWhatItDrops) {
  const std::string delay = std::to_string(start_delay_ms());
  Process vmm({TESTVMM_BIN, "--storm", "3", "-n", "2", "-a", "1", "--start-delay", delay, "--hold", "120",
               "-uuid", kUuidA, "-name", "guest=runq-rate,debug-threads=on"});
  ASSERT_TRUE(vmm.wait_output("READY", 10000, true)) << vmm.err();
  auto tids = vcpu_tids(vmm.pid());
  ASSERT_EQ(tids.size(), 2u);
  HistCount switched_in("sched/sched_switch", "next_pid", filter_of(tids));
  ASSERT_TRUE(switched_in.ok());
  // vCPU 1 only, by pid; 1/s per CPU with a burst of 5 lets a handful through.
  Process trace({HVTEL_BIN, "trace", "runq", "--instance", std::to_string(vmm.pid()), "--vcpu", "1", "--rate",
                 "1", "--burst", "5", "--json"});
  ASSERT_TRUE(trace.wait_output("tracing pid", 30000, true)) << trace.err();
  std::thread hog([] { hvtel::testing::hog(1, start_delay_ms() / 1000.0 + 4); });
  auto j = hvtel::testing::vmm_summary(vmm, 90000);
  hog.join();
  ASSERT_TRUE(j.value("ok", false)) << j.dump();
  auto t = stop_trace(trace);
  auto kernel = switched_in.counts();
  const uint64_t total = kernel[tids[1]];
  const uint64_t shown = t.waits.size(), dropped = t.summary["dropped"].get<uint64_t>();
  hvtel::testing::figure("rate_limited_shown", static_cast<double>(shown));
  hvtel::testing::figure("rate_limited_dropped", static_cast<double>(dropped));
  hvtel::testing::figure("kernel_switch_ins_vcpu1", static_cast<double>(total));
  for (const auto& e : t.waits) {
    ASSERT_EQ(e["tid"].get<int>(), tids[1]) << e.dump();
    EXPECT_EQ(e["vcpu"].get<int>(), 1);
  }
  EXPECT_EQ(t.summary["events"].get<uint64_t>(), shown);
  EXPECT_EQ(shown + dropped, total) << "every wait of vCPU 1 is shown or counted as dropped";
  EXPECT_EQ(t.summary["rate_limited"].get<uint64_t>() + t.summary["ring_full"].get<uint64_t>(), dropped);
  EXPECT_GE(shown, 5u);
  EXPECT_GT(dropped, 0u);
}

// Through the agent (/events?source=runq): the agent loads the runq object for the first follower
// and unloads it once none is left; what it streams is what the standalone command shows.
TEST_F(TraceRunqLive, ThroughTheAgentOnlyWhileFollowed) {
  const int port = hvtel::testing::free_port();
  const std::string events = "127.0.0.1:" + std::to_string(hvtel::testing::free_port());
  Process agent({HVTEL_BIN, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--libvirt-uri", "",
                 "--poll-interval-ms", "100", "--events-listen", events});
  ASSERT_TRUE(agent.wait_output("serving /events", 60000, true)) << agent.err();
  EXPECT_EQ(programs_named("hv_trace_rq"), 0) << "the agent loaded the runq program with no follower";

  const std::string delay = std::to_string(start_delay_ms());
  Process vmm({TESTVMM_BIN, "--storm", "2", "-n", "1", "-a", "1", "--start-delay", delay, "--hold", "120",
               "-uuid", kUuidA, "-name", "guest=runq-agent,debug-threads=on"});
  ASSERT_TRUE(vmm.wait_output("READY", 10000, true)) << vmm.err();
  auto tids = vcpu_tids(vmm.pid());
  ASSERT_EQ(tids.size(), 1u);
  HistCount switched_in("sched/sched_switch", "next_pid", filter_of(tids));
  ASSERT_TRUE(switched_in.ok());
  Process trace({HVTEL_BIN, "trace", "runq", "--agent", events, "--instance", "runq-agent", "--json"});
  ASSERT_TRUE(trace.wait_output("\"kind\":\"attached\"", 30000)) << trace.out() << trace.err();
  EXPECT_EQ(programs_named("hv_trace_rq"), 3);
  std::thread hog([] { hvtel::testing::hog(1, start_delay_ms() / 1000.0 + 3); });
  auto j = hvtel::testing::vmm_summary(vmm, 90000);
  hog.join();
  ASSERT_TRUE(j.value("ok", false)) << j.dump();
  auto kernel = switched_in.counts();
  const uint64_t want = kernel[tids[0]];

  auto waits = [&] {
    std::vector<nlohmann::json> out;
    for (auto& e : json_lines(trace.out()))
      if (e.value("kind", "") == "runq") out.push_back(e);
    return out;
  };
  // The agent pulls the ring every 100 ms: wait until the kernel's count has arrived.
  for (int i = 0; i < 100 && waits().size() < want; ++i) usleep(100000);
  trace.terminate();
  auto got = waits();
  for (const auto& e : got) {
    EXPECT_EQ(e["source"], "runq");
    EXPECT_EQ(e["instance_id"], kUuidA) << e.dump();
    EXPECT_EQ(e["fields"]["instance_name"], "runq-agent");
    EXPECT_EQ(e["fields"]["tid"].get<int>(), tids[0]) << e.dump();
    EXPECT_EQ(e["fields"]["vcpu"].get<int>(), 0);
    EXPECT_EQ(e["fields"]["cpu"].get<int>(), 1);
    EXPECT_EQ(e["fields"]["dropped"].get<uint64_t>(), 0u);
  }
  hvtel::testing::figure("agent_traced_waits", static_cast<double>(got.size()));
  hvtel::testing::figure("kernel_switch_ins", static_cast<double>(want));
  EXPECT_GT(want, 0u);
  EXPECT_EQ(got.size(), want);

  int left = programs_named("hv_trace_rq");
  for (int i = 0; i < 300 && left != 0; ++i) {
    usleep(100000);
    left = programs_named("hv_trace_rq");
  }
  EXPECT_EQ(left, 0) << "the agent kept the runq program with no follower";
  EXPECT_TRUE(agent.running()) << agent.err();
}

TEST_F(TraceRunqLive, AnUnknownInstanceIsAClearError) {
  Process trace({HVTEL_BIN, "trace", "runq", "--instance", "no-such-guest"});
  EXPECT_EQ(trace.wait(30000), 1);
  EXPECT_EQ(trace.err(), "hvtel trace runq: no running VMM is instance \"no-such-guest\"\n");
  EXPECT_EQ(trace.out(), "");
}

}  // namespace
