// `hvtel trace`: follows the agent's /events stream (events/event_server.h)
// and prints one line per event, until Ctrl-C. The CLI never loads BPF; it
// reads what the running `hvtel serve` publishes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "events/event_hub.h"

namespace hvtel::cli {

struct TraceOptions {
  std::string agent = "127.0.0.1:9478";  // the agent's --events-listen
  std::string source;                    // "pinning", "ovs"; empty: all
  std::string instance;                  // instance_id; empty: all
  bool json = false;                     // raw JSON lines
  bool from_start = false;               // replay the agent's ring first
  // Client-side filter (hvtel trace exits --agent: instance, --vcpu, --min-latency, --to-vmm).
  std::function<bool(const events::AgentEvent&)> keep;
};

// The request target for one long poll; `since` empty means "now".
std::string events_target(const std::string& since, uint32_t wait_ms, size_t max,
                          const std::string& source, const std::string& instance);

// "2024-05-01T10:00:00.123Z pinning  kernel pin_changed <id> vcpu=0 ...".
std::string format_trace_line(const events::AgentEvent& e);

int cmd_trace(const TraceOptions& opts);

}  // namespace hvtel::cli
