// hvtel serve re-reads --inventory and --nova-conf when they change on disk and
// on SIGHUP; a broken file is logged with its line and counted, and the last
// good version stays in force. Only TERM and INT stop the agent. No KVM guest.
#include <crypt.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "support/agent.h"
#include "support/test_env.h"
#include "base/util/caps.h"

using hvtel::testing::Agent;

namespace {

constexpr const char* kUuidA = "a0000000-0000-4000-8000-00000000000a";
constexpr const char* kUuidB = "b0000000-0000-4000-8000-00000000000b";

std::string entry(const char* uuid, const char* cpu) {
  return std::string("  - uuid: ") + uuid + "\n    policy: dedicated\n    vcpu_pins: {0: \"" + cpu + "\"}\n";
}

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

double config_errors(const Agent& agent) {
  return agent.scrape().value("hvtel_pinning_config_errors_total", {{"source", "inventory"}}).value_or(-1);
}

// Waits until the inventory error counter reaches `want`; the seconds it took, or -1.
double wait_errors(const Agent& agent, double want) {
  const auto t0 = std::chrono::steady_clock::now();
  agent.wait_for([&](const hvtel::testing::Scrape& s) {
    return s.value("hvtel_pinning_config_errors_total", {{"source", "inventory"}}).value_or(-1) == want;
  }, 2000);
  if (config_errors(agent) != want) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class ConfigReload : public ::testing::Test {
 protected:
  void SetUp() override {
    HV_REQUIRE_ROOT();
    dir_ = std::filesystem::temp_directory_path() / ("hvtel-config-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto tmp = dir_ / (name + ".tmp");
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, dir_ / name);  // as an editor or a ConfigMap update does
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigReload, EditsBreakageDeletionAndSignals) {
  const std::string inv = write("inventory.yaml", "vmms:\n" + entry(kUuidA, "1"));
  Agent agent({"--inventory", inv});
  ASSERT_TRUE(agent.ready()) << agent.process().err();
  ASSERT_TRUE(agent.process().wait_output(inv + ": 1 VMM entries", 5000, true)) << agent.process().err();
  EXPECT_EQ(config_errors(agent), 0.0);

  // A broken edit: logged with file and line, counted, the last good inventory kept.
  write("inventory.yaml", "vmms:\n  - uuid: not-a-uuid\n");
  const double broken_s = wait_errors(agent, 1);
  hvtel::testing::figure("broken_edit_counted_after_s", broken_s);
  EXPECT_GE(broken_s, 0) << agent.process().err();
  EXPECT_NE(agent.process().err().find(inv + ":2: vmms[0].uuid: 'not-a-uuid' is not a UUID"), std::string::npos)
      << agent.process().err();
  EXPECT_NE(agent.process().err().find("keeping the previous inventory"), std::string::npos);

  // A valid edit takes effect within 2 s.
  write("inventory.yaml", "vmms:\n" + entry(kUuidA, "1") + entry(kUuidB, "0"));
  EXPECT_TRUE(agent.process().wait_output(inv + ": 2 VMM entries", 2000, true)) << agent.process().err();

  // SIGHUP reloads; USR1/USR2 are ignored. Only TERM/INT stop the agent.
  ASSERT_EQ(::kill(agent.process().pid(), SIGHUP), 0);
  EXPECT_TRUE(agent.process().wait_output("SIGHUP: reloading the pinning configuration", 2000, true));
  EXPECT_TRUE(agent.process().wait_output("2 VMM entries", 2000, true));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(occurrences(agent.process().err(), inv + ": 2 VMM entries"), 2u) << agent.process().err();
  ASSERT_EQ(::kill(agent.process().pid(), SIGUSR1), 0);
  ASSERT_EQ(::kill(agent.process().pid(), SIGUSR2), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(agent.process().running()) << agent.process().err();

  // Deleted: logged and counted, the agent keeps serving with the last good inventory.
  std::filesystem::remove(inv);
  EXPECT_GE(wait_errors(agent, 2), 0) << agent.process().err();
  EXPECT_TRUE(agent.process().running());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(config_errors(agent), 2.0);  // a file still missing is not re-read on every poll
}

// --web.config.file reaches the agent's /metrics, and SIGHUP reloads it.
TEST_F(ConfigReload, WebConfigFileBasicAuthReloadedOnSighup) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  ASSERT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt), nullptr);
  auto data = std::make_unique<crypt_data>();
  const std::string hash = crypt_rn("pw", salt, data.get(), sizeof(crypt_data));
  const std::string web = write("web.yml", "basic_auth_users:\n  prometheus: " + hash + "\n");
  Agent agent({"--web.config.file", web});
  ASSERT_TRUE(agent.ready()) << agent.process().err();
  const std::string url = "http://127.0.0.1:" + std::to_string(agent.port()) + "/metrics";
  auto code = [&](const std::string& args) {
    std::string out;
    hvtel::testing::run_command("curl -s -o /dev/null -w '%{http_code}' " + args + " " + url, &out);
    return out;
  };
  EXPECT_EQ(code(""), "401");
  EXPECT_EQ(code("-u prometheus:wrong"), "401");
  EXPECT_EQ(code("-u prometheus:pw"), "200");
  write("web.yml", "");  // no authentication
  ::kill(agent.process().pid(), SIGHUP);
  ASSERT_TRUE(agent.process().wait_output(web + ": loaded (plain HTTP, 0 basic-auth users)", 5000, true))
      << agent.process().err();
  EXPECT_EQ(code(""), "200");
}

// A device or a FIFO given as the inventory: refused at once, counted, and the
// agent serves (it used to read /dev/zero until it had 2.5 GB, or block on the FIFO).
TEST_F(ConfigReload, InventoryThatIsNotARegularFileIsRefusedAndServed) {
  const std::string fifo = (dir_ / "inventory.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : {std::string("/dev/zero"), fifo}) {
    SCOPED_TRACE(path);
    Agent agent({"--inventory", path});
    ASSERT_TRUE(agent.ready()) << agent.process().err();
    EXPECT_EQ(config_errors(agent), 1.0);
    EXPECT_NE(agent.process().err().find(path + ": not a regular file"), std::string::npos) << agent.process().err();
  }
}

}  // namespace

