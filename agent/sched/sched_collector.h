// SchedCollector: hvtel_vcpu_* scheduling metrics from the mmapped hv_sched
// slots: run-queue latency per instance, run/wait time, preemptions and
// migrations per vCPU.
#pragma once

#include <prometheus/collectable.h>

#include "base/bpf/vcpu_maps.h"
#include "discovery/vcpu_tracker.h"

namespace hvtel::sched {

class SchedCollector : public prometheus::Collectable {
 public:
  SchedCollector(const discovery::VcpuTracker& tracker, const bpf::VcpuMaps& maps)
      : tracker_(tracker), maps_(maps) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const discovery::VcpuTracker& tracker_;
  const bpf::VcpuMaps& maps_;
};

}  // namespace hvtel::sched
