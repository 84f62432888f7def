// Golden exposition of the registry's collector, and promtool's lint of it.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pinning/violations.h"
#include "support/test_env.h"

namespace hvtel::pinning {
namespace {

constexpr uint64_t kSec = 1'000'000'000ULL;

std::string serialize(const ViolationRegistry& reg) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, reg.Collect());
  return out.str();
}

// Two tracked instances; "a" has an affinity drift active for 1.5 s, kernel
// off-pin runs and intruder time; one rate-limited event; one config error.
std::string scenario() {
  uint64_t now = 100 * kSec;
  RegistryOptions o;
  o.event_burst = 1;
  o.clock = [&now] { return now; };
  ViolationRegistry reg(o);
  const std::vector<std::string> tracked = {"3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10", "pid-4242"};
  Finding f{tracked[0], ViolationClass::kAffinityDrift, 11, 0, {0}, "tid=11 vcpu=0"};
  reg.reconcile(tracked, {f});
  now += 1500 * 1'000'000ULL;
  reg.reconcile(tracked, {f});
  reg.add_kernel_counts(tracked[0], ViolationClass::kOffpinRun, 3, 250'000'000);
  reg.add_foreign_ns(6, tracked[0], IntruderKind::kKthread, 2 * kSec);
  reg.add_foreign_ns(6, tracked[0], IntruderKind::kVmEmulator, 125'000'000);
  ViolationEvent e;
  e.instance_id = tracked[1];
  e.cls = ViolationClass::kIntruder;
  reg.publish(e);
  reg.publish(e);  // dropped: burst 1
  reg.note_config_error(kSourceInventory);
  return serialize(reg);
}

std::string golden_path() { return std::string(HVTEL_PINNING_TESTDATA) + "/exposition.golden"; }

TEST(Exposition, MatchesGolden) {
  std::ifstream in(golden_path());
  ASSERT_TRUE(in) << golden_path();
  std::stringstream golden;
  golden << in.rdbuf();
  EXPECT_EQ(scenario(), golden.str());
}

TEST(Exposition, EmptyRegistryExportsOnlyGlobalCounters) {
  ViolationRegistry reg;
  std::string text = serialize(reg);
  EXPECT_EQ(text.find("hvtel_pinning_violations_total{"), std::string::npos);
  EXPECT_NE(text.find("hvtel_pinning_events_dropped_total 0\n"), std::string::npos);
  EXPECT_NE(text.find("hvtel_pinning_config_errors_total{source=\"nova_conf\"} 0\n"),
            std::string::npos);
}

TEST(Exposition, PromtoolAcceptsIt) {
  bool have_promtool = std::system("command -v promtool >/dev/null 2>&1") == 0;
  HV_REQUIRE(have_promtool, "promtool not installed");
  auto path = std::filesystem::temp_directory_path() /
              ("hvtel-pinning-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path) << scenario();
  std::string cmd = "promtool check metrics < " + path.string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  int status = ::pclose(p);
  std::filesystem::remove(path);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "");
}

}  // namespace
}  // namespace hvtel::pinning
