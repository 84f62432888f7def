// The slot and discovery maps of a real vcpu_exits object, no KVM guest: the
// kvm_userspace_exit raw_tp program run through BPF_PROG_TEST_RUN sees this
// test's thread as a new vCPU thread, as hv__vcpu_new() would on a first exit.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bpf/object.h"
#include "base/bpf/vcpu_maps.h"
#include "kvm/exit_probes.h"
#include "support/test_env.h"

using hvtel::bpf::BpfObject;
using hvtel::bpf::KernelVcpuMaps;

namespace {

constexpr uint32_t kSlots = 4;
constexpr uint32_t kForeignTid = 0x40000000;  // above any pid_max: no thread of ours

struct KernelSlotsTest : ::testing::Test {
  std::optional<BpfObject> obj;
  std::unique_ptr<KernelVcpuMaps> maps;
  int prog_fd = -1, new_fd = -1, threads_fd = -1;
  uint32_t tid = static_cast<uint32_t>(syscall(SYS_gettid));

  void SetUp() override { open(kSlots); }
  void open(uint32_t slots) {
    HV_REQUIRE_ROOT();
    hvtel::kvm::ExitProbeOptions opts;
    opts.max_vcpus = slots;
    auto spec = hvtel::kvm::exit_object_spec(opts);
    auto o = BpfObject::open(spec.name, spec.elf, spec.size);
    ASSERT_TRUE(o) << o.error().message;
    obj.emplace(std::move(*o));
    ASSERT_TRUE(spec.configure(*obj));
    // Only the program this test runs: it needs no KVM type.
    bpf_program* p;
    bpf_object__for_each_program(p, obj->get()) {
      bpf_program__set_autoload(p, std::string_view(bpf_program__name(p)) == "hv_uexit_raw");
    }
    auto loaded = obj->load();
    ASSERT_TRUE(loaded) << loaded.error().message;
    auto m = KernelVcpuMaps::attach(*obj);
    ASSERT_TRUE(m) << m.error().message;
    maps = std::move(*m);
    prog_fd = bpf_program__fd(*obj->program("hv_uexit_raw"));
    new_fd = bpf_map__fd(*obj->map("hv_new_threads"));
    threads_fd = bpf_map__fd(*obj->map("hv_threads"));
  }

  // One kvm_userspace_exit event of this thread.
  void event() {
    uint64_t args[2] = {0, 0};
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = args, .ctx_size_in = sizeof(args));
    ASSERT_EQ(bpf_prog_test_run_opts(prog_fd, &run), 0) << std::strerror(errno);
  }
  bool in_threads(uint32_t t) {
    hv_thread v{};
    return bpf_map_lookup_elem(threads_fd, &t, &v) == 0;
  }
  uint32_t free_slots() {  // pops them all and pushes them back
    std::vector<uint32_t> taken;
    for (uint32_t s; (s = maps->alloc_slot()) != HV_NO_SLOT;) taken.push_back(s);
    for (uint32_t s : taken) EXPECT_TRUE(maps->free_slot(s));
    return static_cast<uint32_t>(taken.size());
  }
};

}  // namespace

// An LRU map evicted an older report instead: that thread held a slot the
// agent never heard of, and discovery_full never counted.
TEST_F(KernelSlotsTest, FullDiscoveryMapFailsTheInsertCountsItAndReturnsTheSlot) {
  for (uint32_t i = 0; i < HV_NEW_THREADS; ++i) {
    uint32_t key = kForeignTid + i;
    hv_new_thread nt{};
    nt.slot = HV_NO_SLOT;
    ASSERT_EQ(bpf_map_update_elem(new_fd, &key, &nt, BPF_NOEXIST), 0) << i << ": " << std::strerror(errno);
  }
  event();
  auto c = maps->counters().value();
  EXPECT_EQ(c[HV_CNT_NEW_THREAD_FULL], 1u);
  EXPECT_EQ(c[HV_CNT_SLOTS_FULL], 0u);
  uint32_t evicted = 0;
  for (uint32_t i = 0; i < HV_NEW_THREADS; ++i) {
    uint32_t key = kForeignTid + i;
    hv_new_thread nt{};
    evicted += bpf_map_lookup_elem(new_fd, &key, &nt) != 0;
  }
  EXPECT_EQ(evicted, 0u);
  EXPECT_FALSE(in_threads(tid));
  EXPECT_EQ(free_slots(), kSlots);

  // Drained by the agent: the thread's next event reports it, with a slot.
  auto drained = maps->drain_new_threads();
  ASSERT_TRUE(drained);
  EXPECT_EQ(drained->size(), size_t{HV_NEW_THREADS});
  event();
  drained = maps->drain_new_threads();
  ASSERT_TRUE(drained);
  ASSERT_EQ(drained->size(), 1u);
  EXPECT_EQ((*drained)[0].tid, tid);
  EXPECT_EQ((*drained)[0].info.tgid, static_cast<uint32_t>(getpid()));
  EXPECT_NE((*drained)[0].info.slot, HV_NO_SLOT);
  EXPECT_TRUE(in_threads(tid));
  EXPECT_EQ(free_slots(), kSlots - 1);
  EXPECT_EQ(maps->counters().value()[HV_CNT_NEW_THREAD_FULL], 1u);
}

