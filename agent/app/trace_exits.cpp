#include "app/trace_exits.h"

#include <fmt/core.h>
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <set>

#include "app/tap_owners.h"
#include "cli/trace.h"
#include "discovery/procfs.h"
#include "kvm/runq_trace.h"
#include "ovs/datapath/upcall_trace.h"

namespace hvtel::app {
namespace {

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

int64_t now_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void write_out(const std::string& s) {
  fwrite(s.data(), 1, s.size(), stdout);
  fflush(stdout);
}

// One trace command: its name ("exits"), the agent's event source and kind, and its object.
struct TraceKind {
  std::string command;     // "exits", "runq": "hvtel trace <command>"
  std::string source;      // /events?source=
  std::string event_kind;  // the agent event kind of one traced event
};

// The kernel filter from the options; an error is printed and its exit status returned.
int make_config(const TraceKind& k, const OnDemandTraceOptions& opts, const discovery::ProcFs& proc,
                bpf::TraceConfig& cfg) {
  cfg.vcpu = opts.vcpu;
  cfg.rate = opts.rate;
  cfg.burst = opts.burst;
  cfg.only_user = opts.only_vmm;
  if (!opts.min_latency.empty()) {
    auto d = bpf::parse_duration_ns(opts.min_latency);
    if (!d) {
      fmt::print(stderr, "hvtel trace {}: --min-latency: {}\n", k.command, d.error().message);
      return 2;
    }
    cfg.min_latency_ns = *d;
  }
  if (!opts.instance.empty()) {
    auto pid = kvm::find_vmm(proc, opts.instance);
    if (!pid) {
      fmt::print(stderr, "hvtel trace {}: {}\n", k.command, pid.error().message);
      return 1;
    }
    cfg.tgid = *pid;
  }
  return 0;
}

int follow_agent(const TraceKind& k, const OnDemandTraceOptions& opts, const bpf::TraceConfig& cfg) {
  cli::TraceOptions t;
  t.agent = opts.agent;
  t.source = k.source;
  t.json = opts.json;
  std::string instance_id;
  if (!opts.instance.empty()) {
    // A name or pid is resolved here, on the agent's host. Filtered here, not
    // by the agent: its status events (attached, drops) belong to no instance.
    discovery::ProcFs proc;
    kvm::VmmNamer names(proc);
    instance_id = names.instance(cfg.tgid).instance_id;
  }
  t.keep = [kind = k.event_kind, id = instance_id, vcpu = opts.vcpu, min = cfg.min_latency_ns,
            only = opts.only_vmm](const events::AgentEvent& e) {
    return keep_traced_event(e, kind, id, vcpu, min, only);
  };
  return cli::cmd_trace(t);
}

// What the standalone loop needs of a loaded trace.
struct Standalone {
  std::string attach_summary;
  // Appends the lines of what the ring holds (waiting up to timeout_ms); `dropped` is the last drop total.
  std::function<Status(int timeout_ms, uint64_t dropped, std::string& out)> poll;
  std::function<Result<bpf::TraceCounts>()> counts;
  std::function<std::string(const bpf::TraceCounts&)> drop_line;
  std::function<Status()> every_period;  // optional: once per drop-report period
};

int run_standalone(const TraceKind& k, const OnDemandTraceOptions& opts, const bpf::TraceConfig& cfg,
                   Standalone& t) {
  fmt::print(stderr, "hvtel trace {}: tracing {} ({}), {}; Ctrl-C to stop\n", k.command,
             cfg.tgid ? fmt::format("pid {}", cfg.tgid) : std::string("every VMM"), t.attach_summary,
             bpf::rate_text(cfg));
  fflush(stderr);
  bpf::TraceCounts last;
  std::string out;
  auto error = [&](const std::string& msg) { fmt::print(stderr, "hvtel trace {}: {}\n", k.command, msg); };
  // Counters are read once per period: a drop line only when something new was dropped.
  auto report = [&](bool closing) -> bool {
    auto c = t.counts();
    if (!c) {
      error(c.error().message);
      return false;
    }
    bool changed = c->dropped() != last.dropped() || c->untimed != last.untimed;
    last = *c;
    if (closing || changed)
      out += (opts.json ? bpf::drops_json(last, closing ? "summary" : "drops") : t.drop_line(last)) + "\n";
    return true;
  };
  const int64_t period = static_cast<int64_t>(opts.stats_interval_s * 1e9);
  int64_t next_report = now_ns(CLOCK_MONOTONIC) + period;
  int rc = 0;
  while (!g_stop) {
    if (auto st = t.poll(200, last.dropped(), out); !st) {
      error(st.error().message);
      rc = 1;
      break;
    }
    if (now_ns(CLOCK_MONOTONIC) >= next_report) {
      next_report += period;
      if (!report(false)) rc = 1;
      if (t.every_period)
        if (auto st = t.every_period(); !st) error(st.error().message);
      // The followed VMM is gone: nothing more can come.
      if (cfg.tgid && kill(cfg.tgid, 0) != 0 && errno == ESRCH) g_stop = 1;
    }
    if (!out.empty()) {
      write_out(out);
      out.clear();
    }
  }
  // Drain what the kernel wrote before the stop, then the closing line.
  if (auto st = t.poll(0, last.dropped(), out); !st) {
    error(st.error().message);
    rc = 1;
  }
  if (!report(true)) rc = 1;
  write_out(out);
  return rc;
}

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;  // no SA_RESTART: the ring poll returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// A trace command: the options to a kernel filter, then either the agent's
// /events or the tracer `start` loads, whose lines `fill` sets up.
template <class StartFn, class FillFn>
int on_demand_command(const TraceKind& k, const OnDemandTraceOptions& opts, StartFn start, FillFn fill) {
  catch_stop_signals();
  discovery::ProcFs proc;
  bpf::TraceConfig cfg;
  if (int rc = make_config(k, opts, proc, cfg); rc) return rc;
  if (!opts.agent.empty()) return follow_agent(k, opts, cfg);
  auto tracer = start(cfg, proc);
  if (!tracer) {
    fmt::print(stderr, "hvtel trace {}: {}\n", k.command, tracer.error().message);
    return 1;
  }
  kvm::VmmNamer names(proc);
  Standalone t;
  t.attach_summary = (*tracer)->attach_summary();
  t.counts = [&] { return (*tracer)->counts(); };
  fill(**tracer, cfg, names, now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC), t);
  return run_standalone(k, opts, cfg, t);
}

}  // namespace

