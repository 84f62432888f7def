#include "events/event_hub.h"

#include <fmt/core.h>
#include <time.h>

#include <utility>

namespace hvtel::events {

int64_t wall_clock_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string format_time_iso8601(int64_t unix_ms) {
  int64_t secs = unix_ms / 1000;
  int64_t ms = unix_ms % 1000;
  if (ms < 0) {  // before 1970: floor, so the millisecond part stays positive
    ms += 1000;
    secs -= 1;
  }
  time_t t = static_cast<time_t>(secs);
  tm utc{};
  gmtime_r(&t, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
}

nlohmann::json to_json(const AgentEvent& e) {
  nlohmann::json j = nlohmann::json::object();
  j["seq"] = e.seq;
  j["time"] = format_time_iso8601(e.time_ms);
  j["time_ms"] = e.time_ms;
  j["source"] = e.source;
  j["kind"] = e.kind;
  j["instance_id"] = e.instance_id;
  j["text"] = e.text;
  j["fields"] = e.fields.is_object() ? e.fields : nlohmann::json::object();
  return j;
}

Result<AgentEvent> event_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("seq") || !j.contains("source"))
    return fail("not an event: " + j.dump());
  try {
    AgentEvent e;
    e.seq = j.at("seq").get<uint64_t>();
    e.time_ms = j.value("time_ms", int64_t{0});
    e.source = j.at("source").get<std::string>();
    e.kind = j.value("kind", std::string());
    e.instance_id = j.value("instance_id", std::string());
    e.text = j.value("text", std::string());
    if (j.contains("fields") && j["fields"].is_object()) e.fields = j["fields"];
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return fail(std::string("bad event: ") + ex.what());
  }
}

namespace {
class FunctionSource : public EventSource {
 public:
  FunctionSource(std::string name, SourceFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string_view name() const override { return name_; }
  SourceBatch since(uint64_t cursor, size_t max) override { return fn_(cursor, max); }

 private:
  std::string name_;
  SourceFn fn_;
};
}  // namespace

std::unique_ptr<EventSource> make_source(std::string name, SourceFn fn) {
  return std::make_unique<FunctionSource>(std::move(name), std::move(fn));
}

EventHub::EventHub(HubOptions options) : options_(options), ring_(options_.capacity) {}

EventHub::~EventHub() {
  stop();
  close();
}

void EventHub::add_source(std::unique_ptr<EventSource> source) {
  std::lock_guard lock(sources_mu_);
  sources_.push_back(SourceState{std::move(source), 0});
}

uint64_t EventHub::append_locked(AgentEvent event) {
  if (event.time_ms == 0) event.time_ms = wall_clock_ms();
  if (event.text.size() > options_.max_text) {
    event.text.resize(options_.max_text);
    event.text += "...";
  }
  if (!event.fields.is_object()) event.fields = nlohmann::json::object();
  return ring_.push(std::move(event));
}

uint64_t EventHub::publish(AgentEvent event) {
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = append_locked(std::move(event));
  }
  cv_.notify_all();
  return seq;
}

size_t EventHub::poll_sources() {
  std::lock_guard sources_lock(sources_mu_);
  size_t added = 0;
  for (auto& s : sources_) {
    // Drain a backlog in a few rounds, but never loop forever on a busy source.
    for (int round = 0; round < 8; ++round) {
      SourceBatch batch = s.source->since(s.cursor, options_.max_per_source_poll);
      const size_t n = batch.events.size();
      if (batch.next_cursor > s.cursor) s.cursor = batch.next_cursor;
      if (n > 0 || batch.missed > 0) {
        {
          std::lock_guard lock(mu_);
          source_missed_ += batch.missed;
          for (auto& e : batch.events) {
            if (e.source.empty()) e.source = std::string(s.source->name());
            append_locked(std::move(e));
          }
        }
        cv_.notify_all();
      }
      added += n;
      if (n < options_.max_per_source_poll) break;
    }
  }
  return added;
}

void EventHub::start(std::chrono::milliseconds interval) {
  std::lock_guard lock(pump_mu_);
  if (pump_.joinable()) return;
  pump_stop_ = false;
  pump_ = std::thread([this, interval] {
    std::unique_lock l(pump_mu_);
    while (!pump_stop_) {
      l.unlock();
      poll_sources();
      l.lock();
      pump_cv_.wait_for(l, interval, [this] { return pump_stop_; });
    }
  });
}

void EventHub::stop() {
  std::thread t;
  {
    std::lock_guard lock(pump_mu_);
    pump_stop_ = true;
    t = std::move(pump_);
  }
  pump_cv_.notify_all();
  if (t.joinable()) t.join();
}

void EventHub::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

uint64_t EventHub::last_seq() const {
  std::lock_guard lock(mu_);
  return ring_.last_seq();
}

void EventHub::note_reader(std::string_view source) const {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(readers_mu_);
  for (auto& [name, at] : readers_) {
    if (name == source) {
      at = now;
      return;
    }
  }
  if (readers_.size() >= 64) readers_.erase(readers_.begin());
  readers_.emplace_back(std::string(source), now);
}

std::optional<std::chrono::steady_clock::time_point> EventHub::last_read(std::string_view source) const {
  std::lock_guard lock(readers_mu_);
  for (const auto& [name, at] : readers_)
    if (name == source) return at;
  return std::nullopt;
}

uint64_t EventHub::source_missed() const {
  std::lock_guard lock(mu_);
  return source_missed_;
}

HubBatch EventHub::collect_locked(uint64_t since, size_t max, const Filter& filter) const {
  HubBatch batch;
  if (since > ring_.last_seq()) {
    batch.reset = true;
    since = 0;
  }
  auto slice = ring_.after(since, max, filter);
  batch.events = std::move(slice.items);
  batch.cursor = slice.cursor;
  batch.missed = slice.missed;
  return batch;
}

HubBatch EventHub::since(uint64_t since, size_t max, const Filter& filter) const {
  std::lock_guard lock(mu_);
  return collect_locked(since, max, filter);
}

HubBatch EventHub::wait_since(uint64_t since, std::chrono::milliseconds timeout, size_t max,
                              const Filter& filter) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  HubBatch out = collect_locked(since, max, filter);
  // Filtered-out events still advance the cursor; keep waiting for a match.
  while (out.events.empty() && max > 0 && !closed_) {
    const uint64_t cur = out.cursor;
    if (!cv_.wait_until(lock, deadline, [&] { return closed_ || ring_.last_seq() > cur; })) break;
    if (closed_) break;
    HubBatch more = collect_locked(cur, max, filter);
    out.events = std::move(more.events);
    out.cursor = more.cursor;
    out.missed += more.missed;
  }
  return out;
}

}  // namespace hvtel::events