// What the tracker relies on for a vCPU thread reported without a slot: its
// first event after the drain takes one that has freed up since.
TEST_F(KernelSlotsTest, ThreadWithoutASlotTakesOneOnItsFirstEventAfterTheDrain) {
  std::vector<uint32_t> held;
  for (uint32_t s; (s = maps->alloc_slot()) != HV_NO_SLOT;) held.push_back(s);
  ASSERT_EQ(held.size(), size_t{kSlots});
  event();
  event();  // still reported: not counted, not reported twice
  auto c = maps->counters().value();
  EXPECT_EQ(c[HV_CNT_SLOTS_FULL], 1u);
  EXPECT_EQ(c[HV_CNT_UNKNOWN_THREAD], 1u);
  EXPECT_EQ(c[HV_CNT_NEW_THREAD_FULL], 0u);
  auto drained = maps->drain_new_threads();
  ASSERT_TRUE(drained);
  ASSERT_EQ(drained->size(), 1u);
  EXPECT_EQ((*drained)[0].info.slot, HV_NO_SLOT);
  EXPECT_FALSE(in_threads(tid));

  ASSERT_TRUE(maps->free_slot(held.back()));  // a VMM exited
  event();
  drained = maps->drain_new_threads();
  ASSERT_TRUE(drained);
  ASSERT_EQ(drained->size(), 1u);
  EXPECT_EQ((*drained)[0].info.slot, held.back());
  EXPECT_TRUE(in_threads(tid));
}

namespace {

struct KernelSlotsMappingTest : KernelSlotsTest {
  void SetUp() override { open(1024); }
};

// Resident kB of this process's BPF map mappings (/proc/self/smaps).
long bpf_map_rss_kb() {
  std::ifstream smaps("/proc/self/smaps");
  long kb = 0;
  bool bpf = false;
  for (std::string line; std::getline(smaps, line);) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 16) {
      bpf = line.find("anon_inode:bpf-map") != std::string::npos;
    } else if (bpf && line.rfind("Rss:", 0) == 0) {
      kb += std::stol(line.substr(4));
    }
  }
  return kb;
}

}  // namespace

// An idle agent holds none of hv_vcpu's pages in its RSS, a busy one only as many as it ever used at once:
// slots are taken lowest first, a freed one is the next taken, and the mapping grows to the highest in use.
TEST_F(KernelSlotsMappingTest, SlotsAreTakenLowestFirstAndMappedOnlyAsFarAsUsed) {
  const long page_kb = sysconf(_SC_PAGESIZE) / 1024;
  auto kb_for = [&](uint32_t slots) {
    return static_cast<long>((sizeof(hv_vcpu) * slots + sysconf(_SC_PAGESIZE) - 1) / sysconf(_SC_PAGESIZE)) *
           page_kb;
  };
  const long idle = bpf_map_rss_kb();
  EXPECT_EQ(maps->mapped_slots(), 0u);

  event();  // this thread's first exit takes slot 0
  auto drained = maps->drain_new_threads();
  ASSERT_TRUE(drained);
  ASSERT_EQ(drained->size(), 1u);
  EXPECT_EQ((*drained)[0].info.slot, 0u);
  ASSERT_NE(maps->slot(0), nullptr);
  EXPECT_EQ(maps->mapped_slots(), 64u);  // the first step
  EXPECT_EQ(bpf_map_rss_kb() - idle, kb_for(64));

  std::vector<uint32_t> taken;
  for (int i = 0; i < 100; ++i) taken.push_back(maps->alloc_slot());
  EXPECT_EQ(taken.front(), 1u);
  EXPECT_EQ(taken.back(), 100u);
  ASSERT_NE(maps->slot(100), nullptr);
  EXPECT_EQ(maps->mapped_slots(), 101u);
  EXPECT_EQ(bpf_map_rss_kb() - idle, kb_for(101));
  EXPECT_EQ(maps->slot(1024), nullptr);

  // A VMM exits: its slot is the next one taken, and nothing more is mapped.
  ASSERT_TRUE(maps->free_slot(50));
  EXPECT_EQ(maps->alloc_slot(), 50u);
  EXPECT_EQ(maps->alloc_slot(), 101u);
  EXPECT_EQ(maps->mapped_slots(), 101u);
}
