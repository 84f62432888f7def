// ExitCollector: hvtel_vcpu_* exit metrics, read from the mmapped per-vCPU
// slots at scrape time (no syscalls, no libvirt), summed per instance or,
// with --per-vcpu, per vCPU for the counters.
#pragma once

#include <prometheus/collectable.h>

#include <functional>

#include "base/bpf/vcpu_maps.h"
#include "base/metrics/selection.h"
#include "discovery/vcpu_tracker.h"

namespace hvtel::kvm {

// What the collector exports beyond the per-instance sums.
struct ExitSeries {
  bool per_vcpu = false;  // counters per vCPU (vcpu label)
  // Exit-handling histograms per instance and class; else per class for the
  // host (4 histograms per host instead of per instance: the series budget).
  bool handling_per_instance = true;
  metrics::Selection selection;  // disabled families are neither read nor rendered
};

class ExitCollector : public prometheus::Collectable {
 public:
  ExitCollector(const discovery::VcpuTracker& tracker, const bpf::VcpuMaps& maps, ExitSeries series)
      : tracker_(tracker), maps_(maps), series_(std::move(series)) {}
  ExitCollector(const discovery::VcpuTracker& tracker, const bpf::VcpuMaps& maps, bool per_vcpu)
      : ExitCollector(tracker, maps, ExitSeries{.per_vcpu = per_vcpu}) {}
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Share of exits to the VMM that the VMM-handling histogram sees
  // (hvtel_vcpu_vmm_handling_sample_ratio); not exported when unset.
  void set_vmm_sample_ratio(std::function<double()> f) { vmm_ratio_ = std::move(f); }

 private:
  std::function<double()> vmm_ratio_;
  const discovery::VcpuTracker& tracker_;
  const bpf::VcpuMaps& maps_;
  ExitSeries series_;
};

}  // namespace hvtel::kvm
