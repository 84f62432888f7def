#include "app/exit_trace_source.h"

#include <fmt/core.h>
#include <time.h>

#include "app/tap_owners.h"
#include "base/util/log.h"
#include "kvm/runq_trace.h"
#include "ovs/datapath/upcall_trace.h"

namespace hvtel::app {
namespace {

constexpr size_t kMaxPending = 8192;  // beyond this the oldest are reported as missed

int64_t clock_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t wall_offset_ns() { return clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC); }

nlohmann::json counts_json(const bpf::TraceCounts& c) {
  return {{"events", c.emitted},
          {"dropped", c.dropped()},
          {"rate_limited", c.rate_limited},
          {"ring_full", c.ring_full},
          {"untimed", c.untimed}};
}

// The agent event of one traced record: its fields under `fields`, its instance the event's own.
events::AgentEvent traced_event(std::string source, std::string kind, uint64_t ts_ns, int64_t offset_ns,
                                std::string text, nlohmann::ordered_json fields) {
  events::AgentEvent e;
  e.source = std::move(source);
  e.kind = std::move(kind);
  e.time_ms = (static_cast<int64_t>(ts_ns) + offset_ns) / 1000000;
  e.instance_id = fields.value("instance_id", std::string());
  e.text = std::move(text);
  fields.erase("instance_id");
  e.fields = std::move(fields);
  return e;
}

// What both sessions hold: their tracer, the session's namer, the filter and the clock offset.
template <class Tracer>
class SessionOf : public TraceSession {
 public:
  SessionOf(std::unique_ptr<Tracer> t, kvm::VmmNamer& names, bpf::TraceConfig cfg)
      : tracer_(std::move(t)), names_(names), cfg_(cfg) {}
  const std::string& attach_summary() const override { return tracer_->attach_summary(); }
  Result<bpf::TraceCounts> counts() const override { return tracer_->counts(); }

 protected:
  std::unique_ptr<Tracer> tracer_;
  kvm::VmmNamer& names_;
  const bpf::TraceConfig cfg_;
  const int64_t offset_ = wall_offset_ns();
};

class ExitSession : public SessionOf<kvm::ExitTracer> {
 public:
  using SessionOf::SessionOf;
  std::string drop_line(const bpf::TraceCounts& c) const override { return kvm::format_drop_line(c, cfg_); }
  Status poll(uint64_t dropped, const std::function<void(events::AgentEvent)>& emit) override {
    return tracer_->poll(0, [&](const hv_trace_exit& raw) {
      auto r = kvm::describe(raw, names_);
      events::AgentEvent e;
      e.source = "exits";
      e.kind = "exit";
      e.time_ms = (static_cast<int64_t>(r.ts_ns) + offset_) / 1000000;
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
                  {"dropped", dropped}};
      emit(std::move(e));
    });
  }
};

class RunqSession : public SessionOf<kvm::RunqTracer> {
 public:
  using SessionOf::SessionOf;
  std::string drop_line(const bpf::TraceCounts& c) const override {
    return kvm::format_runq_drop_line(c, cfg_);
  }
  Status poll(uint64_t dropped, const std::function<void(events::AgentEvent)>& emit) override {
    return tracer_->poll(0, [&](const hv_trace_runq& raw) {
      auto r = kvm::describe(raw, names_);
      emit(traced_event("runq", "runq", r.ts_ns, offset_, kvm::format_runq_text(r),
                        kvm::runq_fields(r, dropped)));
    });
  }
  // VMMs started since, vCPUs hot-plugged: followed from the next second.
  void every_second() override {
    if (auto n = tracer_->refresh(); !n) log::warn("trace", "runq trace: {}", n.error().message);
  }
};

class UpcallSession : public SessionOf<ovs_dp::UpcallTracer> {
 public:
  UpcallSession(std::unique_ptr<ovs_dp::UpcallTracer> t, kvm::VmmNamer& names, bpf::TraceConfig cfg,
                const discovery::ProcFs& proc)
      : SessionOf(std::move(t), names, cfg),
        owners_(proc, names),
        namer_(std::make_shared<ovs_dp::NameCache>(std::make_unique<ovs_dp::SystemDatapathDirectory>()),
               [this](const std::string& iface) { return owners_.owner(iface); }) {}
  std::string drop_line(const bpf::TraceCounts& c) const override {
    return ovs_dp::format_upcall_drop_line(c, cfg_);
  }
  Status poll(uint64_t dropped, const std::function<void(events::AgentEvent)>& emit) override {
    return tracer_->poll(0, [&](const hv_trace_upcall& raw) {
      auto r = namer_.describe(raw);
      emit(traced_event("upcalls", "upcall", r.ts_ns, offset_, ovs_dp::format_upcall_text(r),
                        ovs_dp::upcall_fields(r, dropped)));
    });
  }

 private:
  TapOwners owners_;
  ovs_dp::UpcallNamer namer_;
};

}  // namespace

TraceSource::TraceSource(const events::EventHub& hub, std::string name, std::string what,
                         bpf::TraceConfig cfg, Start start, kvm::VmmNamer::Lookup lookup,
                         std::chrono::milliseconds idle)
    : hub_(hub),
      name_(std::move(name)),
      what_(std::move(what)),
      cfg_(cfg),
      start_(std::move(start)),
      idle_(idle),
      lookup_(std::move(lookup)) {}

