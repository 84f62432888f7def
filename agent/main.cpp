// hvtel: eBPF hypervisor telemetry agent. Subcommands: serve, status, selftest.
// This is the only place where an error becomes an exit code.
#include <CLI/CLI.hpp>
#include <signal.h>

#include "bpf/object.h"
#include "cli/serve.h"
#include "cli/status.h"
#include "hvtel/version.h"
#include "util/log.h"

int main(int argc, char** argv) {
  CLI::App app{"hvtel " HVTEL_VERSION ": eBPF telemetry for KVM hypervisors"};
  app.require_subcommand(1);
  std::string level = "info";
  app.add_option("--log-level", level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  hvtel::cli::ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "Serve Prometheus metrics");
  serve_cmd->add_option("--listen", serve.listen, "ADDR:PORT to serve /metrics on")
      ->capture_default_str();
  serve_cmd->add_flag("--per-vcpu", serve.per_vcpu, "Add a vcpu label to the exit counters");
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
  serve_cmd->add_option("--intruder-threshold-ms", serve.intruder_threshold_ms,
                        "Foreign time per tick on a dedicated pCPU that counts as an intrusion")
      ->capture_default_str();

  bool json = false;
  auto* status_cmd = app.add_subcommand("status", "What the kernel offers, and each probe's attach point");
  status_cmd->add_flag("--json", json, "JSON output");
  auto* selftest_cmd =
      app.add_subcommand("selftest", "Load and attach every BPF program variant on its own");
  selftest_cmd->add_flag("--json", json, "JSON output");

  CLI11_PARSE(app, argc, argv);
  // A write to a peer that went away (libvirtd, a scraper) must not kill the agent.
  signal(SIGPIPE, SIG_IGN);

  using hvtel::log::Level;
  hvtel::log::set_level(level == "debug" ? Level::kDebug
                        : level == "warn" ? Level::kWarn
                        : level == "error" ? Level::kError
                                           : Level::kInfo);
  hvtel::bpf::install_libbpf_logging();

  if (*serve_cmd) return hvtel::cli::cmd_serve(serve);
  if (*status_cmd) return hvtel::cli::cmd_status(json);
  if (*selftest_cmd) return hvtel::cli::cmd_selftest(json);
  return 2;
}