bool keep_traced_event(const events::AgentEvent& e, std::string_view kind, const std::string& instance_id,
                       int vcpu, uint64_t min_latency_ns, bool only_vmm) {
  if (e.kind != kind) return true;
  if (!instance_id.empty() && e.instance_id != instance_id) return false;
  const auto& f = e.fields;
  if (vcpu >= 0 && f.value("vcpu", -1) != vcpu) return false;
  if (min_latency_ns && f.value("latency_ns", uint64_t{0}) < min_latency_ns) return false;
  if (only_vmm && (!f.contains("vmm_reason") || f["vmm_reason"].is_null())) return false;
  return true;
}

int cmd_trace_exits(const OnDemandTraceOptions& opts) {
  auto start = [](const bpf::TraceConfig& cfg, const discovery::ProcFs&) {
    return kvm::ExitTracer::start(cfg);
  };
  auto fill = [&](kvm::ExitTracer& tracer, const bpf::TraceConfig& cfg, kvm::VmmNamer& names,
                  int64_t wall_offset, Standalone& t) {
    t.poll = [&, wall_offset](int timeout_ms, uint64_t dropped, std::string& out) {
      return tracer.poll(timeout_ms, [&](const hv_trace_exit& e) {
        auto r = kvm::describe(e, names);
        if (!kvm::passes_vcpu_filter(r, opts.vcpu)) return;
        out += opts.json ? kvm::exit_json(r, wall_offset, dropped) : kvm::format_exit_line(r, wall_offset);
        out += '\n';
      });
    };
    t.drop_line = [&](const bpf::TraceCounts& c) { return kvm::format_drop_line(c, cfg); };
  };
  return on_demand_command({"exits", "exits", "exit"}, opts, start, fill);
}

