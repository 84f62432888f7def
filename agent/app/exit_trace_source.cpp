#include "app/exit_trace_source.h"

#include <fmt/core.h>
#include <time.h>

#include "base/util/log.h"

namespace hvtel::app {
namespace {

constexpr size_t kMaxPending = 8192;  // beyond this the oldest are reported as missed

int64_t clock_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

events::AgentEvent status_event(std::string kind, std::string text, nlohmann::json fields) {
  events::AgentEvent e;
  e.source = "exits";
  e.kind = std::move(kind);
  e.text = std::move(text);
  e.fields = std::move(fields);
  return e;
}

nlohmann::json counts_json(const kvm::ExitTraceCounts& c) {
  return {{"events", c.emitted},
          {"dropped", c.dropped()},
          {"rate_limited", c.rate_limited},
          {"ring_full", c.ring_full},
          {"untimed", c.untimed}};
}

}  // namespace

ExitTraceSource::ExitTraceSource(const events::EventHub& hub, kvm::ExitTraceConfig cfg,
                                 kvm::VmmNamer::Lookup lookup, std::chrono::milliseconds idle)
    : hub_(hub), cfg_(cfg), idle_(idle), lookup_(std::move(lookup)) {}

void ExitTraceSource::start_tracer() {
  auto t = kvm::ExitTracer::start(cfg_);
  if (!t) {
    // Not every poll: a kernel that refuses the program refuses it for a while.
    retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    log::warn("trace", "exit trace: {}", t.error().message);
    pending_.push_back(
        status_event("error", "cannot trace exits: " + t.error().message, {{"error", t.error().message}}));
    return;
  }
  tracer_ = std::move(*t);
  names_ = std::make_unique<kvm::VmmNamer>(proc_, lookup_);
  last_ = {};
  wall_offset_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
  next_report_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::string limit = cfg_.rate ? fmt::format("at most {}/s per CPU, burst {}", cfg_.rate, cfg_.burst)
                                : std::string("no rate limit");
  log::info("trace", "exit trace attached for a follower ({})", tracer_->attach_summary());
  pending_.push_back(
      status_event("attached", fmt::format("tracing exits ({}), {}", tracer_->attach_summary(), limit),
                   {{"attach", tracer_->attach_summary()}, {"rate", cfg_.rate}, {"burst", cfg_.burst}}));
}

void ExitTraceSource::report(bool closing) {
  auto c = tracer_->counts();
  if (!c) {
    log::warn("trace", "exit trace: {}", c.error().message);
    return;
  }
  bool changed = c->dropped() != last_.dropped() || c->untimed != last_.untimed;
  last_ = *c;
  if (!closing && !changed) return;
  pending_.push_back(
      status_event(closing ? "detached" : "drops", kvm::format_drop_line(last_, cfg_), counts_json(last_)));
}

void ExitTraceSource::stop_tracer() {
  // Nobody follows any more: what is left in the ring is not worth showing late.
  if (auto st = tracer_->poll(0, [](const hv_trace_exit&) {}); !st)
    log::warn("trace", "exit trace: {}", st.error().message);
  report(true);
  tracer_.reset();
  log::info("trace", "exit trace detached: no follower for {} ms", idle_.count());
}

events::SourceBatch ExitTraceSource::since(uint64_t /*cursor*/, size_t max) {
  const auto now = std::chrono::steady_clock::now();
  const auto read = hub_.last_read(name());
  const bool followed = read && now - *read < idle_;
  if (followed && !tracer_ && now >= retry_at_) start_tracer();
  if (!followed && tracer_) stop_tracer();
  if (tracer_) {
    auto on_event = [&](const hv_trace_exit& raw) {
      auto r = kvm::describe(raw, *names_);
      events::AgentEvent e;
      e.source = "exits";
      e.kind = "exit";
      e.time_ms = (static_cast<int64_t>(r.ts_ns) + wall_offset_ns_) / 1000000;
      e.instance_id = r.instance_id;
      e.text = kvm::format_exit_text(r);
      auto opt = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
      e.fields = {{"instance_name", r.instance_name},
                  {"pid", r.pid},
                  {"tid", r.tid},
                  {"vcpu", r.vcpu},
                  {"cpu", r.cpu},
                  {"vendor", opt(r.vendor)},
                  {"reason", opt(r.reason)},
                  {"vmm_reason", opt(r.vmm_reason)},
                  {"latency_ns", r.latency_ns},
                  {"dropped", last_.dropped()}};
      pending_.push_back(std::move(e));
      if (pending_.size() > kMaxPending) {
        pending_.pop_front();
        ++missed_;
      }
    };
    if (auto st = tracer_->poll(0, on_event); !st) log::warn("trace", "exit trace: {}", st.error().message);
    if (now >= next_report_) {
      next_report_ = now + std::chrono::seconds(1);
      report(false);
    }
  }
  events::SourceBatch b;
  while (!pending_.empty() && b.events.size() < max) {
    b.events.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  cursor_ += b.events.size();
  b.next_cursor = cursor_;
  b.missed = missed_;
  missed_ = 0;
  return b;
}

}  // namespace hvtel::app
