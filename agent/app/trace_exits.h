// `hvtel trace exits`, `hvtel trace runq` and `hvtel trace upcalls`: one line
// per VM exit, per run-queue wait of a vCPU thread, or per upcall of the OVS
// kernel datapath (of the followed VMM's taps), from a BPF object
// the command loads itself (standalone, no agent needed) and detaches when it
// stops, or from the running agent's /events (--agent). The commands share
// everything but the object and the line.
#pragma once

#include <string>
#include <string_view>

#include "events/event_hub.h"
#include "kvm/exit_trace.h"

namespace hvtel::app {

struct OnDemandTraceOptions {
  std::string instance;  // id, name or pid; empty: every VMM
  int vcpu = -1;
  std::string min_latency;  // "250us"; empty: none
  uint64_t rate = 1000;     // events/s per CPU, 0 unlimited
  uint64_t burst = 1000;
  bool only_vmm = false;  // exits only
  bool json = false;
  double stats_interval_s = 1.0;  // drop report period
  std::string agent;              // ADDR:PORT: follow the agent's /events instead of loading BPF
};

// The client-side filter of the agent path: events of `kind` ("exit", "runq", "upcall")
// of this instance (empty: any) and vCPU (-1: any), at least this latency, to
// the VMM only (exits); status events (attached, drops, detached, error) always pass.
bool keep_traced_event(const events::AgentEvent& e, std::string_view kind, const std::string& instance_id,
                       int vcpu, uint64_t min_latency_ns, bool only_vmm);
inline bool keep_agent_exit(const events::AgentEvent& e, const std::string& instance_id, int vcpu,
                            uint64_t min_latency_ns, bool only_vmm) {
  return keep_traced_event(e, "exit", instance_id, vcpu, min_latency_ns, only_vmm);
}

int cmd_trace_exits(const OnDemandTraceOptions& opts);
int cmd_trace_runq(const OnDemandTraceOptions& opts);
int cmd_trace_upcalls(const OnDemandTraceOptions& opts);

}  // namespace hvtel::app
