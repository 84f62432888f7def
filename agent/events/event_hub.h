// The event hub of the live CLI: one ordered, bounded stream of agent events
// merged from pluggable sources (the pinning registry, the OVS service, ...),
// read by `hvtel trace` through the /events endpoint (events/event_server.h).
//
// Sources keep their own sequence numbers; the hub pulls from each with a
// cursor (poll_sources(), or the pump thread of start()) and renumbers what it
// gets into its own sequence 1, 2, 3, ... Readers ask for the events after a
// seq they already have; events that left the bounded ring are reported as
// `missed`, never silently skipped.
//
// Thread safety: every method may be called from any thread. One mutex guards
// the ring; a condition variable wakes long-polling readers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/util/result.h"
#include "base/util/seq_ring.h"

namespace hvtel::events {

struct AgentEvent {
  uint64_t seq = 0;      // hub sequence, assigned by the hub: 1, 2, 3, ...
  int64_t time_ms = 0;   // wall clock, unix milliseconds; 0 on publish means "now"
  std::string source;    // "pinning", "ovs", ...
  std::string kind;      // source-specific: the violation class, "flow_added", ...
  std::string instance_id;  // empty when the event is not about one instance
  std::string text;      // one human-readable line (no newline)
  nlohmann::json fields = nlohmann::json::object();  // structured detail
};

// "2024-05-01T10:00:00.123Z" (UTC).
std::string format_time_iso8601(int64_t unix_ms);
int64_t wall_clock_ms();

// One JSON object (one line when dumped): seq, time (ISO8601), time_ms, source,
// kind, instance_id, text, fields.
nlohmann::json to_json(const AgentEvent& e);
// The inverse, for the CLI; an error for a line that is not an event.
Result<AgentEvent> event_from_json(const nlohmann::json& j);

// What a source returns for since(): its events after the cursor (oldest
// first, hub fields seq/time_ms may be 0), the cursor to pass next time, and
// how many of its events the source itself already dropped.
struct SourceBatch {
  std::vector<AgentEvent> events;
  uint64_t next_cursor = 0;
  uint64_t missed = 0;
};

// A producer with its own monotonically increasing cursor (0 = from the
// start of what it still holds). since() must not block.
class EventSource {
 public:
  virtual ~EventSource() = default;
  virtual std::string_view name() const = 0;
  virtual SourceBatch since(uint64_t cursor, size_t max) = 0;
};

// Adapts a function, for sources with an events_since(seq)-style API:
//   hub.add_source(events::make_source("ovs", [svc](uint64_t c, size_t max) { ... }));
using SourceFn = std::function<SourceBatch(uint64_t cursor, size_t max)>;
std::unique_ptr<EventSource> make_source(std::string name, SourceFn fn);

// What a reader gets: events with seq > the given one, the cursor for the
// next call, and how many matching-or-not events it can no longer get.
struct HubBatch {
  std::vector<AgentEvent> events;
  uint64_t cursor = 0;
  uint64_t missed = 0;
  bool reset = false;  // the given seq was ahead of the hub (agent restarted): read from 0
};

struct HubOptions {
  size_t capacity = 8192;          // events kept in the ring
  size_t max_text = 1024;          // longer text is truncated (bounded memory)
  size_t max_per_source_poll = 1024;
};

class EventHub {
 public:
  using Filter = std::function<bool(const AgentEvent&)>;

  explicit EventHub(HubOptions options = {});
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  void add_source(std::unique_ptr<EventSource> source);
  // Appends one event (push-style producers); assigns seq and, if 0, time_ms.
  uint64_t publish(AgentEvent event);
  // Pulls once from every source; returns the number of events added.
  size_t poll_sources();
  // A thread that calls poll_sources() every `interval` until stop().
  void start(std::chrono::milliseconds interval = std::chrono::milliseconds(100));
  void stop();
  // Wakes every waiting reader and makes later waits return at once (shutdown).
  void close();

  uint64_t last_seq() const;
  // Events with seq > since that pass `filter` (all when empty), at most max.
  HubBatch since(uint64_t since, size_t max, const Filter& filter = {}) const;
  // As since(), but waits up to `timeout` until at least one event passes.
  HubBatch wait_since(uint64_t since, std::chrono::milliseconds timeout, size_t max,
                      const Filter& filter = {}) const;

  // Events the sources reported as dropped before the hub could pull them.
  uint64_t source_missed() const;

  // Readers of one source (/events?source=S), so an on-demand source (the
  // exit trace) runs only while followed: note_reader() on every request,
  // last_read() is when the latest one was seen, nullopt if none ever was.
  void note_reader(std::string_view source) const;
  std::optional<std::chrono::steady_clock::time_point> last_read(std::string_view source) const;

 private:
  struct SourceState {
    std::unique_ptr<EventSource> source;
    uint64_t cursor = 0;
  };
  uint64_t append_locked(AgentEvent event);
  HubBatch collect_locked(uint64_t since, size_t max, const Filter& filter) const;

  const HubOptions options_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  SeqRing<AgentEvent> ring_;
  uint64_t source_missed_ = 0;
  bool closed_ = false;

  std::mutex sources_mu_;  // serialises poll_sources(); never held with mu_ while a source runs
  std::vector<SourceState> sources_;

  mutable std::mutex readers_mu_;  // bounded (64): made-up source names cannot grow it
  mutable std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> readers_;

  std::mutex pump_mu_;
  std::condition_variable pump_cv_;
  bool pump_stop_ = false;
  std::thread pump_;
};

}  // namespace hvtel::events