int cmd_trace_runq(const OnDemandTraceOptions& opts) {
  auto start = [](const bpf::TraceConfig& cfg, const discovery::ProcFs& proc) {
    return kvm::RunqTracer::start(cfg, proc);
  };
  auto fill = [&](kvm::RunqTracer& tracer, const bpf::TraceConfig& cfg, kvm::VmmNamer& names,
                  int64_t wall_offset, Standalone& t) {
    t.poll = [&, wall_offset](int timeout_ms, uint64_t dropped, std::string& out) {
      return tracer.poll(timeout_ms, [&](const hv_trace_runq& e) {
        auto r = kvm::describe(e, names);
        out += opts.json ? kvm::runq_json(r, wall_offset, dropped) : kvm::format_runq_line(r, wall_offset);
        out += '\n';
      });
    };
    t.drop_line = [&](const bpf::TraceCounts& c) { return kvm::format_runq_drop_line(c, cfg); };
    // vCPU threads that appear later (a VMM started, a vCPU hot-plugged) are followed from the next period.
    t.every_period = [&]() -> Status {
      auto n = tracer.refresh();
      if (!n) return fail(n.error());
      return {};
    };
  };
  return on_demand_command({"runq", "runq", "runq"}, opts, start, fill);
}

int cmd_trace_upcalls(const OnDemandTraceOptions& opts) {
  // With --instance, the kernel filter is the VMM's taps: only its packets take tokens.
  auto start = [](const bpf::TraceConfig& cfg,
                  const discovery::ProcFs& proc) -> Result<std::unique_ptr<ovs_dp::UpcallTracer>> {
    std::optional<std::set<uint32_t>> taps;
    if (cfg.tgid) {
      taps = tap_ifindexes(proc, cfg.tgid);
      if (taps->empty())
        return fail(fmt::format("pid {} holds no tap (no /dev/net/tun fd with an interface)", cfg.tgid));
    }
    return ovs_dp::UpcallTracer::start(cfg, taps);
  };
  auto fill = [&](ovs_dp::UpcallTracer& tracer, const bpf::TraceConfig& cfg, kvm::VmmNamer& names,
                  int64_t wall_offset, Standalone& t) {
    static const discovery::ProcFs proc;
    auto owners = std::make_shared<TapOwners>(proc, names);
    auto namer = std::make_shared<ovs_dp::UpcallNamer>(
        std::make_shared<ovs_dp::NameCache>(std::make_unique<ovs_dp::SystemDatapathDirectory>()),
        [owners](const std::string& iface) { return owners->owner(iface); });
    t.poll = [&, namer, wall_offset](int timeout_ms, uint64_t dropped, std::string& out) {
      return tracer.poll(timeout_ms, [&](const hv_trace_upcall& e) {
        auto r = namer->describe(e);
        out += opts.json ? ovs_dp::upcall_json(r, wall_offset, dropped)
                         : ovs_dp::format_upcall_line(r, wall_offset);
        out += '\n';
      });
    };
    t.drop_line = [&](const bpf::TraceCounts& c) { return ovs_dp::format_upcall_drop_line(c, cfg); };
    // Taps the followed VMM adds later (a hot-plugged NIC) are followed from the next period.
    if (cfg.tgid) t.every_period = [&]() -> Status { return tracer.follow(tap_ifindexes(proc, cfg.tgid)); };
  };
  return on_demand_command({"upcalls", "upcalls", "upcall"}, opts, start, fill);
}

}  // namespace hvtel::app