events::AgentEvent TraceSource::status_event(std::string kind, std::string text,
                                             nlohmann::json fields) const {
  events::AgentEvent e;
  e.source = name_;
  e.kind = std::move(kind);
  e.text = std::move(text);
  e.fields = std::move(fields);
  return e;
}

void TraceSource::start_session() {
  auto names = std::make_unique<kvm::VmmNamer>(proc_, lookup_);
  auto s = start_(*names);
  if (!s) {
    // Not every poll: a kernel that refuses the program refuses it for a while.
    retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    log::warn("trace", "{} trace: {}", name_, s.error().message);
    pending_.push_back(status_event("error", fmt::format("cannot trace {}: {}", what_, s.error().message),
                                    {{"error", s.error().message}}));
    return;
  }
  session_ = std::move(*s);
  names_ = std::move(names);
  last_ = {};
  next_report_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  log::info("trace", "{} trace attached for a follower ({})", name_, session_->attach_summary());
  pending_.push_back(status_event(
      "attached", fmt::format("tracing {} ({}), {}", what_, session_->attach_summary(), bpf::rate_text(cfg_)),
      {{"attach", session_->attach_summary()}, {"rate", cfg_.rate}, {"burst", cfg_.burst}}));
}

void TraceSource::report(bool closing) {
  auto c = session_->counts();
  if (!c) {
    log::warn("trace", "{} trace: {}", name_, c.error().message);
    return;
  }
  bool changed = c->dropped() != last_.dropped() || c->untimed != last_.untimed;
  last_ = *c;
  if (!closing && !changed) return;
  pending_.push_back(
      status_event(closing ? "detached" : "drops", session_->drop_line(last_), counts_json(last_)));
}

void TraceSource::stop_session() {
  // Nobody follows any more: what is left in the ring is not worth showing late.
  if (auto st = session_->poll(last_.dropped(), [](events::AgentEvent) {}); !st)
    log::warn("trace", "{} trace: {}", name_, st.error().message);
  report(true);
  session_.reset();
  names_.reset();
  log::info("trace", "{} trace detached: no follower for {} ms", name_, idle_.count());
}

events::SourceBatch TraceSource::since(uint64_t /*cursor*/, size_t max) {
  const auto now = std::chrono::steady_clock::now();
  const auto read = hub_.last_read(name());
  const bool followed = read && now - *read < idle_;
  if (followed && !session_ && now >= retry_at_) start_session();
  if (!followed && session_) stop_session();
  if (session_) {
    auto emit = [&](events::AgentEvent e) {
      pending_.push_back(std::move(e));
      if (pending_.size() > kMaxPending) {
        pending_.pop_front();
        ++missed_;
      }
    };
    if (auto st = session_->poll(last_.dropped(), emit); !st)
      log::warn("trace", "{} trace: {}", name_, st.error().message);
    if (now >= next_report_) {
      next_report_ = now + std::chrono::seconds(1);
      report(false);
      session_->every_second();
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

std::unique_ptr<TraceSource> exit_trace_source(const events::EventHub& hub, kvm::VmmNamer::Lookup lookup) {
  const bpf::TraceConfig cfg{};
  auto start = [cfg](kvm::VmmNamer& names) -> Result<std::unique_ptr<TraceSession>> {
    auto t = kvm::ExitTracer::start(cfg);
    if (!t) return fail(t.error());
    return std::make_unique<ExitSession>(std::move(*t), names, cfg);
  };
  return std::make_unique<TraceSource>(hub, "exits", "exits", cfg, start, std::move(lookup));
}

std::unique_ptr<TraceSource> runq_trace_source(const events::EventHub& hub, kvm::VmmNamer::Lookup lookup) {
  const bpf::TraceConfig cfg{};
  auto start = [cfg](kvm::VmmNamer& names) -> Result<std::unique_ptr<TraceSession>> {
    // The namer's procfs outlives the session: both belong to the source.
    static const discovery::ProcFs proc;
    auto t = kvm::RunqTracer::start(cfg, proc);
    if (!t) return fail(t.error());
    return std::make_unique<RunqSession>(std::move(*t), names, cfg);
  };
  return std::make_unique<TraceSource>(hub, "runq", "run-queue waits", cfg, start, std::move(lookup));
}

std::unique_ptr<TraceSource> upcall_trace_source(const events::EventHub& hub, kvm::VmmNamer::Lookup lookup) {
  const bpf::TraceConfig cfg{};
  auto start = [cfg](kvm::VmmNamer& names) -> Result<std::unique_ptr<TraceSession>> {
    static const discovery::ProcFs proc;
    auto t = ovs_dp::UpcallTracer::start(cfg, std::nullopt);
    if (!t) return fail(t.error());
    return std::make_unique<UpcallSession>(std::move(*t), names, cfg, proc);
  };
  return std::make_unique<TraceSource>(hub, "upcalls", "upcalls", cfg, start, std::move(lookup));
}

}  // namespace hvtel::app
