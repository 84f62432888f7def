// `hvtel trace exits`: one line per VM exit of the followed VMMs, from the
// trace_exits BPF object this command loads itself (standalone, no agent
// needed) and detaches when it stops.
#pragma once

#include <string>

#include "events/event_hub.h"
#include "kvm/exit_trace.h"

namespace hvtel::app {

struct TraceExitsOptions {
  std::string instance;  // id, name or pid; empty: every VMM
  int vcpu = -1;
  std::string min_latency;  // "250us"; empty: none
  uint64_t rate = 1000;     // events/s per CPU, 0 unlimited
  uint64_t burst = 1000;
  bool only_vmm = false;
  bool json = false;
  double stats_interval_s = 1.0;  // drop report period
  std::string agent;              // ADDR:PORT: follow the agent's /events instead of loading BPF
};

// The client-side filter of the agent path: exits of this instance (empty: any)
// and vCPU (-1: any), at least this latency, to the VMM only; status events
// (attached, drops, detached, error) always pass.
bool keep_agent_exit(const events::AgentEvent& e, const std::string& instance_id, int vcpu,
                     uint64_t min_latency_ns, bool only_vmm);

int cmd_trace_exits(const TraceExitsOptions& opts);

}  // namespace hvtel::app
