// The /events endpoint of `hvtel serve` (the live CLI's feed), on its own
// port, loopback by default (--events-listen), apart from /metrics so a slow
// or long-polling reader never delays a scrape.
//
//   GET /events?since=SEQ|now&wait_ms=N&max=M&source=S&instance=ID
//
// Answers 200 with JSON lines (application/x-ndjson): one event per line
// (events::to_json), then a final {"cursor":N,"missed":K} line (plus
// "reset":true when SEQ was ahead of the agent, e.g. after a restart; the
// events then start from the beginning of the ring). Pass the cursor as the next
// since. With nothing new, waits up to wait_ms for a matching event.
// since=now starts at the newest event. Bad parameters: 400 and a one-line
// message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "events/event_hub.h"
#include "base/util/result.h"

namespace hvtel::events {

inline constexpr uint32_t kMaxWaitMs = 30000;
inline constexpr size_t kDefaultMaxEvents = 1000;
inline constexpr size_t kMaxEvents = 10000;

struct EventsQuery {
  uint64_t since = 0;
  bool since_now = false;
  uint32_t wait_ms = 0;
  size_t max = kDefaultMaxEvents;
  std::string source;    // empty: every source
  std::string instance;  // empty: every instance
};

// Parses the raw query string (without '?'); percent-decoding included.
// Unknown, repeated or malformed parameters are errors.
Result<EventsQuery> parse_events_query(std::string_view query);

struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
};

// The whole request handling without the HTTP server (unit-testable).
// `stopping` cuts a long poll short (server shutdown).
HttpReply handle_events_request(const EventHub& hub, std::string_view query,
                                const std::atomic<bool>* stopping = nullptr);

class EventServer {
 public:
  // Listens on ADDR:PORT (port 0: any free port) with `threads` worker
  // threads. civetweb holds a worker per connection, for a long poll (up to
  // kMaxWaitMs) or until the request timeout: enough workers that idle or
  // slow clients and many followers leave room for everyone else.
  static Result<std::unique_ptr<EventServer>> start(const EventHub& hub, const std::string& listen,
                                                    unsigned threads = 128);
  ~EventServer();
  EventServer(const EventServer&) = delete;
  EventServer& operator=(const EventServer&) = delete;

  std::vector<int> ports() const;

  struct Impl;

 private:
  explicit EventServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hvtel::events
