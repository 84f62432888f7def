#include "events/pinning_source.h"

#include <string>
#include <utility>

namespace hvtel::events {

AgentEvent from_violation(const pinning::ViolationEvent& e, int64_t wall_now_ms,
                          uint64_t mono_now_ns) {
  AgentEvent out;
  out.source = "pinning";
  out.kind = std::string(pinning::class_name(e.cls));
  out.instance_id = e.instance_id;
  if (e.time_ns == 0 || e.time_ns > mono_now_ns)
    out.time_ms = wall_now_ms;
  else
    out.time_ms = wall_now_ms - static_cast<int64_t>((mono_now_ns - e.time_ns) / 1'000'000ULL);
  // format_event() starts with the monotonic time, which means nothing to a
  // reader: keep the rest of the line.
  std::string line = pinning::format_event(e);
  auto sp = line.find(' ');
  out.text = sp == std::string::npos ? line : line.substr(sp + 1);

  auto& f = out.fields;
  f["class"] = out.kind;
  f["event"] = std::string(pinning::event_kind_name(e.kind));
  if (e.vcpu >= 0) f["vcpu"] = e.vcpu;
  if (e.pcpu >= 0) f["pcpu"] = e.pcpu;
  if (e.duration_ns > 0) f["duration_ns"] = e.duration_ns;
  if (!e.intruder_comm.empty()) f["intruder_comm"] = e.intruder_comm;
  if (e.intruder_pid > 0) f["intruder_pid"] = e.intruder_pid;
  if (!e.detail.empty()) f["detail"] = e.detail;
  return out;
}

std::unique_ptr<EventSource> pinning_source(std::shared_ptr<const pinning::ViolationRegistry> registry) {
  return make_source("pinning", [registry = std::move(registry)](uint64_t cursor, size_t max) {
    pinning::EventBatch b = registry->events_since(cursor, max);
    SourceBatch out;
    out.next_cursor = b.cursor;
    out.missed = b.missed;
    const int64_t wall = wall_clock_ms();
    const uint64_t mono = pinning::monotonic_ns();
    out.events.reserve(b.events.size());
    for (const auto& e : b.events) out.events.push_back(from_violation(e, wall, mono));
    return out;
  });
}

}  // namespace hvtel::events
