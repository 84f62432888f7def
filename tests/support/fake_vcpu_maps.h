// FakeVcpuMaps: the vCPU maps in memory, with controls that act as the kernel
// side would, for unit tests of the tracker and the collectors.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "base/bpf/vcpu_maps.h"

namespace hvtel::bpf {

class FakeVcpuMaps : public VcpuMaps {
 public:
  explicit FakeVcpuMaps(uint32_t slots);
  uint32_t slot_count() const override { return static_cast<uint32_t>(vcpus_.size()); }
  const hv_vcpu* slot(uint32_t s) const override;
  const hv_sched* sched(uint32_t s) const override;
  Result<std::vector<NewThread>> drain_new_threads() override;
  Status set_thread(uint32_t tid, const hv_thread& t) override;
  Status delete_thread(uint32_t tid) override;
  Status free_slot(uint32_t s) override;
  uint32_t alloc_slot() override;
  uint32_t vendor() const override { return vendor_; }
  Result<std::array<uint64_t, HV_CNT_MAX>> counters() const override {
    if (fail_counters_) return fail("hv_counters: read per-CPU entry 0: Bad file descriptor");
    return counters_;
  }

  // Test controls: simulate the kernel side.
  // A KVM event from an unknown thread, as hv__vcpu_new(): takes a slot and
  // reports the thread, counting in counters_ what it loses. Returns the
  // slot, HV_NO_SLOT when none was free or the report did not fit.
  uint32_t kernel_new_thread(uint32_t tid, uint32_t tgid, int32_t vcpu_idx = -1);
  // Capacity of the discovery map (HV_NEW_THREADS in the kernel).
  void set_new_capacity(size_t n) { new_capacity_ = n; }
  size_t pending_new() const { return new_.size(); }
  hv_vcpu& mutable_slot(uint32_t s) { return *vcpus_[s]; }
  hv_sched& mutable_sched(uint32_t s) { return *sched_[s]; }
  const std::vector<std::pair<uint32_t, hv_thread>>& threads() const { return threads_; }
  const std::vector<uint32_t>& free_queue() const { return free_; }
  void set_vendor(uint32_t v) { vendor_ = v; }
  std::array<uint64_t, HV_CNT_MAX> counters_{};
  bool fail_counters_ = false;  // counters() fails, as a vanished map would

 private:
  std::vector<std::unique_ptr<hv_vcpu>> vcpus_;
  std::vector<std::unique_ptr<hv_sched>> sched_;
  std::vector<std::pair<uint32_t, hv_thread>> threads_;
  std::vector<NewThread> new_;
  size_t new_capacity_ = HV_NEW_THREADS;
  std::vector<uint32_t> free_;
  uint32_t vendor_ = HV_VENDOR_UNKNOWN;
};

}  // namespace hvtel::bpf
