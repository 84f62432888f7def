#include "app/trace_exits.h"

#include <fmt/core.h>
#include <signal.h>
#include <time.h>

#include <cstdio>

#include "cli/trace.h"
#include "discovery/procfs.h"

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

int follow_agent(const TraceExitsOptions& opts, const kvm::ExitTraceConfig& cfg) {
  cli::TraceOptions t;
  t.agent = opts.agent;
  t.source = "exits";
  t.json = opts.json;
  std::string instance_id;
  if (!opts.instance.empty()) {
    // A name or pid is resolved here, on the agent's host. Filtered here, not
    // by the agent: its status events (attached, drops) belong to no instance.
    discovery::ProcFs proc;
    kvm::ExitNamer names(proc);
    instance_id = names.instance(cfg.tgid).instance_id;
  }
  t.keep = [id = instance_id, vcpu = opts.vcpu, min = cfg.min_latency_ns, only = opts.only_vmm](
               const events::AgentEvent& e) { return keep_agent_exit(e, id, vcpu, min, only); };
  return cli::cmd_trace(t);
}

}  // namespace

bool keep_agent_exit(const events::AgentEvent& e, const std::string& instance_id, int vcpu,
                     uint64_t min_latency_ns, bool only_vmm) {
  if (e.kind != "exit") return true;
  if (!instance_id.empty() && e.instance_id != instance_id) return false;
  const auto& f = e.fields;
  if (vcpu >= 0 && f.value("vcpu", -1) != vcpu) return false;
  if (min_latency_ns && f.value("latency_ns", uint64_t{0}) < min_latency_ns) return false;
  if (only_vmm && (!f.contains("vmm_reason") || f["vmm_reason"].is_null())) return false;
  return true;
}

int cmd_trace_exits(const TraceExitsOptions& opts) {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;  // no SA_RESTART: the ring poll returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  discovery::ProcFs proc;
  kvm::ExitTraceConfig cfg;
  cfg.vcpu = opts.vcpu;
  cfg.rate = opts.rate;
  cfg.burst = opts.burst;
  cfg.only_user = opts.only_vmm;
  if (!opts.min_latency.empty()) {
    auto d = kvm::parse_duration_ns(opts.min_latency);
    if (!d) {
      fmt::print(stderr, "hvtel trace exits: --min-latency: {}\n", d.error().message);
      return 2;
    }
    cfg.min_latency_ns = *d;
  }
  if (!opts.instance.empty()) {
    auto pid = kvm::find_vmm(proc, opts.instance);
    if (!pid) {
      fmt::print(stderr, "hvtel trace exits: {}\n", pid.error().message);
      return 1;
    }
    cfg.tgid = *pid;
  }
  if (!opts.agent.empty()) return follow_agent(opts, cfg);
  auto tracer = kvm::ExitTracer::start(cfg);
  if (!tracer) {
    fmt::print(stderr, "hvtel trace exits: {}\n", tracer.error().message);
    return 1;
  }
  kvm::ExitNamer names(proc);
  fmt::print(stderr, "hvtel trace exits: tracing {} ({}), {}; Ctrl-C to stop\n",
             cfg.tgid ? fmt::format("pid {}", cfg.tgid) : std::string("every VMM"),
             (*tracer)->attach_summary(),
             cfg.rate ? fmt::format("at most {}/s per CPU, burst {}", cfg.rate, cfg.burst)
                      : std::string("no rate limit"));
  fflush(stderr);

  const int64_t wall_offset = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
  kvm::ExitTraceCounts last;
  std::string out;
  auto on_event = [&](const hv_trace_exit& e) {
    auto r = kvm::describe(e, names);
    if (!kvm::passes_vcpu_filter(r, opts.vcpu)) return;
    out += opts.json ? kvm::exit_json(r, wall_offset, last.dropped()) : kvm::format_exit_line(r, wall_offset);
    out += '\n';
  };
  // Counters are read once per period: a drop line only when something new was dropped.
  auto report = [&](bool closing) -> bool {
    auto c = (*tracer)->counts();
    if (!c) {
      fmt::print(stderr, "hvtel trace exits: {}\n", c.error().message);
      return false;
    }
    bool changed = c->dropped() != last.dropped() || c->untimed != last.untimed;
    last = *c;
    if (closing || changed)
      out += (opts.json ? kvm::drops_json(last, closing ? "summary" : "drops")
                        : kvm::format_drop_line(last, cfg)) +
             "\n";
    return true;
  };
  const int64_t period = static_cast<int64_t>(opts.stats_interval_s * 1e9);
  int64_t next_report = now_ns(CLOCK_MONOTONIC) + period;
  int rc = 0;
  while (!g_stop) {
    if (auto st = (*tracer)->poll(200, on_event); !st) {
      fmt::print(stderr, "hvtel trace exits: {}\n", st.error().message);
      rc = 1;
      break;
    }
    if (now_ns(CLOCK_MONOTONIC) >= next_report) {
      next_report += period;
      if (!report(false)) rc = 1;
      // The followed VMM is gone: nothing more can come.
      if (cfg.tgid && kill(cfg.tgid, 0) != 0 && errno == ESRCH) g_stop = 1;
    }
    if (!out.empty()) {
      write_out(out);
      out.clear();
    }
  }
  // Drain what the kernel wrote before the stop, then the closing line.
  if (auto st = (*tracer)->poll(0, on_event); !st) {
    fmt::print(stderr, "hvtel trace exits: {}\n", st.error().message);
    rc = 1;
  }
  if (!report(true)) rc = 1;
  write_out(out);
  return rc;
}

}  // namespace hvtel::app
