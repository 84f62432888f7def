// `hvtel trace exits`: one line per VM exit of the followed VMMs, from the
// trace_exits BPF object this command loads itself (standalone, no agent
// needed) and detaches when it stops.
#pragma once

#include <string>

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
};

int cmd_trace_exits(const TraceExitsOptions& opts);

}  // namespace hvtel::app
