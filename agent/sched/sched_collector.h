// SchedCollector: hvtel_vcpu_* scheduling metrics from the mmapped hv_sched
// slots: run-queue latency per instance; run/wait time, preemptions and
// migrations per instance, or per vCPU with --per-vcpu (the series budget:
// 4 series per instance instead of 4 per vCPU).
#pragma once

#include <prometheus/collectable.h>

#include "base/bpf/vcpu_maps.h"
#include "base/metrics/selection.h"
#include "discovery/vcpu_tracker.h"

namespace hvtel::sched {

class SchedCollector : public prometheus::Collectable {
 public:
  SchedCollector(const discovery::VcpuTracker& tracker, const bpf::VcpuMaps& maps, bool per_vcpu = false,
                 metrics::Selection selection = {})
      : tracker_(tracker), maps_(maps), per_vcpu_(per_vcpu), selection_(std::move(selection)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const discovery::VcpuTracker& tracker_;
  const bpf::VcpuMaps& maps_;
  bool per_vcpu_;
  metrics::Selection selection_;
};

}  // namespace hvtel::sched
