// AgentCollector: the agent's own health and cost: build info, probe attach
// state, per-program BPF run counters, lost kernel events, slot usage and
// discovery counters.
#pragma once

#include <prometheus/collectable.h>

#include <functional>
#include <string>
#include <vector>

#include "base/bpf/object.h"
#include "base/bpf/prog_stats.h"
#include "base/bpf/vcpu_maps.h"
#include "base/metrics/selection.h"
#include "discovery/vcpu_tracker.h"

namespace hvtel::app {

class AgentCollector : public prometheus::Collectable {
 public:
  AgentCollector(std::vector<bpf::ProbeStatus> probes, std::vector<bpf::ProgramRef> programs,
                 const bpf::VcpuMaps& maps, const discovery::VcpuTracker& tracker)
      : probes_(std::move(probes)), programs_(std::move(programs)), maps_(maps),
        tracker_(tracker) {}
  std::vector<prometheus::MetricFamily> Collect() const override;
  // --metrics-disable: these families are not read (the caller filters the output).
  void set_selection(metrics::Selection s) { selection_ = std::move(s); }
  // Probes that can attach after startup (ovs_dp): replaces the constructor's
  // lists at each scrape.
  void set_probe_source(std::function<std::vector<bpf::ProbeStatus>()> probes,
                        std::function<std::vector<bpf::ProgramRef>()> programs) {
    probe_source_ = std::move(probes);
    program_source_ = std::move(programs);
  }

 private:
  std::function<std::vector<bpf::ProbeStatus>()> probe_source_;
  std::function<std::vector<bpf::ProgramRef>()> program_source_;
  std::vector<bpf::ProbeStatus> probes_;
  std::vector<bpf::ProgramRef> programs_;
  metrics::Selection selection_;
  const bpf::VcpuMaps& maps_;
  const discovery::VcpuTracker& tracker_;
};

}  // namespace hvtel::app
