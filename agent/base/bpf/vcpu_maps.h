// VcpuMaps: the agent's view of the shared per-vCPU maps (hv_threads,
// hv_new_threads, hv_free_slots, hv_vcpu, hv_counters). An interface so the
// tracker and collectors are unit-tested against FakeVcpuMaps without root.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "hvtel/abi.h"
#include "base/util/result.h"

namespace hvtel::bpf {

class BpfObject;

struct NewThread {
  uint32_t tid;
  hv_new_thread info;
};

class VcpuMaps {
 public:
  virtual ~VcpuMaps() = default;

  virtual uint32_t slot_count() const = 0;
  // Live view of one slot's counters (written concurrently by BPF: callers
  // copy what they need). nullptr when out of range.
  virtual const hv_vcpu* slot(uint32_t s) const = 0;
  // Threads the kernel saw for the first time, removed from the map.
  virtual Result<std::vector<NewThread>> drain_new_threads() = 0;
  virtual Status set_thread(uint32_t tid, const hv_thread& t) = 0;
  virtual Status delete_thread(uint32_t tid) = 0;
  // Zeroes a slot and returns it to the free queue. The caller must have
  // deleted every hv_threads entry pointing at it first.
  virtual Status free_slot(uint32_t s) = 0;
  // Takes a free slot for a thread the agent registers itself (emulator, I/O
  // threads, which never run KVM code); HV_NO_SLOT when none is free.
  virtual uint32_t alloc_slot() = 0;
  // Scheduling counters of a slot (vcpu_sched object); nullptr when that
  // object is not loaded or s is out of range.
  virtual const hv_sched* sched(uint32_t s) const = 0;
  // Vendor of the exit reasons (enum hv_vendor), from the exits object.
  virtual uint32_t vendor() const = 0;
  // hv_counters summed over CPUs.
  virtual Result<std::array<uint64_t, HV_CNT_MAX>> counters() const = 0;
};

// The real maps of a loaded vcpu_exits object. Owns the mmap of hv_vcpu.
class KernelVcpuMaps : public VcpuMaps {
 public:
  // `obj` must outlive the returned maps. Pushes every slot to the free queue.
  static Result<std::unique_ptr<KernelVcpuMaps>> attach(const BpfObject& obj);
  ~KernelVcpuMaps() override;
  // Maps hv_sched of a loaded vcpu_sched object, so slots free and fold it too.
  Status attach_sched(const BpfObject& sched_obj);
  hv_sched* mutable_sched(uint32_t s) { return s < slots_ && sched_ && mapped(s) ? &sched_[s] : nullptr; }

  uint32_t slot_count() const override { return slots_; }
  // Slots whose hv_vcpu and hv_sched are mapped: the highest used so far, rounded up.
  uint32_t mapped_slots() const;
  const hv_vcpu* slot(uint32_t s) const override;
  const hv_sched* sched(uint32_t s) const override;
  Result<std::vector<NewThread>> drain_new_threads() override;
  Status set_thread(uint32_t tid, const hv_thread& t) override;
  Status delete_thread(uint32_t tid) override;
  Status free_slot(uint32_t s) override;
  uint32_t alloc_slot() override;
  uint32_t vendor() const override;
  Result<std::array<uint64_t, HV_CNT_MAX>> counters() const override;

  // vcpu_sched state (valid after attach_sched).
  hv_pcpu* mutable_pcpu(uint32_t cpu) { return cpu < HV_MAX_CPUS && pcpu_ ? &pcpu_[cpu] : nullptr; }
  int events_fd() const { return events_fd_; }
  Status allow_affinity_tgid(uint32_t tgid);
  // hv_control.vmm_timing_off: kvm_userspace_exit timestamps only while timing is on.
  void set_vmm_timing(bool on);
  // hv_control.switch_cache: set once sched_switch is attached and keeps the
  // KVM hooks' per-CPU thread cache current.
  void set_switch_cache(bool on);
  Status disallow_affinity_tgid(uint32_t tgid);

 private:
  hv_pcpu* pcpu_ = nullptr;
  size_t pcpu_len_ = 0;
  int events_fd_ = -1, allow_fd_ = -1;
  hv_sched* sched_ = nullptr;
  size_t sched_len_ = 0;
  KernelVcpuMaps() = default;
  int threads_fd_ = -1, new_fd_ = -1, free_fd_ = -1, counters_fd_ = -1;
  uint32_t slots_ = 0;
  // hv_vcpu and hv_sched are mapped from their start up to the highest slot used so far, into address
  // space reserved for all of them: the kernel maps every page of an mmap at once, so mapping all
  // --max-vcpus slots up front would count memory the kernel holds anyway into the agent's RSS.
  hv_vcpu* vcpus_ = nullptr;
  size_t mmap_len_ = 0;                      // reserved
  mutable std::atomic<uint32_t> mapped_{0};  // slots [0, mapped_) are mapped in both
  mutable std::mutex map_mu_;
  mutable size_t vcpus_mapped_len_ = 0, sched_mapped_len_ = 0;
  int vcpu_fd_ = -1, sched_fd_ = -1;
  // True when slot s is mapped (mapping more if needed); false only if mmap failed.
  bool mapped(uint32_t s) const;
  char* bss_ = nullptr;                       // the exits object's .bss map, mmapped
  size_t bss_len_ = 0;
  const volatile uint32_t* vendor_ = nullptr;  // hv_exit_vendor in bss_
  hv_control* control_ = nullptr;             // hv_control, mmapped
  size_t control_len_ = 0;
  void bump_gen();
};

}  // namespace hvtel::bpf
