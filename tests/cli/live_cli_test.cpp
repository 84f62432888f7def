// The live CLI against a real agent: `hvtel trace` follows the pinning events
// of a test VMM guest whose vCPU thread is moved off its dedicated pCPU, and
// `hvtel top --once` shows a running guest's exit rate.
//
// This machine has two CPUs: the dedicated pCPU is 1, everything else 0.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "support/agent.h"
#include "support/test_env.h"

using hvtel::testing::Agent;
using hvtel::testing::Process;
using hvtel::testing::Scrape;

namespace {

constexpr const char* kU = "c1100000-0000-4000-8000-0000000000c1";

bool usable() {
  struct stat st;
  return hvtel::testing::is_root() && ::stat("/dev/kvm", &st) == 0 &&
         std::thread::hardware_concurrency() >= 2;
}

class LiveCli : public ::testing::Test {
 protected:
  void SetUp() override { HV_REQUIRE(usable(), "needs root, /dev/kvm and two CPUs"); }
  void TearDown() override {
    for (const auto& f : files_) unlink(f.c_str());
  }
  std::string inventory_dedicated_on_cpu1(const char* uuid) {
    char tmpl[] = "/tmp/hvtel-inventory.XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    std::ofstream(tmpl) << "vmms:\n  - uuid: " << uuid
                        << "\n    policy: dedicated\n    vcpu_pins: {0: \"1\"}\n";
    files_.push_back(tmpl);
    return tmpl;
  }
  std::vector<std::string> files_;
};


// The JSON events `hvtel trace --json` printed so far.
std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> events;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) events.push_back(j);
  }
  return events;
}

// A pin event of `id`: pin_changed or offpin_run, or only `cls` when given.
bool has_pin_event(const std::string& out, const char* id, const char* cls = nullptr) {
  for (const auto& e : json_lines(out)) {
    if (e.value("instance_id", "") != id || e.value("source", "") != "pinning") continue;
    std::string c = e["fields"].value("class", "");
    if (cls ? c == cls : (c == "pin_changed" || c == "offpin_run")) return true;
  }
  return false;
}

// Moves the guest's vCPU 0 thread off its dedicated pCPU 1, as an operator's taskset would.
::testing::AssertionResult move_vcpu0_to_cpu0(Process& vmm) {
  pid_t tid = hvtel::testing::thread_named(vmm.pid(), "CPU 0/KVM");
  if (tid <= 0) return ::testing::AssertionFailure() << "no 'CPU 0/KVM' thread in " << vmm.pid();
  if (hvtel::testing::run_command("taskset -p -c 0 " + std::to_string(tid) + " >/dev/null") != 0)
    return ::testing::AssertionFailure() << "taskset failed for tid " << tid;
  return ::testing::AssertionSuccess();
}

// The local ports of established TCP connections to `addr`'s port, from /proc/net/tcp.
std::set<std::string> clients_of(const std::string& addr) {
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", std::stoi(addr.substr(addr.rfind(':') + 1)));
  std::set<std::string> ports;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state;
    f >> slot >> local >> remote >> state;
    if (state == "01" && remote.substr(remote.find(':') + 1) == port_hex)
      ports.insert(local.substr(local.find(':') + 1));
  }
  return ports;
}

// Waits up to 10 s until `trace` holds its long poll to `addr`. Its first poll returns at once (it
// tells "not there" from "went away"); a connection open over 3 samples 200 ms apart, or a second one, is the
// long poll, so the agent going away now is a restart to `trace`, not an agent never reached.
bool long_poll_open(const std::string& addr) {
  std::map<std::string, int> samples;  // local port -> samples it was seen in
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& p : clients_of(addr))
      if (++samples[p] >= 3) return true;
    if (samples.size() >= 2) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

// Waits up to 5 s for `trace --json` to print a pin event of `id` (of class `cls` when given).
bool wait_pin_event(Process& trace, const char* id, const char* cls = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!has_pin_event(trace.out(), id, cls) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return has_pin_event(trace.out(), id, cls);
}

TEST_F(LiveCli, TraceFollowsThePinningEventsOfAMovedVcpuThread) {
  const std::string events = "127.0.0.1:" + std::to_string(hvtel::testing::free_port());
  Agent agent({"--pinning-zero-series", "--inventory", inventory_dedicated_on_cpu1(kU), "--events-listen", events});
  ASSERT_TRUE(agent.ready()) << agent.process().err();
  ASSERT_TRUE(agent.process().wait_output("serving /events", 5000, true)) << agent.process().err();

  // From "now": started before the guest, so it only sees what follows.
  Process trace({HVTEL_BIN, "trace", "--agent", events, "--json"});
  Process vmm({TESTVMM_BIN, "--storm", "5", "-n", "1", "-a", "1", "-uuid", kU});
  ASSERT_TRUE(vmm.wait_output("READY", 5000, true)) << vmm.err();
  auto s = agent.wait_for(
      [](const Scrape& x) {
        return x.value("hvtel_pinning_violations_total", {{"instance_id", kU}, {"class", "offpin_run"}}) == 0.0;
      },
      5000);
  ASSERT_EQ(s.value("hvtel_pinning_violations_total", {{"instance_id", kU}, {"class", "offpin_run"}}), 0.0)
      << s.text();
  EXPECT_TRUE(trace.running()) << trace.err();
  EXPECT_FALSE(has_pin_event(trace.out(), kU)) << trace.out();  // nothing before the move

  ASSERT_TRUE(move_vcpu0_to_cpu0(vmm));
  // The move raises pin_changed and, once the thread ran off its pin, offpin_run; either may come first.
  ASSERT_TRUE(wait_pin_event(trace, kU, "pin_changed"))
      << "stdout:\n" << trace.out() << "\nstderr:\n" << trace.err();
  // The pin change names who made it.
  bool named = false;
  for (const auto& e : json_lines(trace.out()))
    if (e["fields"].value("class", "") == "pin_changed")
      named = named || e["fields"].value("intruder_comm", "") == "taskset";
  EXPECT_TRUE(named) << trace.out();
  for (const auto& e : json_lines(trace.out())) {
    EXPECT_GT(e.value("seq", 0), 0) << e.dump();
    EXPECT_EQ(e.value("time", "").size(), 24u) << e.dump();  // 2024-05-01T10:00:00.123Z
  }

  // Replaying the ring in the human format, filtered to the instance.
  Process replay({HVTEL_BIN, "trace", "--agent", events, "--from-start", "--instance", kU,
                  "--source", "pinning"});
  ASSERT_TRUE(replay.wait_output(std::string("pin_changed ") + kU, 5000)) << replay.out() << replay.err();
  replay.terminate();
  trace.terminate();
}

