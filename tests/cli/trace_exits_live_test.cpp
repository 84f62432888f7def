// `hvtel trace exits` against real KVM guests of the test VMM (a KVM
// scenario: on a host with /dev/kvm, else in the VM lab). The VMM reports its
// own exits; the trace must show exactly those of the followed instance, count
// what its rate limit drops so that shown + dropped is every exit, and leave
// no BPF program behind when it stops.
//
// Where kvm_exit fires (VMX/SVM, the lab's kvm_amd) an exit to the VMM carries
// its vendor reason too; where only kvm_userspace_exit fires (PVM) it carries
// the KVM_EXIT_* reason alone. Either way each exit to the VMM is one event.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/live.h"
#include "support/process.h"
#include "support/test_env.h"

using hvtel::testing::Process;

namespace {

constexpr const char* kUuidA = "7ace0000-0000-4000-8000-0000000000a1";
constexpr const char* kUuidB = "7ace0000-0000-4000-8000-0000000000b2";

bool have_kvm() {
  struct stat st;
  return ::stat("/dev/kvm", &st) == 0;
}

// The VMMs wait this long after READY before their first KVM_RUN, so the
// trace is attached before the first exit: the lab's TCG guest loads BPF slowly.
std::string start_delay_ms() { return std::getenv("LAB_KERNEL") ? "8000" : "3000"; }

using hvtel::testing::json_lines;
using hvtel::testing::programs_named;

struct Traced {
  std::vector<nlohmann::json> exits;
  nlohmann::json summary;
};

// Stops the trace (SIGTERM: it drains its ring, prints the summary and detaches).
Traced stop_trace(Process& trace) {
  trace.terminate();
  EXPECT_EQ(trace.wait(0), 0) << trace.err();
  Traced t;
  for (auto& j : json_lines(trace.out())) {
    if (j.value("type", "") == "exit") t.exits.push_back(j);
    if (j.value("type", "") == "summary") t.summary = j;
  }
  EXPECT_TRUE(t.summary.is_object()) << "no summary line:\n" << trace.out() << trace.err();
  return t;
}

class TraceExitsLive : public ::testing::Test {
 protected:
  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(have_kvm(), "needs /dev/kvm (the VM lab provides it)");
  }
};

TEST_F(TraceExitsLive, ShowsExactlyTheExitsOfTheFollowedInstance) {
  ASSERT_EQ(programs_named("hv_trace_"), 0) << "a trace program is loaded before any follower";
  Process a({TESTVMM_BIN, "-n", "2", "-k", "3000", "--start-delay", start_delay_ms(), "--hold", "120",
             "-uuid", kUuidA, "-name", "guest=trace-a,debug-threads=on"});
  Process b({TESTVMM_BIN, "-n", "1", "-k", "1000", "--start-delay", start_delay_ms(), "--hold", "120",
             "-uuid", kUuidB, "-name", "guest=trace-b,debug-threads=on"});
  ASSERT_TRUE(a.wait_output("READY", 10000, true)) << a.err();
  ASSERT_TRUE(b.wait_output("READY", 10000, true)) << b.err();
  Process trace({HVTEL_BIN, "trace", "exits", "--instance", "trace-a", "--rate", "0", "--json"});
  ASSERT_TRUE(trace.wait_output("tracing pid", 30000, true)) << trace.err();
  EXPECT_EQ(programs_named("hv_trace_"), 3) << "kvm_exit, kvm_entry and kvm_userspace_exit while followed";

  ASSERT_TRUE(a.wait_output("\"ok\"", 60000)) << a.err();
  ASSERT_TRUE(b.wait_output("\"ok\"", 60000)) << b.err();
  auto ja = nlohmann::json::parse(a.out());
  auto t = stop_trace(trace);
  EXPECT_EQ(programs_named("hv_trace_"), 0) << "the trace programs outlived their follower";

  std::map<int, uint64_t> io, hlt;
  uint64_t to_vmm = 0;
  for (const auto& e : t.exits) {
    ASSERT_EQ(e["pid"].get<int>(), a.pid()) << e.dump();
    EXPECT_EQ(e["instance_id"], kUuidA);
    EXPECT_EQ(e["instance_name"], "trace-a");
    if (e["vmm_reason"].is_null()) continue;  // handled in the kernel
    ++to_vmm;
    int vcpu = e["vcpu"].get<int>();
    std::string r = e["vmm_reason"];
    if (r == "io") ++io[vcpu];
    if (r == "hlt") ++hlt[vcpu];
    // The guest's reason of an exit to the VMM, where kvm_exit fires.
    if (e["vendor"] == "svm") {
      EXPECT_EQ(e["reason"], r == "io" ? "ioio" : "hlt") << e.dump();
    } else if (e["vendor"] == "vmx") {
      EXPECT_EQ(e["reason"], r == "io" ? "io_instruction" : "hlt") << e.dump();
    }
  }
  for (const auto& v : ja["vcpus"]) {
    int i = v["index"].get<int>();
    hvtel::testing::figure("traced_io_vcpu" + std::to_string(i), static_cast<double>(io[i]));
    EXPECT_EQ(io[i], v["io_exits"].get<uint64_t>()) << "vCPU " << i;
    EXPECT_EQ(hlt[i], v["hlt_exits"].get<uint64_t>()) << "vCPU " << i;
    EXPECT_EQ(v["intr_exits"].get<uint64_t>(), 0u);
  }
  EXPECT_EQ(to_vmm, 6002u);  // 2 x (3000 io + 1 hlt)
  // The lab's nested SVM fires kvm_exit: every exit to the VMM has its guest reason and a latency.
  if (std::getenv("LAB_KERNEL")) {
    uint64_t with_reason = 0;
    for (const auto& e : t.exits)
      if (!e["vmm_reason"].is_null() && e["vendor"] == "svm" && e["latency_ns"].get<uint64_t>() > 0)
        ++with_reason;
    EXPECT_EQ(with_reason, 6002u);
  }
  EXPECT_EQ(t.summary["events"].get<uint64_t>(), t.exits.size());
  EXPECT_EQ(t.summary["dropped"].get<uint64_t>(), 0u);
  hvtel::testing::figure("traced_events", static_cast<double>(t.exits.size()));
}

