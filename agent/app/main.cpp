// hvtel: eBPF hypervisor telemetry agent. Subcommands: serve, status, selftest, trace, top.
// This is the only place where an error becomes an exit code.
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <signal.h>

#include "app/serve.h"
#include "app/status.h"
#include "app/trace_exits.h"
#include "base/bpf/object.h"
#include "base/metrics/selection.h"
#include "base/util/log.h"
#include "cli/top.h"
#include "cli/trace.h"
#include "hvtel/version.h"

int main(int argc, char** argv) {
  CLI::App app{"hvtel " HVTEL_VERSION ": eBPF telemetry for KVM hypervisors"};
  app.set_version_flag("--version", "hvtel " HVTEL_VERSION);
  app.require_subcommand(1);
  std::string level = "info";
  app.add_option("--log-level", level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  hvtel::app::ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "Serve Prometheus metrics");
  serve_cmd->add_option("--web.listen-address,--listen", serve.listen,
                        "ADDR:PORT (or :PORT) to serve /metrics on")
      ->capture_default_str();
  serve_cmd->add_option("--web.config.file", serve.web_config_file,
                        "TLS and basic-auth configuration (exporter-toolkit format), "
                        "reloaded on change and on SIGHUP");
  serve_cmd->add_option("--web.telemetry-path", serve.telemetry_path, "Path under which to expose metrics")
      ->check([](const std::string& p) { return p.size() > 1 && p[0] == '/' ? "" : "must start with / (not /)"; })
      ->capture_default_str();
  serve_cmd->add_option("--web.max-connections", serve.web_max_connections,
                        "Open /metrics connections; more are refused until one closes")
      ->check(CLI::Range(4u, 4096u))
      ->capture_default_str();
  serve_cmd->add_flag("--per-vcpu", serve.per_vcpu,
                      "Exit and scheduling counters per vCPU (a vcpu label) instead of per instance");
  serve_cmd->add_flag("--exit-handling-per-instance", serve.exit_handling_per_instance,
                      "hvtel_vcpu_exit_handling_seconds per instance and class instead of per class "
                      "for the host (up to 64 more series per instance)");
  serve_cmd->add_flag("--pinning-zero-series", serve.pinning_zero_series,
                      "Pinning violation series of every class at 0 for every instance from the start (25 "
                      "series per instance) instead of from a class's first violation");
  serve_cmd
      ->add_option("--metrics-disable", serve.metrics_disable,
                   "Neither read nor render this metric family (a name from docs/metrics.md, or a "
                   "group: exits, exit_latency, sched, bpf_stats, ovs_datapath, process); repeatable")
      ->check([](const std::string& name) {
        auto s = hvtel::metrics::Selection::disable({name});
        return s ? std::string() : s.error().message;
      });
  serve_cmd->add_option("--max-vcpus", serve.max_vcpus, "vCPU slots in the kernel maps")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  serve_cmd->add_option("--poll-interval-ms", serve.poll_ms, "Discovery poll interval")
      ->check(CLI::Range(10u, 10000u))
      ->capture_default_str();
  serve_cmd->add_option("--nova-conf", serve.nova_conf,
                        "Nova config file: [compute] cpu_dedicated_set / cpu_shared_set");
  serve_cmd->add_option("--inventory", serve.inventory,
                        "Pinning inventory (YAML) for VMMs without libvirt");
  serve_cmd->add_option("--libvirt-uri", serve.libvirt_uri,
                        "libvirt URI (read-only connection); empty to disable")
      ->capture_default_str();
  serve_cmd->add_option("--ovs-rundir", serve.ovs_rundir,
                        "Open vSwitch run directory (<bridge>.mgmt, db.sock)")
      ->capture_default_str();
  serve_cmd->add_option("--ovsdb-sock", serve.ovsdb_sock,
                        "OVSDB unix socket (default <ovs-rundir>/db.sock)");
  serve_cmd->add_option("--ovs-module-reprobe-s", serve.ovs_module_reprobe_s,
                        "Retry the openvswitch datapath probes this often while the module is absent")
      ->check(CLI::Range(1u, 3600u))
      ->capture_default_str();
  serve_cmd->add_option("--intruder-threshold-ms", serve.intruder_threshold_ms,
                        "Foreign time per tick on a dedicated pCPU that counts as an intrusion")
      ->capture_default_str();
  serve_cmd->add_option("--vmm-timing-window-ms", serve.vmm_timing_window_ms,
                        "Hosts without kvm_entry (PVM): time exits to the VMM during windows this long")
      ->check(CLI::Range(1u, 3600000u))
      ->capture_default_str();
  serve_cmd->add_option("--vmm-timing-period-ms", serve.vmm_timing_period_ms,
                        "... one window every this often; 0 times every exit (two more tracepoint "
                        "hits per exit to the VMM there)")
      ->capture_default_str();
  serve_cmd->add_option("--events-listen", serve.events_listen,
                        "ADDR:PORT of /events for hvtel trace (keep it loopback); empty to disable")
      ->capture_default_str();

  bool json = false;
  auto* status_cmd = app.add_subcommand("status", "What the kernel offers, and each probe's attach point");
  status_cmd->add_flag("--json", json, "JSON output");
  auto* selftest_cmd =
      app.add_subcommand("selftest", "Load and attach every BPF program variant on its own");
  selftest_cmd->add_flag("--json", json, "JSON output");

  hvtel::cli::TraceOptions trace;
  auto* trace_cmd = app.add_subcommand("trace", "Follow the running agent's live events");
  trace_cmd->add_option("--agent", trace.agent, "The agent's --events-listen ADDR:PORT")
      ->capture_default_str();
  trace_cmd->add_option("--source", trace.source, "Only events of this source")
      ->check(CLI::IsMember({"pinning", "ovs"}));
  trace_cmd->add_option("--instance", trace.instance, "Only events of this instance_id");
  trace_cmd->add_flag("--json", trace.json, "One JSON object per event");
  trace_cmd->add_flag("--from-start", trace.from_start, "Replay the agent's event ring first");
  trace_cmd->require_subcommand(0, 1);

  // The options `trace exits` and `trace runq` share; `what` is what one event is.
  auto on_demand = [&](const char* name, const char* help, const char* what,
                       hvtel::app::OnDemandTraceOptions& o, bool per_vcpu = true) {
    auto* cmd = trace_cmd->add_subcommand(name, help);
    cmd->add_option("--instance", o.instance, "Only this VMM: instance id, name or pid");
    if (per_vcpu) {
      cmd->add_option("--vcpu", o.vcpu, "Only this vCPU index")->check(CLI::Range(0, 65535));
      cmd->add_option(
          "--min-latency", o.min_latency,
          fmt::format("Only {} that took at least this long (250us, 1ms; bare numbers are ns)", what));
    }
    cmd->add_option("--rate", o.rate, "At most this many events per second per CPU, 0 unlimited")
        ->capture_default_str();
    cmd->add_option("--burst", o.burst, "Token-bucket depth of the rate limit")
        ->check(CLI::Range(uint64_t{1}, uint64_t{HV_TRACE_MAX_BURST}))
        ->capture_default_str();
    cmd->add_flag("--json", o.json, fmt::format("NDJSON: one object per {}, drop reports and a summary", what));
    cmd->add_option("--agent", o.agent,
                    "Follow the running agent's /events (ADDR:PORT of its --events-listen) instead "
                    "of loading the BPF program here; the agent loads it while followed");
    cmd->add_option("--stats-interval", o.stats_interval_s, "Seconds between drop reports")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    return cmd;
  };
  hvtel::app::OnDemandTraceOptions exits, runq, upcalls;
  auto* exits_cmd = on_demand(
      "exits", "One line per VM exit; loads its own BPF program while it runs (no agent needed)", "exits", exits);
  exits_cmd->add_flag("--to-vmm", exits.only_vmm, "Only exits handed to the VMM (KVM_RUN returned)");
  auto* runq_cmd = on_demand("runq",
                             "One line per run-queue wait of a vCPU thread (wakeup or preemption to on-CPU); "
                             "loads its own BPF program while it runs (no agent needed)",
                             "waits", runq);
  auto* upcalls_cmd =
      on_demand("upcalls",
                "One line per upcall of the Open vSwitch kernel datapath (a packet no megaflow "
                "matched); --instance: only packets from that VMM's taps; loads its own BPF "
                "program while it runs (no agent needed)",
                "upcalls", upcalls, false);

  hvtel::cli::TopOptions top;
  auto* top_cmd = app.add_subcommand("top", "Per-instance rates from the running agent's /metrics");
  top_cmd->add_option("--agent-metrics", top.agent_metrics, "The agent's --listen ADDR:PORT")
      ->capture_default_str();
  top_cmd->add_option("--interval", top.interval_s, "Seconds between scrapes")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  top_cmd->add_flag("--once", top.once, "Print one table (or JSON document) after one interval and exit");
  top_cmd
      ->add_option("--sort", top.sort,
                   "Sort column; on a terminal its key letter changes it live (e, u, w, l, m, v, n; "
                   "r reverses, q quits)")
      ->check(CLI::IsMember({"exits", "vmm_exits", "wait", "rq", "vmm", "violations", "name"}))
      ->capture_default_str();
  top_cmd->add_flag("--reverse", top.reverse, "Reverse the sort order");
  top_cmd->add_option("--instance", top.instance,
                      "Only this instance: its instance_id, Nova display name or libvirt domain");
  top_cmd->add_flag("--json", top.json, "One JSON document per refresh (NDJSON)");

  CLI11_PARSE(app, argc, argv);
  // A write to a peer that went away (libvirtd, a scraper) must not kill the agent.
  signal(SIGPIPE, SIG_IGN);

  using hvtel::log::Level;
  hvtel::log::set_level(level == "debug" ? Level::kDebug
                        : level == "warn" ? Level::kWarn
                        : level == "error" ? Level::kError
                                           : Level::kInfo);
  hvtel::bpf::install_libbpf_logging();

  if (*serve_cmd) return hvtel::app::cmd_serve(serve);
  if (*status_cmd) return hvtel::app::cmd_status(json);
  if (*exits_cmd) return hvtel::app::cmd_trace_exits(exits);
  if (*runq_cmd) return hvtel::app::cmd_trace_runq(runq);
  if (*upcalls_cmd) return hvtel::app::cmd_trace_upcalls(upcalls);
  if (*trace_cmd) return hvtel::cli::cmd_trace(trace);
  if (*top_cmd) return hvtel::cli::cmd_top(top);
  if (*selftest_cmd) return hvtel::app::cmd_selftest(json);
  return 2;
}