// A rollout restarts the agent: trace keeps following, and prints what the
// new agent publishes.
TEST_F(LiveCli, TraceReconnectsWhenTheAgentRestarts) {
  const std::string events = "127.0.0.1:" + std::to_string(hvtel::testing::free_port());
  const std::string inv = inventory_dedicated_on_cpu1(kU);
  auto agent = std::make_unique<Agent>(std::vector<std::string>{"--inventory", inv, "--events-listen", events});
  ASSERT_TRUE(agent->ready()) << agent->process().err();
  ASSERT_TRUE(agent->process().wait_output("serving /events", 5000, true));
  Process trace({HVTEL_BIN, "trace", "--agent", events, "--json"});
  ASSERT_TRUE(long_poll_open(events)) << trace.err();
  agent.reset();
  ASSERT_TRUE(trace.wait_output("reconnecting", 5000, true)) << trace.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_TRUE(trace.running()) << trace.err();

  agent = std::make_unique<Agent>(std::vector<std::string>{"--inventory", inv, "--events-listen", events});
  ASSERT_TRUE(agent->ready()) << agent->process().err();
  ASSERT_TRUE(trace.wait_output("reconnected", 10000, true)) << trace.err();
  Process vmm({TESTVMM_BIN, "--storm", "5", "-n", "1", "-a", "1", "-uuid", kU});
  ASSERT_TRUE(vmm.wait_output("READY", 5000, true)) << vmm.err();
  agent->wait_for([](const Scrape& x) { return x.count("hvtel_vcpu_threads", {{"instance_id", kU}}) == 1; },
                  5000);
  ASSERT_TRUE(move_vcpu0_to_cpu0(vmm));
  EXPECT_TRUE(wait_pin_event(trace, kU)) << "stdout:\n" << trace.out() << "\nstderr:\n" << trace.err();
  trace.terminate();
}

TEST_F(LiveCli, TopOnceShowsARunningGuestWithItsExitRate) {
  Agent agent({"--events-listen", ""});
  ASSERT_TRUE(agent.ready()) << agent.process().err();
  Process vmm({TESTVMM_BIN, "--storm", "8", "-n", "1", "-uuid", kU});
  ASSERT_TRUE(vmm.wait_output("READY", 5000, true)) << vmm.err();
  agent.wait_for([](const Scrape& x) { return x.sum("hvtel_vcpu_userspace_exits_total", {{"instance_id", kU}}) > 0; },
                 5000);
  Process top({HVTEL_BIN, "top", "--once", "--interval", "1", "--agent-metrics",
               "127.0.0.1:" + std::to_string(agent.port())});
  ASSERT_EQ(top.wait(20000), 0) << top.err();
  std::istringstream in(top.out());
  std::string line;
  std::vector<std::string> header, row;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<std::string> cols;
    for (std::string w; words >> w;) cols.push_back(w);
    if (!cols.empty() && cols[0] == "INSTANCE") header = cols;
    if (!cols.empty() && cols[0] == kU) row = cols;
  }
  ASSERT_EQ(header, (std::vector<std::string>{"INSTANCE", "NAME", "VCPUS", "EXITS/s", "VMM_EXITS/s",
                                              "WAIT%", "RQ_P99", "VMM_P50", "VMM_P99", "VIOL"}))
      << top.out();
  ASSERT_EQ(row.size(), header.size()) << top.out();
  EXPECT_EQ(row[2], "1") << top.out();                // one vCPU thread
  EXPECT_GT(std::stod(row[4]), 0.0) << top.out();     // the storm's port I/O exits to the VMM
  hvtel::testing::figure("top_vmm_exits_per_s", std::stod(row[4]));
  EXPECT_NE(row[7], "-") << top.out();                // VMM handling p50 measured
}

TEST(LiveCliNoAgent, TraceAndTopSayTheAgentIsUnreachable) {
  const std::string addr = "127.0.0.1:" + std::to_string(hvtel::testing::free_port());
  Process trace({HVTEL_BIN, "trace", "--agent", addr});
  EXPECT_EQ(trace.wait(10000), 1);
  EXPECT_NE(trace.err().find("cannot reach the agent at " + addr), std::string::npos) << trace.err();
  Process top({HVTEL_BIN, "top", "--once", "--agent-metrics", addr});
  EXPECT_EQ(top.wait(10000), 1);
  EXPECT_NE(top.err().find("cannot scrape the agent at " + addr), std::string::npos) << top.err();
}

}  // namespace
