#include "support/fake_vcpu_maps.h"

#include <algorithm>

namespace hvtel::bpf {

FakeVcpuMaps::FakeVcpuMaps(uint32_t slots) {
  for (uint32_t s = 0; s < slots; ++s) {
    vcpus_.push_back(std::make_unique<hv_vcpu>());
    sched_.push_back(std::make_unique<hv_sched>());
    free_.push_back(s);
  }
}

const hv_vcpu* FakeVcpuMaps::slot(uint32_t s) const {
  return s < vcpus_.size() ? vcpus_[s].get() : nullptr;
}

const hv_sched* FakeVcpuMaps::sched(uint32_t s) const {
  return s < sched_.size() ? sched_[s].get() : nullptr;
}

Result<std::vector<NewThread>> FakeVcpuMaps::drain_new_threads() {
  auto out = std::move(new_);
  new_.clear();
  return out;
}

Status FakeVcpuMaps::set_thread(uint32_t tid, const hv_thread& t) {
  for (auto& [k, v] : threads_)
    if (k == tid) {
      v = t;
      return {};
    }
  threads_.emplace_back(tid, t);
  return {};
}

Status FakeVcpuMaps::delete_thread(uint32_t tid) {
  std::erase_if(threads_, [&](const auto& e) { return e.first == tid; });
  return {};
}

Status FakeVcpuMaps::free_slot(uint32_t s) {
  if (s >= vcpus_.size()) return fail("free_slot: slot out of range");
  *vcpus_[s] = hv_vcpu{};
  *sched_[s] = hv_sched{};
  free_.push_back(s);
  return {};
}

uint32_t FakeVcpuMaps::alloc_slot() {
  if (free_.empty()) return HV_NO_SLOT;
  uint32_t s = free_.front();
  free_.erase(free_.begin());
  return s;
}

uint32_t FakeVcpuMaps::kernel_new_thread(uint32_t tid, uint32_t tgid, int32_t vcpu_idx) {
  auto known = [&](const auto& v) { return v.first == tid; };
  if (std::any_of(threads_.begin(), threads_.end(), known) ||
      std::any_of(new_.begin(), new_.end(), [&](const NewThread& n) { return n.tid == tid; })) {
    ++counters_[HV_CNT_UNKNOWN_THREAD];
    return HV_NO_SLOT;
  }
  hv_new_thread nt{};
  nt.tgid = tgid;
  nt.vcpu_id = vcpu_idx;
  nt.vcpu_idx = vcpu_idx;
  nt.slot = HV_NO_SLOT;
  if (new_.size() >= new_capacity_) {  // a full hash map fails the insert: nothing taken
    ++counters_[HV_CNT_NEW_THREAD_FULL];
    return HV_NO_SLOT;
  }
  if (!free_.empty()) {
    nt.slot = free_.front();
    free_.erase(free_.begin());
    hv_thread t{};
    t.slot = nt.slot;
    t.role = HV_ROLE_VCPU;
    t.tgid = tgid;
    set_thread(tid, t);
  } else {
    ++counters_[HV_CNT_SLOTS_FULL];
  }
  new_.push_back({tid, nt});
  return nt.slot;
}

}  // namespace hvtel::bpf
