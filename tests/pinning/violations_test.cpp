#include "pinning/violations.h"

#include <gtest/gtest.h>

#include <thread>

namespace hvtel::pinning {
namespace {

constexpr uint64_t kSec = 1'000'000'000ULL;
constexpr uint64_t kMs = 1'000'000ULL;

class RegistryTest : public ::testing::Test {
 protected:
  RegistryOptions options(size_t ring = 4096, uint32_t rate = 10, uint32_t burst = 20) {
    RegistryOptions o;
    o.ring_capacity = ring;
    o.events_per_second = rate;
    o.event_burst = burst;
    o.clock = [this] { return now_; };
    return o;
  }
  static Finding drift(const std::string& id, pid_t tid, const std::string& detail) {
    return Finding{id, ViolationClass::kAffinityDrift, tid, 0, {0}, detail};
  }
  static ViolationEvent kernel_event(const std::string& id, ViolationClass c, int pcpu = 3) {
    ViolationEvent e;
    e.instance_id = id;
    e.cls = c;
    e.vcpu = 1;
    e.pcpu = pcpu;
    e.duration_ns = 1500;
    e.intruder_comm = "kworker/3:1";
    e.intruder_pid = 77;
    return e;
  }
  uint64_t now_ = 1000 * kSec;
};

TEST_F(RegistryTest, TransitionsCountOnceAndSecondsAccumulateWhileActive) {
  ViolationRegistry reg(options());
  const std::vector<std::string> tracked = {"a", "b"};
  reg.reconcile(tracked, {});
  EXPECT_EQ(reg.counters("a", ViolationClass::kAffinityDrift)->count, 0u);

  now_ += kSec;
  reg.reconcile(tracked, {drift("a", 11, "d1")});  // inactive -> active at t=1001
  auto c = reg.counters("a", ViolationClass::kAffinityDrift).value();
  EXPECT_EQ(c.count, 1u);
  EXPECT_EQ(c.ns, 0u);
  EXPECT_TRUE(c.active);

  now_ += kSec;
  reg.reconcile(tracked, {drift("a", 11, "d1")});
  now_ += 500 * kMs;
  reg.reconcile(tracked, {drift("a", 11, "d1"), drift("a", 12, "d2")});  // still one violation
  c = reg.counters("a", ViolationClass::kAffinityDrift).value();
  EXPECT_EQ(c.count, 1u);
  EXPECT_EQ(c.ns, 1500 * kMs);

  now_ += kSec;
  reg.reconcile(tracked, {});  // active -> inactive: no more time
  c = reg.counters("a", ViolationClass::kAffinityDrift).value();
  EXPECT_EQ(c.count, 1u);
  EXPECT_EQ(c.ns, 1500 * kMs);
  EXPECT_FALSE(c.active);

  now_ += kSec;
  reg.reconcile(tracked, {drift("a", 11, "d1")});  // again: second transition
  EXPECT_EQ(reg.counters("a", ViolationClass::kAffinityDrift)->count, 2u);
  EXPECT_EQ(reg.counters("b", ViolationClass::kAffinityDrift)->count, 0u);

  // Events: raised d1, raised d2, cleared (after 2.5 s), raised d1.
  auto batch = reg.events_since(0);
  ASSERT_EQ(batch.events.size(), 4u);
  EXPECT_EQ(batch.events[0].kind, EventKind::kRaised);
  EXPECT_EQ(batch.events[0].detail, "d1");
  EXPECT_EQ(batch.events[0].time_ns, 1001 * kSec);
  EXPECT_EQ(batch.events[0].pcpu, 0);
  EXPECT_EQ(batch.events[0].vcpu, 0);
  EXPECT_EQ(batch.events[1].detail, "d2");
  EXPECT_EQ(batch.events[2].kind, EventKind::kCleared);
  EXPECT_EQ(batch.events[2].duration_ns, 2500 * kMs);
  EXPECT_EQ(batch.events[3].kind, EventKind::kRaised);
  EXPECT_EQ(batch.cursor, 4u);
  EXPECT_EQ(batch.missed, 0u);
}

TEST_F(RegistryTest, KernelCountsAddToTheSameCounters) {
  ViolationRegistry reg(options());
  reg.reconcile({"a"}, {});
  EXPECT_TRUE(reg.add_kernel_counts("a", ViolationClass::kOffpinRun, 3, 2 * kMs));
  EXPECT_TRUE(reg.add_kernel_counts("a", ViolationClass::kOffpinRun, 2, 5 * kMs));
  auto c = reg.counters("a", ViolationClass::kOffpinRun).value();
  EXPECT_EQ(c.count, 5u);
  EXPECT_EQ(c.ns, 7 * kMs);
  EXPECT_FALSE(c.active);

  // The static PV7 part and the kernel PV7 part share one counter.
  reg.reconcile({"a"}, {Finding{"a", ViolationClass::kSharedOnDedicated, 0, -1, {4}, "x"}});
  reg.add_kernel_counts("a", ViolationClass::kSharedOnDedicated, 4, kSec);
  c = reg.counters("a", ViolationClass::kSharedOnDedicated).value();
  EXPECT_EQ(c.count, 5u);
  EXPECT_EQ(c.ns, kSec);
  EXPECT_TRUE(c.active);

  // Untracked instances create no series.
  EXPECT_FALSE(reg.add_kernel_counts("ghost", ViolationClass::kOffpinRun, 1, 1));
  EXPECT_FALSE(reg.add_foreign_ns(3, "ghost", IntruderKind::kKthread, 1));
  EXPECT_FALSE(reg.counters("ghost", ViolationClass::kOffpinRun));
  EXPECT_EQ(reg.orphan_updates(), 2u);
}

TEST_F(RegistryTest, FindingsForUntrackedOrKernelClassesAreIgnored) {
  ViolationRegistry reg(options());
  reg.reconcile({"a"}, {drift("zzz", 1, "x"),
                        Finding{"a", ViolationClass::kOffpinRun, 0, -1, {}, "not static"}});
  EXPECT_FALSE(reg.counters("zzz", ViolationClass::kAffinityDrift));
  EXPECT_EQ(reg.counters("a", ViolationClass::kOffpinRun)->count, 0u);
  EXPECT_TRUE(reg.active_findings().empty());
}

TEST_F(RegistryTest, DisappearingInstancesLoseTheirState) {
  ViolationRegistry reg(options());
  reg.reconcile({"a"}, {drift("a", 1, "x")});
  reg.add_foreign_ns(2, "a", IntruderKind::kHost, 10);
  reg.reconcile({}, {});
  EXPECT_FALSE(reg.counters("a", ViolationClass::kAffinityDrift));
  reg.reconcile({"a"}, {});
  EXPECT_EQ(reg.counters("a", ViolationClass::kAffinityDrift)->count, 0u);
}

TEST_F(RegistryTest, RateLimitDropsExactlyTheExcess) {
  ViolationRegistry reg(options(4096, 10, 20));
  reg.reconcile({"a", "b"}, {});
  int accepted = 0;
  for (int i = 0; i < 25; ++i) accepted += reg.publish(kernel_event("a", ViolationClass::kIntruder));
  EXPECT_EQ(accepted, 20);  // the burst
  EXPECT_EQ(reg.events_dropped(), 5u);

  // Another (instance, class) has its own bucket.
  EXPECT_TRUE(reg.publish(kernel_event("a", ViolationClass::kOffpinRun)));
  EXPECT_TRUE(reg.publish(kernel_event("b", ViolationClass::kIntruder)));

  now_ += 250 * kMs;  // 2.5 tokens at 10/s
  accepted = 0;
  for (int i = 0; i < 5; ++i) accepted += reg.publish(kernel_event("a", ViolationClass::kIntruder));
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(reg.events_dropped(), 8u);

  now_ += 50 * kMs;  // the half token left + 0.5 = 1 token
  EXPECT_TRUE(reg.publish(kernel_event("a", ViolationClass::kIntruder)));
  EXPECT_FALSE(reg.publish(kernel_event("a", ViolationClass::kIntruder)));

  now_ += 3600 * kSec;  // a long idle refills to the burst, not beyond
  accepted = 0;
  for (int i = 0; i < 30; ++i) accepted += reg.publish(kernel_event("a", ViolationClass::kIntruder));
  EXPECT_EQ(accepted, 20);
  EXPECT_EQ(reg.events_dropped(), 9u + 10u);
}

TEST_F(RegistryTest, RingIsBoundedAndReadersLearnWhatTheyMissed) {
  ViolationRegistry reg(options(8, 1000, 1000));
  reg.reconcile({"a"}, {});
  for (int i = 0; i < 20; ++i) {
    auto e = kernel_event("a", ViolationClass::kOffpinRun, i);
    e.time_ns = 5000 + i;
    ASSERT_TRUE(reg.publish(e));
  }
  EXPECT_EQ(reg.last_seq(), 20u);
  auto all = reg.events_since(0);
  ASSERT_EQ(all.events.size(), 8u);
  EXPECT_EQ(all.events.front().seq, 13u);
  EXPECT_EQ(all.events.front().pcpu, 12);
  EXPECT_EQ(all.events.front().time_ns, 5012u);
  EXPECT_EQ(all.events.front().intruder_comm, "kworker/3:1");
  EXPECT_EQ(all.events.back().seq, 20u);
  EXPECT_EQ(all.missed, 12u);
  EXPECT_EQ(all.cursor, 20u);

  auto part = reg.events_since(15, 3);
  ASSERT_EQ(part.events.size(), 3u);
  EXPECT_EQ(part.events[0].seq, 16u);
  EXPECT_EQ(part.cursor, 18u);
  EXPECT_EQ(part.missed, 0u);
  auto rest = reg.events_since(part.cursor);
  ASSERT_EQ(rest.events.size(), 2u);
  EXPECT_EQ(rest.cursor, 20u);
  auto none = reg.events_since(20);
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.cursor, 20u);
}

TEST_F(RegistryTest, WaitReturnsWhenAnEventArrives) {
  ViolationRegistry reg(options());
  reg.reconcile({"a"}, {});
  std::thread producer([&] { reg.publish(kernel_event("a", ViolationClass::kPinChanged)); });
  // Waits at most a minute; returns as soon as the event is there.
  auto batch = reg.wait_events_since(0, std::chrono::minutes(1));
  producer.join();
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].cls, ViolationClass::kPinChanged);
  EXPECT_EQ(batch.events[0].time_ns, now_);  // 0 on publish means "registry now"
}