TEST_F(TraceExitsLive, TheRateLimitCountsWhatItDrops) {
  Process vmm({TESTVMM_BIN, "-n", "1", "-k", "2000", "--start-delay", start_delay_ms(), "--hold", "120",
               "-uuid", kUuidA});
  ASSERT_TRUE(vmm.wait_output("READY", 10000, true)) << vmm.err();
  // Only exits to the VMM, so every one of them is known to the VMM: 1/s per
  // CPU with a burst of 10 lets a handful through and drops the rest.
  Process trace({HVTEL_BIN, "trace", "exits", "--instance", kUuidA, "--to-vmm", "--rate", "1", "--burst",
                 "10", "--json"});
  ASSERT_TRUE(trace.wait_output("tracing pid", 30000, true)) << trace.err();
  ASSERT_TRUE(vmm.wait_output("\"ok\"", 60000)) << vmm.err();
  auto j = nlohmann::json::parse(vmm.out());
  const uint64_t total = j["total_exits"].get<uint64_t>() + j["vcpus"][0]["intr_exits"].get<uint64_t>();
  ASSERT_EQ(total, 2001u);
  auto t = stop_trace(trace);
  const uint64_t shown = t.exits.size(), dropped = t.summary["dropped"].get<uint64_t>();
  hvtel::testing::figure("rate_limited_shown", static_cast<double>(shown));
  hvtel::testing::figure("rate_limited_dropped", static_cast<double>(dropped));
  EXPECT_EQ(t.summary["events"].get<uint64_t>(), shown);
  EXPECT_EQ(shown + dropped, total) << "every exit is shown or counted as dropped";
  EXPECT_EQ(t.summary["rate_limited"].get<uint64_t>() + t.summary["ring_full"].get<uint64_t>(), dropped);
  // At least the burst passes; 1/s cannot let 2001 through in the run.
  EXPECT_GE(shown, 10u);
  EXPECT_GT(dropped, 1000u);
  for (const auto& e : t.exits) {
    EXPECT_FALSE(e["vmm_reason"].is_null()) << e.dump();
    EXPECT_LE(e["dropped"].get<uint64_t>(), dropped) << e.dump();
  }
}

TEST_F(TraceExitsLive, FiltersOneVcpu) {
  Process vmm({TESTVMM_BIN, "-n", "2", "-k", "1500", "--start-delay", start_delay_ms(), "--hold", "120",
               "-uuid", kUuidB, "-name", "guest=trace-b,debug-threads=on"});
  ASSERT_TRUE(vmm.wait_output("READY", 10000, true)) << vmm.err();
  Process trace({HVTEL_BIN, "trace", "exits", "--instance", std::to_string(vmm.pid()), "--vcpu", "1",
                 "--to-vmm", "--rate", "0", "--json"});
  ASSERT_TRUE(trace.wait_output("tracing pid", 30000, true)) << trace.err();
  ASSERT_TRUE(vmm.wait_output("\"ok\"", 60000)) << vmm.err();
  auto j = nlohmann::json::parse(vmm.out());
  auto t = stop_trace(trace);
  uint64_t io = 0;
  for (const auto& e : t.exits) {
    ASSERT_EQ(e["vcpu"].get<int>(), 1) << e.dump();
    if (e["vmm_reason"] == "io") ++io;
  }
  uint64_t expected = 0;
  for (const auto& v : j["vcpus"])
    if (v["index"].get<int>() == 1) expected = v["io_exits"].get<uint64_t>();
  EXPECT_EQ(expected, 1500u);
  EXPECT_EQ(io, expected);
  EXPECT_EQ(t.exits.size(), 1501u);  // its 1500 io exits and its hlt
}

