// Test-environment checks shared by every privileged test.
//
// HV_REQUIRE(cond, why): when cond is false the test is skipped on a developer
// machine but FAILS in CI (CI=true), so a green CI run always means the real
// thing was exercised.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hvtel::testing {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::strcmp(ci, "true") == 0;
}

inline bool is_root() { return geteuid() == 0; }

// A figure the test log shows wherever a KVM scenario ran (host or VM lab):
// tests/vmlab/kvm_scenario.sh collects these lines into Testing/kvm-scenarios.log.
inline void figure(const std::string& name, double value) {
  std::printf("FIGURE %s=%.15g\n", name.c_str(), value);
  std::fflush(stdout);
}

}  // namespace hvtel::testing

#define HV_REQUIRE(cond, why)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      if (::hvtel::testing::in_ci()) {                                          \
        FAIL() << "required in CI: " << (why);                                  \
      } else {                                                                  \
        GTEST_SKIP() << (why);                                                  \
      }                                                                         \
    }                                                                           \
  } while (0)

#define HV_REQUIRE_ROOT() HV_REQUIRE(::hvtel::testing::is_root(), "needs root")
