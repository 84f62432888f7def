#include "kvm/vmm_timing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using hvtel::kvm::VmmTimingOptions;
using hvtel::kvm::VmmTimingSampler;
using namespace std::chrono_literals;

struct FakeMarker : hvtel::kvm::MarkerControl {
  std::vector<std::string> calls;
  bool fail = false;
  hvtel::Status start() override {
    calls.push_back("start");
    if (fail) return hvtel::fail("attach kvm_fpu: refused");
    return {};
  }
  void stop() override { calls.push_back("stop"); }
};

const VmmTimingSampler::Clock::time_point t0{};

TEST(VmmTimingSampler, OpensAWindowEveryPeriodOnSchedule) {
  FakeMarker m;
  VmmTimingSampler s(m, {.window = 500ms, .period = 10000ms});
  EXPECT_EQ(s.next_deadline(), VmmTimingSampler::Clock::time_point::min());
  s.tick(t0);  // attached at load: the first window is now
  EXPECT_TRUE(s.active());
  EXPECT_EQ(s.next_deadline(), t0 + 500ms);
  s.tick(t0 + 499ms);
  EXPECT_TRUE(m.calls.empty());
  s.tick(t0 + 500ms);
  EXPECT_FALSE(s.active());
  EXPECT_EQ(s.next_deadline(), t0 + 10000ms);
  s.tick(t0 + 10003ms);  // a late tick: the window still ends on schedule
  EXPECT_TRUE(s.active());
  EXPECT_EQ(s.next_deadline(), t0 + 10500ms);
  s.tick(t0 + 10500ms);
  EXPECT_EQ(m.calls, (std::vector<std::string>{"stop", "start", "stop"}));
  EXPECT_EQ(s.windows(), 2u);
  EXPECT_DOUBLE_EQ(s.sample_ratio(), 0.05);
}

TEST(VmmTimingSampler, SkipsAWindowThatWasMissedEntirely) {
  FakeMarker m;
  VmmTimingSampler s(m, {.window = 500ms, .period = 10000ms});
  s.tick(t0);
  s.tick(t0 + 600ms);
  s.tick(t0 + 25000ms);  // the main loop stalled past the windows at 10 s and 20 s
  EXPECT_FALSE(s.active());
  EXPECT_EQ(s.next_deadline(), t0 + 30000ms);
  EXPECT_EQ(m.calls, (std::vector<std::string>{"stop"}));
}

TEST(VmmTimingSampler, PeriodZeroKeepsTheMarkerAttached) {
  FakeMarker m;
  VmmTimingSampler s(m, {.window = 500ms, .period = 0ms});
  for (auto t : {0s, 1s, 60s}) s.tick(t0 + t);
  EXPECT_TRUE(m.calls.empty());
  EXPECT_FALSE(s.sampling());
  EXPECT_EQ(s.next_deadline(), VmmTimingSampler::Clock::time_point::max());
  EXPECT_DOUBLE_EQ(s.sample_ratio(), 1.0);
}

TEST(VmmTimingSampler, AWindowAsLongAsThePeriodIsAlwaysOn) {
  FakeMarker m;
  VmmTimingSampler s(m, {.window = 2000ms, .period = 2000ms});
  s.tick(t0);
  s.tick(t0 + 5s);
  EXPECT_TRUE(m.calls.empty());
  EXPECT_DOUBLE_EQ(s.sample_ratio(), 1.0);
}

TEST(VmmTimingSampler, AFailedAttachIsCountedAndRetriedNextPeriod) {
  FakeMarker m;
  VmmTimingSampler s(m, {.window = 500ms, .period = 10000ms});
  s.tick(t0);
  s.tick(t0 + 500ms);
  m.fail = true;
  s.tick(t0 + 10000ms);
  EXPECT_FALSE(s.active());
  EXPECT_EQ(s.attach_errors(), 1u);
  EXPECT_DOUBLE_EQ(s.sample_ratio(), 0.0);  // nothing is timed while it cannot attach
  m.fail = false;
  s.tick(t0 + 20000ms);
  EXPECT_TRUE(s.active());
  EXPECT_DOUBLE_EQ(s.sample_ratio(), 0.05);
  EXPECT_EQ(m.calls, (std::vector<std::string>{"stop", "start", "start"}));
}

}  // namespace