// Through the agent: `hvtel serve` loads the trace program when a follower
// asks /events for source=exits and unloads it once nobody has asked for 5 s.
TEST_F(TraceExitsLive, ThroughTheAgentOnlyWhileFollowed) {
  const int port = hvtel::testing::free_port();
  const std::string events = "127.0.0.1:" + std::to_string(hvtel::testing::free_port());
  Process agent({HVTEL_BIN, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--libvirt-uri", "",
                 "--poll-interval-ms", "100", "--events-listen", events});
  ASSERT_TRUE(agent.wait_output("serving /events", 60000, true)) << agent.err();
  EXPECT_EQ(programs_named("hv_trace_"), 0) << "the agent loaded the trace program with no follower";

  Process vmm({TESTVMM_BIN, "-n", "1", "-k", "300", "--start-delay", start_delay_ms(), "--hold", "120",
               "-uuid", kUuidA, "-name", "guest=trace-agent,debug-threads=on"});
  ASSERT_TRUE(vmm.wait_output("READY", 10000, true)) << vmm.err();
  // By name: resolved by the CLI on this host, filtered on the agent's instance id.
  Process trace({HVTEL_BIN, "trace", "exits", "--agent", events, "--instance", "trace-agent", "--json"});
  ASSERT_TRUE(trace.wait_output("\"kind\":\"attached\"", 30000)) << trace.out() << trace.err();
  EXPECT_EQ(programs_named("hv_trace_"), 3);
  ASSERT_TRUE(vmm.wait_output("\"ok\"", 60000)) << vmm.err();
  auto j = nlohmann::json::parse(vmm.out());
  ASSERT_EQ(j["total_exits"].get<uint64_t>(), 301u);

  // The agent pulls the ring every 100 ms: wait for the hlt, the last exit.
  auto count = [&](const char* reason) {
    uint64_t n = 0;
    for (const auto& e : json_lines(trace.out()))
      if (e.value("kind", "") == "exit" && e["fields"]["vmm_reason"] == reason) ++n;
    return n;
  };
  for (int i = 0; i < 300 && count("hlt") == 0; ++i) usleep(100000);
  trace.terminate();
  uint64_t io = 0, hlt = 0, others = 0;
  for (const auto& e : json_lines(trace.out())) {
    if (e.value("kind", "") != "exit") continue;
    EXPECT_EQ(e["source"], "exits");
    EXPECT_EQ(e["instance_id"], kUuidA) << e.dump();
    EXPECT_EQ(e["fields"]["instance_name"], "trace-agent");
    EXPECT_EQ(e["fields"]["pid"].get<int>(), vmm.pid());
    EXPECT_EQ(e["fields"]["dropped"].get<uint64_t>(), 0u);
    const auto& r = e["fields"]["vmm_reason"];
    if (r == "io") {
      ++io;
    } else if (r == "hlt") {
      ++hlt;
    } else {
      ++others;
    }
  }
  hvtel::testing::figure("agent_traced_io", static_cast<double>(io));
  hvtel::testing::figure("agent_traced_in_kernel", static_cast<double>(others));
  EXPECT_EQ(io, 300u);
  EXPECT_EQ(hlt, 1u);

  // No follower left: the agent detaches within its 5 s idle time (and one pump round).
  int left = programs_named("hv_trace_");
  for (int i = 0; i < 300 && left != 0; ++i) {
    usleep(100000);
    left = programs_named("hv_trace_");
  }
  EXPECT_EQ(left, 0) << "the agent kept the trace program with no follower";
  EXPECT_TRUE(agent.running()) << agent.err();
}

TEST_F(TraceExitsLive, AnUnknownInstanceIsAClearError) {
  Process trace({HVTEL_BIN, "trace", "exits", "--instance", "no-such-guest"});
  EXPECT_EQ(trace.wait(30000), 1);
  EXPECT_EQ(trace.err(), "hvtel trace exits: no running VMM is instance \"no-such-guest\"\n");
  EXPECT_EQ(trace.out(), "");
}

}  // namespace