TEST(Classes, NamesAndNumbersRoundTrip) {
  for (ViolationClass c : kAllClasses) {
    EXPECT_EQ(class_from_name(class_name(c)), c);
    EXPECT_EQ(class_from_number(static_cast<unsigned>(c)), c);
  }
  EXPECT_EQ(class_name(ViolationClass::kOffpinRun), "offpin_run");
  EXPECT_EQ(static_cast<int>(ViolationClass::kPinChanged), 12);
  EXPECT_EQ(class_from_number(13), ViolationClass::kPinnedCpuUnavailable);
  EXPECT_EQ(class_name(ViolationClass::kPinnedCpuUnavailable), "pinned_cpu_unavailable");
  EXPECT_EQ(class_from_number(9), ViolationClass::kThreadPolicy);
  EXPECT_EQ(class_from_number(11), ViolationClass::kNumaMisplaced);
  EXPECT_EQ(class_name(ViolationClass::kNumaMisplaced), "numa_misplaced");
  EXPECT_TRUE(is_static_class(ViolationClass::kNumaMisplaced));
  EXPECT_EQ(class_from_number(10), ViolationClass::kFloatingStacking);
  EXPECT_TRUE(is_static_class(ViolationClass::kFloatingStacking));
  EXPECT_FALSE(class_from_number(14));
  // The BPF side's encoding, one class each; unused indices are no class.
  EXPECT_EQ(class_from_kernel(HV_PV_OFFPIN), ViolationClass::kOffpinRun);
  EXPECT_EQ(class_from_kernel(HV_PV_CORUN), ViolationClass::kDedicatedCorun);
  EXPECT_EQ(class_from_kernel(HV_PV_SHARED_ON_DEDICATED), ViolationClass::kSharedOnDedicated);
  EXPECT_EQ(class_from_kernel(HV_PV_MIGRATION), ViolationClass::kDedicatedMigration);
  EXPECT_EQ(class_from_kernel(HV_PV_PIN_CHANGED), ViolationClass::kPinChanged);
  EXPECT_FALSE(class_from_kernel(HV_PV_PIN_CHANGED + 1));
  EXPECT_FALSE(class_from_kernel(HV_PV_CLASSES));
  EXPECT_EQ(kAllClasses.size(), 13u);
  EXPECT_EQ(kStaticClasses.size(), 8u);
  EXPECT_EQ(kStaticClasses[0], ViolationClass::kAffinityDrift);
  EXPECT_EQ(kStaticClasses[3], ViolationClass::kSharedOnDedicated);
  EXPECT_FALSE(class_from_name("PV1"));
  EXPECT_TRUE(is_static_class(ViolationClass::kSharedOnDedicated));
  EXPECT_FALSE(is_static_class(ViolationClass::kIntruder));
  for (int i = 0; i < kIntruderKindCount; ++i) {
    auto k = static_cast<IntruderKind>(i);
    EXPECT_EQ(intruder_from_name(intruder_name(k)), k);
  }
}

}  // namespace
}  // namespace hvtel::pinning

namespace hvtel::pinning {
namespace {

TEST(FormatEvent, KernelAndStaticEvents) {
  ViolationEvent k;
  k.time_ns = 1001'500'000'000ULL;
  k.kind = EventKind::kKernel;
  k.instance_id = "inst-a";
  k.cls = ViolationClass::kIntruder;
  k.vcpu = 1;
  k.pcpu = 6;
  k.duration_ns = 2'500'000;
  k.intruder_comm = "kworker/6:1";
  k.intruder_pid = 77;
  EXPECT_EQ(format_event(k),
            "1001.500000 kernel intruder inst-a vcpu=1 pcpu=6 dur=2500us intruder=kworker/6:1[77]");
  ViolationEvent s;
  s.time_ns = 5'000'001'000ULL;
  s.kind = EventKind::kRaised;
  s.instance_id = "inst-b";
  s.cls = ViolationClass::kDedicatedOverlap;
  s.detail = "dedicated overlaps dedicated of inst-a on 5";
  EXPECT_EQ(format_event(s),
            "5.000001 raised dedicated_overlap inst-b: dedicated overlaps dedicated of inst-a on 5");
}

}  // namespace
}  // namespace hvtel::pinning
