#include "discovery/vcpu_tracker.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "libvirt/libvirt_collector.h"
#include "app/agent_collector.h"
#include "support/proc_fixture.h"
#include "support/fake_vcpu_maps.h"

using hvtel::bpf::FakeVcpuMaps;
using hvtel::discovery::ProcFs;
using hvtel::discovery::TrackedInstance;
using hvtel::discovery::TrackerStats;
using hvtel::discovery::VcpuTracker;

namespace {

constexpr const char* kUuid = "11111111-2222-3333-4444-555555555555";

struct TrackerTest : ::testing::Test {
  explicit TrackerTest(uint32_t slots = 4) : maps(slots) {}
  hvtel::testing::ProcFixture fx;
  FakeVcpuMaps maps;
  ProcFs proc{fx.root()};
  VcpuTracker tracker{maps, proc};

  std::map<pid_t, TrackedInstance> instances() {
    std::map<pid_t, TrackedInstance> out;
    tracker.read([&](const auto& i, const TrackerStats&) { out = i; });
    return out;
  }
  const hv_thread* thread(uint32_t tid) {
    for (const auto& [t, v] : maps.threads())
      if (t == tid) return &v;
    return nullptr;
  }
  TrackerStats stats() {
    TrackerStats out;
    tracker.read([&](const auto&, const TrackerStats& s) { out = s; });
    return out;
  }
  // hvtel_vcpu_slots_used and the discovery counters.
  std::string agent_metrics() {
    hvtel::app::AgentCollector c({}, {}, maps, tracker);
    return prometheus::TextSerializer().Serialize(c.Collect());
  }
  // What hvtel serve lists as hvtel_instance_info without libvirt.
  std::string instance_info() {
    std::vector<hvtel::model::Instance> local;
    tracker.read([&](const auto& insts, const TrackerStats&) {
      for (const auto& [pid, ti] : insts) local.push_back(hvtel::discovery::as_instance(pid, ti));
    });
    return prometheus::TextSerializer().Serialize({hvtel::libvirt::instance_info_family({}, local)});
  }
};

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_F(TrackerTest, NamesNewVcpuThreadsFromProcfs) {
  fx.add_process(100, {"qemu", "-uuid", kUuid, "-name", "guest=vm1,debug-threads=on"}, "qemu", 5);
  fx.add_thread(100, 101, "CPU 0/KVM");
  fx.add_thread(100, 102, "CPU 1/KVM");
  uint32_t s0 = maps.kernel_new_thread(101, 100);
  uint32_t s1 = maps.kernel_new_thread(102, 100);
  tracker.poll();
  auto inst = instances();
  ASSERT_EQ(inst.size(), 1u);
  const auto& i = inst.at(100);
  EXPECT_EQ(i.instance_id, kUuid);
  EXPECT_EQ(i.instance_name, "vm1");
  ASSERT_EQ(i.vcpus.size(), 2u);
  EXPECT_EQ(i.vcpus[0].slot, s0);
  EXPECT_EQ(i.vcpus[0].index, 0);
  EXPECT_EQ(i.vcpus[1].slot, s1);
  EXPECT_EQ(i.vcpus[1].index, 1);
  // The kernel map now carries the instance number and vCPU index, and the
  // main thread is registered as the emulator.
  ASSERT_EQ(maps.threads().size(), 3u);
  ASSERT_NE(thread(102), nullptr);
  EXPECT_EQ(thread(102)->instance, i.number);
  EXPECT_EQ(thread(102)->vcpu_index, 1u);
  ASSERT_NE(thread(100), nullptr);
  EXPECT_EQ(thread(100)->role, uint32_t{HV_ROLE_EMULATOR});
  ASSERT_EQ(i.others.size(), 1u);
  EXPECT_EQ(i.others[0].tid, 100);
  EXPECT_EQ(stats().threads_named, 2u);
}

TEST_F(TrackerTest, IoThreadsAndFlags) {
  fx.add_process(100, {"qemu"}, "qemu", 5);
  fx.add_thread(100, 101, "CPU 0/KVM");
  fx.add_thread(100, 103, "IO iothread1");
  fx.add_thread(100, 104, "worker");
  maps.kernel_new_thread(101, 100);
  tracker.poll();
  ASSERT_NE(thread(103), nullptr);
  EXPECT_EQ(thread(103)->role, uint32_t{HV_ROLE_IOTHREAD});
  EXPECT_EQ(thread(104), nullptr);
  // Every kind draws from the one pool, and is counted.
  EXPECT_TRUE(has_line(agent_metrics(), "hvtel_vcpu_slots_used 3")) << agent_metrics();
  EXPECT_EQ(instances().at(100).others.at(1).index, 1);
  ASSERT_TRUE(tracker.set_thread_flags(101, HV_THREAD_PINNED | HV_THREAD_DEDICATED));
  EXPECT_EQ(thread(101)->flags, uint32_t{HV_THREAD_PINNED | HV_THREAD_DEDICATED});
  EXPECT_EQ(thread(101)->role, uint32_t{HV_ROLE_VCPU});
  EXPECT_FALSE(tracker.set_thread_flags(999, 0));
  // Exit frees every slot, emulator and I/O threads included.
  fx.remove_process(100);
  tracker.poll();
  EXPECT_EQ(maps.free_queue().size(), 4u);
  EXPECT_TRUE(maps.threads().empty());
}

TEST_F(TrackerTest, UnnamedThreadTakesTheKernelVcpuIndex) {
  fx.add_process(300, {"firecracker"}, "firecracker", 9);
  fx.add_thread(300, 301, "fc_vcpu 0");
  maps.kernel_new_thread(301, 300, /*vcpu_idx=*/2);
  tracker.poll();
  auto inst = instances();
  EXPECT_EQ(inst.at(300).instance_id, "pid-300");
  EXPECT_EQ(inst.at(300).instance_name, "firecracker");
  EXPECT_EQ(inst.at(300).vcpus.at(0).index, 2);
}

TEST_F(TrackerTest, ExitedThreadIsRetiredAndItsCountsKept) {
  fx.add_process(100, {"qemu", "-uuid", kUuid}, "qemu", 5);
  fx.add_thread(100, 101, "CPU 0/KVM");
  uint32_t s = maps.kernel_new_thread(101, 100);
  tracker.poll();
  maps.mutable_slot(s).user_exits[2] = 1000;
  fx.remove_thread(100, 101);
  tracker.poll();
  auto inst = instances();
  ASSERT_EQ(inst.size(), 1u);
  EXPECT_TRUE(inst.at(100).vcpus.empty());
  EXPECT_EQ(inst.at(100).retired.at(0).user_exits[2], 1000u);
  // The slot was zeroed and returned; the thread entry deleted.
  EXPECT_EQ(maps.slot(s)->user_exits[2], 0u);
  EXPECT_EQ(maps.free_queue().size(), 3u);  // the emulator keeps one
  EXPECT_EQ(thread(101), nullptr);
  EXPECT_NE(thread(100), nullptr);
  EXPECT_EQ(stats().threads_retired, 1u);
}

TEST_F(TrackerTest, ExitedProcessDisappearsAndFreesSlots) {
  fx.add_process(100, {"qemu"}, "qemu", 5);
  fx.add_thread(100, 101, "CPU 0/KVM");
  maps.kernel_new_thread(101, 100);
  tracker.poll();
  fx.remove_process(100);
  tracker.poll();
  EXPECT_TRUE(instances().empty());
  EXPECT_EQ(maps.free_queue().size(), 4u);
}

TEST_F(TrackerTest, RecycledPidIsANewInstance) {
  fx.add_process(100, {"qemu", "-uuid", kUuid}, "qemu", 5);
  fx.add_thread(100, 101, "CPU 0/KVM");
  maps.kernel_new_thread(101, 100);
  tracker.poll();
  // Same pid, different start time: the old instance is gone.
  fx.remove_process(100);
  fx.add_process(100, {"other"}, "other", 6);
  tracker.poll();
  EXPECT_TRUE(instances().empty());
}

TEST_F(TrackerTest, ThreadGoneBeforeNamingReleasesItsSlot) {
  fx.add_process(100, {"qemu"}, "qemu", 5);
  maps.kernel_new_thread(555, 100);  // no /proc entry for the thread
  tracker.poll();
  EXPECT_EQ(stats().vanished, 1u);
  EXPECT_EQ(maps.free_queue().size(), 3u);  // the emulator keeps one
  EXPECT_EQ(thread(555), nullptr);
}

TEST_F(TrackerTest, IdentityOverlayWins) {
  fx.add_process(100, {"qemu", "-uuid", kUuid}, "qemu", 5);
  fx.add_thread(100, 101, "CPU 0/KVM");
  tracker.set_identity_lookup([](pid_t pid) -> std::optional<hvtel::model::Instance> {
    if (pid != 100) return std::nullopt;
    hvtel::model::Instance i;
    i.instance_id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    i.instance_name = "billing-db-02";
    i.source = hvtel::model::Source::kLibvirt;
    return i;
  });
  maps.kernel_new_thread(101, 100);
  tracker.poll();
  auto i = instances().at(100);
  EXPECT_EQ(i.instance_id, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  EXPECT_EQ(i.instance_name, "billing-db-02");
  EXPECT_EQ(i.source, hvtel::model::Source::kLibvirt);
}

// TCG vCPU threads never run KVM code: the tracker takes them from the VMMs
// libvirt lists, and only those ("CPU n/KVM" threads wait for their first exit).
TEST_F(TrackerTest, TcgVcpuThreadsOfKnownVmmsAreAdoptedOnce) {
  fx.add_process(200, {"qemu", "-uuid", kUuid}, "qemu", 5);
  fx.add_thread(200, 201, "CPU 0/TCG");
  fx.add_thread(200, 202, "CPU 1/TCG");
  fx.add_process(300, {"qemu"}, "qemu", 6);
  fx.add_thread(300, 301, "CPU 0/KVM");
  hvtel::model::Instance tcg, kvm;
  tcg.instance_id = kUuid;
  tcg.pid = 200;
  tcg.vcpu_threads = {{201, 0}, {202, 1}};
  kvm.pid = 300;
  kvm.vcpu_threads = {{301, 0}};
  tracker.set_known_vmms([&] { return std::vector{tcg, kvm}; });
  tracker.poll();
  tracker.poll();  // a second poll adds nothing
  auto inst = instances();
  ASSERT_EQ(inst.size(), 1u);
  const auto& i = inst.at(200);
  EXPECT_TRUE(i.tcg);
  ASSERT_EQ(i.vcpus.size(), 2u);
  EXPECT_EQ(i.vcpus[0].tid, 201);
  EXPECT_EQ(i.vcpus[1].index, 1);
  ASSERT_NE(thread(202), nullptr);
  EXPECT_EQ(thread(202)->role, uint32_t{HV_ROLE_VCPU});
  EXPECT_EQ(thread(202)->slot, i.vcpus[1].slot);
  EXPECT_EQ(thread(202)->vcpu_index, 1u);
  EXPECT_EQ(thread(301), nullptr);
  EXPECT_EQ(stats().threads_named, 2u);
  // Gone with its process, slots back in the pool.
  fx.remove_process(200);
  tracker.set_known_vmms([&] { return std::vector{kvm}; });
  tracker.poll();
  EXPECT_TRUE(instances().empty());
  EXPECT_EQ(thread(201), nullptr);
}

TEST_F(TrackerTest, TcgVcpuWithoutAFreeSlotIsCountedAndRetried) {
  FakeVcpuMaps small{1};
  VcpuTracker t{small, proc};
  fx.add_process(200, {"qemu"}, "qemu", 5);  // the emulator thread takes the one slot
  fx.add_thread(200, 201, "CPU 0/TCG");
  hvtel::model::Instance tcg;
  tcg.pid = 200;
  tcg.vcpu_threads = {{201, 0}};
  t.set_known_vmms([&] { return std::vector{tcg}; });
  t.poll();
  TrackerStats st;
  size_t vcpus = 99;
  t.read([&](const auto& i, const TrackerStats& s) {
    st = s;
    vcpus = i.at(200).vcpus.size();
  });
  EXPECT_EQ(vcpus, 0u);
  EXPECT_EQ(st.no_slot, 1u);
  EXPECT_EQ(st.errors, 0u);
  t.poll();  // tried again on every poll until a slot frees up, counted once
  size_t waiting = 0;
  t.read([&](const auto& i, const TrackerStats& s) {
    st = s;
    waiting = i.at(200).waiting.size();
  });
  EXPECT_EQ(st.no_slot, 1u);
  EXPECT_EQ(waiting, 1u);
}

// hv_new_threads is a hash map: a full one fails the insert, which is
// counted, and the thread's slot goes back instead of leaking (an LRU map
// evicted an older report, whose thread then held a slot nobody named).
TEST_F(TrackerTest, FullDiscoveryMapIsCountedAndLeaksNoSlot) {
  fx.add_process(100, {"qemu"}, "qemu", 5);
  fx.add_thread(100, 101, "CPU 0/KVM");
  fx.add_thread(100, 102, "CPU 1/KVM");
  maps.set_new_capacity(1);
  EXPECT_NE(maps.kernel_new_thread(101, 100), HV_NO_SLOT);
  EXPECT_EQ(maps.kernel_new_thread(102, 100), HV_NO_SLOT);
  EXPECT_EQ(maps.free_queue().size(), 3u);
  EXPECT_EQ(maps.pending_new(), 1u);
  tracker.poll();
  // Drained: 102's next event is reported and named.
  EXPECT_NE(maps.kernel_new_thread(102, 100), HV_NO_SLOT);
  tracker.poll();
  EXPECT_EQ(instances().at(100).vcpus.size(), 2u);
  EXPECT_EQ(maps.free_queue().size(), 1u);  // the emulator holds the third
  std::string text = agent_metrics();
  EXPECT_TRUE(has_line(text, "hvtel_bpf_lost_events_total{reason=\"discovery_full\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "hvtel_vcpu_slots_used 3")) << text;
}

namespace {

constexpr const char* kUuidB = "bbbbbbbb-0000-0000-0000-000000000002";

// Slot accounting under overflow: more vCPU, emulator and I/O threads than
// --max-vcpus slots. Two slots, both taken by instance A (pid 100): its
// emulator and one vCPU.
struct SlotOverflowTest : TrackerTest {
  SlotOverflowTest() : TrackerTest(2) {}
  void SetUp() override {
    fx.add_process(100, {"qemu", "-uuid", kUuid}, "qemu", 5);
    fx.add_thread(100, 101, "CPU 0/KVM");
    ASSERT_NE(maps.kernel_new_thread(101, 100), HV_NO_SLOT);
    tracker.poll();
    ASSERT_TRUE(maps.free_queue().empty());
  }
  std::string overflow_line(const char* id, int n) {
    return std::string("hvtel_vcpu_slot_overflow_threads{instance_id=\"") + id + "\"} " +
           std::to_string(n);
  }
};

}  // namespace

TEST_F(SlotOverflowTest, InstanceWithoutASlotIsListedAndItsOverflowCounted) {
  fx.add_process(200, {"qemu", "-uuid", kUuidB}, "qemu", 6);
  fx.add_thread(200, 201, "CPU 0/KVM");
  fx.add_thread(200, 202, "CPU 1/KVM");
  EXPECT_EQ(maps.kernel_new_thread(201, 200), HV_NO_SLOT);
  EXPECT_EQ(maps.kernel_new_thread(202, 200), HV_NO_SLOT);
  tracker.poll();
  auto inst = instances();
  ASSERT_EQ(inst.count(200), 1u);
  const auto& b = inst.at(200);
  EXPECT_EQ(b.instance_id, kUuidB);
  EXPECT_TRUE(b.vcpus.empty());
  EXPECT_TRUE(b.others.empty());
  ASSERT_EQ(b.waiting.size(), 3u);  // the emulator and both vCPUs
  EXPECT_EQ(b.waiting[0].role, uint32_t{HV_ROLE_EMULATOR});
  EXPECT_EQ(b.waiting[2].role, uint32_t{HV_ROLE_VCPU});
  EXPECT_EQ(b.waiting[2].index, 1);
  EXPECT_EQ(stats().no_slot, 3u);
  EXPECT_EQ(stats().vanished, 0u);
  EXPECT_EQ(stats().errors, 0u);
  EXPECT_NE(instance_info().find(std::string("instance_id=\"") + kUuidB + "\""), std::string::npos)
      << instance_info();
  std::string text = agent_metrics();
  EXPECT_TRUE(has_line(text, overflow_line(kUuidB, 3))) << text;
  EXPECT_TRUE(has_line(text, overflow_line(kUuid, 0))) << text;
  EXPECT_TRUE(has_line(text, "hvtel_discovery_threads_total{event=\"no_slot\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "hvtel_vcpu_slots_used 2")) << text;

  // Reported again after the drain (its next KVM event): still one wait.
  maps.kernel_new_thread(201, 200);
  tracker.poll();
  EXPECT_EQ(stats().no_slot, 3u);
  EXPECT_EQ(instances().at(200).waiting.size(), 3u);
  // A waiting thread that exits stops waiting.
  fx.remove_thread(200, 202);
  tracker.poll();
  EXPECT_EQ(instances().at(200).waiting.size(), 2u);
}

TEST_F(SlotOverflowTest, WaitingThreadsTakeTheSlotsOfAnExitedVmm) {
  fx.add_process(200, {"qemu", "-uuid", kUuidB}, "qemu", 6);
  fx.add_thread(200, 201, "CPU 0/KVM");
  fx.add_thread(200, 203, "IO iothread1");
  maps.kernel_new_thread(201, 200);
  tracker.poll();
  ASSERT_EQ(instances().at(200).waiting.size(), 3u);

  // A exits: its slots go back at the end of this poll...
  fx.remove_process(100);
  tracker.poll();
  EXPECT_EQ(maps.free_queue().size(), 2u);
  // ...the vCPU's next event takes one (vCPUs first), the emulator the other.
  EXPECT_NE(maps.kernel_new_thread(201, 200), HV_NO_SLOT);
  tracker.poll();
  auto b = instances().at(200);
  ASSERT_EQ(b.vcpus.size(), 1u);
  EXPECT_EQ(b.vcpus[0].tid, 201);
  ASSERT_EQ(b.others.size(), 1u);
  EXPECT_EQ(b.others[0].role, uint32_t{HV_ROLE_EMULATOR});
  ASSERT_EQ(b.waiting.size(), 1u);
  EXPECT_EQ(b.waiting[0].tid, 203);
  EXPECT_TRUE(maps.free_queue().empty());

  // The vCPU thread exits: the I/O thread takes its slot at the next poll.
  fx.remove_thread(200, 201);
  tracker.poll();
  tracker.poll();
  b = instances().at(200);
  EXPECT_TRUE(b.waiting.empty());
  ASSERT_EQ(b.others.size(), 2u);
  EXPECT_EQ(b.others[1].index, 1);
  ASSERT_NE(thread(203), nullptr);
  EXPECT_EQ(thread(203)->role, uint32_t{HV_ROLE_IOTHREAD});
  EXPECT_EQ(thread(203)->instance, b.number);
  EXPECT_TRUE(has_line(agent_metrics(), overflow_line(kUuidB, 0)));
  EXPECT_EQ(stats().no_slot, 3u);
}

TEST_F(SlotOverflowTest, TcgVcpuWaitsOnceAndIsAdoptedWhenASlotFrees) {
  fx.add_process(200, {"qemu", "-uuid", kUuidB}, "qemu", 6);
  fx.add_thread(200, 201, "CPU 0/TCG");
  hvtel::model::Instance tcg;
  tcg.pid = 200;
  tcg.vcpu_threads = {{201, 0}};
  tracker.set_known_vmms([&] { return std::vector{tcg}; });
  tracker.poll();
  tracker.poll();
  auto b = instances().at(200);
  EXPECT_TRUE(b.tcg);
  EXPECT_TRUE(b.vcpus.empty());
  EXPECT_EQ(b.waiting.size(), 2u);  // the emulator and the TCG vCPU
  EXPECT_EQ(stats().no_slot, 2u);
  EXPECT_EQ(stats().errors, 0u);

  fx.remove_process(100);
  tracker.poll();
  tracker.poll();
  b = instances().at(200);
  ASSERT_EQ(b.vcpus.size(), 1u);
  EXPECT_EQ(b.vcpus[0].tid, 201);
  EXPECT_EQ(b.others.size(), 1u);
  EXPECT_TRUE(b.waiting.empty());
  EXPECT_EQ(stats().threads_named, 2u);  // A's vCPU and the TCG one
}

TEST_F(TrackerTest, UnreadableBpfCountersAreLeftOutNotReportedAsZero) {
  maps.counters_[HV_CNT_SLOTS_FULL] = 2;
  EXPECT_TRUE(has_line(agent_metrics(), "hvtel_bpf_lost_events_total{reason=\"slots_full\"} 2"));
  maps.fail_counters_ = true;
  const std::string text = agent_metrics();
  EXPECT_EQ(text.find("hvtel_bpf_lost_events_total"), std::string::npos);  // 0 would read as a reset
  EXPECT_TRUE(has_line(text, "hvtel_vcpu_slots 4")) << text;                // the rest is still served
}
