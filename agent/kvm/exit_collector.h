// ExitCollector: hvtel_vcpu_* exit metrics, read from the mmapped per-vCPU
// slots at scrape time (no syscalls, no libvirt), summed per instance or,
// with --per-vcpu, per vCPU for the counters.
#pragma once

#include <prometheus/collectable.h>

#include <functional>

#include "base/bpf/vcpu_maps.h"
#include "discovery/vcpu_tracker.h"

namespace hvtel::kvm {

class ExitCollector : public prometheus::Collectable {
 public:
  ExitCollector(const discovery::VcpuTracker& tracker, const bpf::VcpuMaps& maps, bool per_vcpu)
      : tracker_(tracker), maps_(maps), per_vcpu_(per_vcpu) {}
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Share of exits to the VMM that the VMM-handling histogram sees
  // (hvtel_vcpu_vmm_handling_sample_ratio); not exported when unset.
  void set_vmm_sample_ratio(std::function<double()> f) { vmm_ratio_ = std::move(f); }

 private:
  std::function<double()> vmm_ratio_;
  const discovery::VcpuTracker& tracker_;
  const bpf::VcpuMaps& maps_;
  bool per_vcpu_;
};

}  // namespace hvtel::kvm
