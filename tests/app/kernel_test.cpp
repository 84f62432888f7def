// The host kernel itself: every BPF program variant passes its verifier, and
// `hvtel status` picks tp_btf and explains what the kernel refuses. No KVM guest.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/test_env.h"

namespace {

TEST(Programs, EveryProgramPassesTheVerifierAndAttaches) {
  HV_REQUIRE_ROOT();
  std::string out;
  int rc = hvtel::testing::run_command(std::string(HVTEL_BIN) + " selftest --json 2>/dev/null", &out);
  EXPECT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out);
  size_t attached = 0;
  for (const auto& p : j) attached += p["attached"].get<bool>() ? 1 : 0;
  // 4 KVM hooks x (tp_btf, raw_tp, tracepoint), 4 scheduler hooks x (tp_btf,
  // raw_tp) and the sched_setaffinity syscall tracepoint: all present here.
  EXPECT_EQ(attached, 12u + 8u + 1u) << out;
}

TEST(Status, PicksTpBtfAndExplainsFentry) {
  HV_REQUIRE_ROOT();
  std::string out;
  ASSERT_EQ(hvtel::testing::run_command(std::string(HVTEL_BIN) + " status --json 2>/dev/null", &out), 0);
  auto j = nlohmann::json::parse(out);
  EXPECT_TRUE(j["kernel"]["btf_vmlinux"].get<bool>());
  EXPECT_TRUE(j["kernel"]["features"]["tp_btf"].get<bool>());
  bool found = false;
  for (const auto& p : j["probes"]) {
    if (p["probe"] == "kvm_userspace_exit") {
      found = true;
      EXPECT_EQ(p["attach"], "tp_btf");
      EXPECT_TRUE(p["available"].get<bool>());
    }
  }
  EXPECT_TRUE(found);
  // A refused feature comes with its reason.
  if (!j["kernel"]["features"]["fentry"].get<bool>()) {
    EXPECT_FALSE(j["kernel"]["feature_reasons"]["fentry"].get<std::string>().empty());
  }
}

}  // namespace
