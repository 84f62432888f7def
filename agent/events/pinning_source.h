// The pinning violation registry as an event source for the live CLI.
#pragma once

#include <cstdint>
#include <memory>

#include "events/event_hub.h"
#include "pinning/violations.h"

namespace hvtel::events {

// One registry event as an agent event: source "pinning", kind = the violation
// class ("pin_changed", "offpin_run", ...), fields {class, event (kernel,
// raised, cleared), vcpu, pcpu, duration_ns, intruder_comm, intruder_pid,
// detail} (each only when set). The registry's monotonic timestamp becomes
// wall clock through the (wall_now_ms, mono_now_ns) pair.
AgentEvent from_violation(const pinning::ViolationEvent& e, int64_t wall_now_ms,
                          uint64_t mono_now_ns);

std::unique_ptr<EventSource> pinning_source(std::shared_ptr<const pinning::ViolationRegistry> registry);

}  // namespace hvtel::events