namespace {

// A field of /proc/<pid>/status ("CapEff") as a number (hex for Cap*).
uint64_t status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0)
      return std::stoull(line.substr(field.size() + 1), nullptr, field.rfind("Cap", 0) == 0 ? 16 : 10);
  return ~uint64_t{0};
}

// After start-up the agent keeps only what util/caps.h lists, in every set,
// and still does its work: scrapes, probes attached, reloads.
TEST(Privileges, DroppedAfterStartup) {
  HV_REQUIRE_ROOT();
  Agent agent;
  ASSERT_TRUE(agent.ready()) << agent.process().err();
  ASSERT_TRUE(agent.process().wait_output("capabilities dropped", 5000, true)) << agent.process().err();
  const pid_t pid = agent.process().pid();
  // Without openvswitch.ko (as on the development machine) the agent waits for it with
  // cap_sys_admin and cap_setpcap; the VM lab's hvtel_ovs_datapath checks they go once it is loaded.
  std::vector<std::string> kept{"cap_dac_read_search", "cap_sys_ptrace", "cap_perfmon", "cap_bpf"};
  const bool module = std::filesystem::exists("/sys/module/openvswitch");
  if (!module) kept = {"cap_dac_read_search", "cap_setpcap", "cap_sys_ptrace", "cap_sys_admin", "cap_perfmon", "cap_bpf"};
  EXPECT_EQ(hvtel::capability_names(status_field(pid, "CapEff")), kept);
  EXPECT_EQ(hvtel::capability_names(status_field(pid, "CapPrm")), kept);
  EXPECT_EQ(hvtel::capability_names(status_field(pid, "CapBnd")), kept);
  EXPECT_EQ(status_field(pid, "CapInh"), 0u);
  EXPECT_EQ(status_field(pid, "CapAmb"), 0u);
  EXPECT_EQ(status_field(pid, "NoNewPrivs"), 1u);
  EXPECT_NE(agent.process().err().find(
                "capabilities dropped; kept: cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search" +
                std::string(module ? "\n" : ",cap_sys_admin,cap_setpcap (cap_sys_admin and cap_setpcap until "
                                             "openvswitch.ko is loaded)")),
            std::string::npos) << agent.process().err();
  auto s = agent.scrape();
  EXPECT_EQ(s.value("hvtel_probe_attached", {{"probe", "sched_switch"}}), 1.0) << s.text();
  ::kill(pid, SIGHUP);
  EXPECT_TRUE(agent.process().wait_output("SIGHUP: reloading", 5000, true));
  EXPECT_TRUE(agent.process().running());
}

// Without privileges the error names what is missing (it used to blame tracefs).
TEST(Privileges, WithoutThemTheErrorNamesTheCapability) {
  HV_REQUIRE_ROOT();
  hvtel::testing::Process agent({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 "--inh-caps=-all", HVTEL_BIN, "serve", "--listen", "127.0.0.1:0",
                                 "--events-listen", "", "--libvirt-uri", ""});
  EXPECT_EQ(agent.wait(10000), 1);
  EXPECT_NE(agent.err().find("load vcpu_exits: Operation not permitted (needs CAP_BPF and CAP_PERFMON, or root)"),
            std::string::npos) << agent.err();
}

}  // namespace
