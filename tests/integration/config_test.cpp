// hvtel serve re-reads --inventory and --nova-conf when they change on disk and
// on SIGHUP; a broken file is logged with its line and counted, and the last
// good version stays in force. Only TERM and INT stop the agent. No KVM guest.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent.h"
#include "support/test_env.h"

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
