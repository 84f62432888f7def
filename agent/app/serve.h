// `hvtel serve`: load the probes, discover VMMs and serve /metrics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hvtel::app {

struct ServeOptions {
  std::string listen = "0.0.0.0:9477";  // --web.listen-address
  std::string web_config_file;         // TLS and basic auth (exporter-toolkit format)
  std::string telemetry_path = "/metrics";
  uint32_t web_max_connections = 512;  // open /metrics connections; more are refused
  bool per_vcpu = false;               // per-vCPU exit and scheduling counters
  // Exit-handling histograms per instance (else per host): 4 x 16 series per instance.
  bool exit_handling_per_instance = false;
  // --metrics-disable: metric names or groups (base/metrics/catalog.h kGroups) not rendered nor read.
  std::vector<std::string> metrics_disable;
  // Pinning series of every class at 0 from the start (else from a class's first violation).
  bool pinning_zero_series = false;
  uint32_t max_vcpus = 1024;
  uint32_t poll_ms = 250;
  std::string nova_conf;   // Nova config with [compute] cpu_dedicated_set/cpu_shared_set
  std::string inventory;   // declarative pinning inventory (hosts without libvirt)
  uint32_t intruder_threshold_ms = 10;
  uint32_t ovs_module_reprobe_s = 30;
  std::string libvirt_uri = "qemu:///system";  // empty: no libvirt
  std::string ovs_rundir = "/var/run/openvswitch";  // <bridge>.mgmt (and db.sock by default)
  std::string ovsdb_sock;                           // empty: <ovs_rundir>/db.sock
  std::string events_listen = "127.0.0.1:9478";  // /events for hvtel trace; empty: off
  // Hosts without kvm_entry (PVM): VMM-handling time is sampled, a window every period.
  uint32_t vmm_timing_window_ms = 500;
  uint32_t vmm_timing_period_ms = 10000;  // 0: time every exit
};

int cmd_serve(const ServeOptions& opts);

}  // namespace hvtel::app
