#include "discovery/vcpu_tracker.h"

#include <gtest/gtest.h>

#include "proc_fixture.h"

using hvtel::bpf::FakeVcpuMaps;
using hvtel::discovery::ProcFs;
using hvtel::discovery::TrackedInstance;
using hvtel::discovery::TrackerStats;
using hvtel::discovery::VcpuTracker;

namespace {

constexpr const char* kUuid = "11111111-2222-3333-4444-555555555555";

struct TrackerTest : ::testing::Test {
  hvtel::testing::ProcFixture fx;
  FakeVcpuMaps maps{4};
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
};

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
  EXPECT_EQ(st.errors, 1u);
  t.poll();  // tried again on every poll until a slot frees up
  t.read([&](const auto&, const TrackerStats& s) { st = s; });
  EXPECT_EQ(st.errors, 2u);
}
