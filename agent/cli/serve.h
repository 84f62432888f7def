// `hvtel serve`: load the probes, discover VMMs and serve /metrics.
#pragma once

#include <cstdint>
#include <string>

namespace hvtel::cli {

struct ServeOptions {
  std::string listen = "0.0.0.0:9477";
  bool per_vcpu = false;
  uint32_t max_vcpus = 1024;
  uint32_t poll_ms = 250;
  std::string nova_conf;   // Nova config with [compute] cpu_dedicated_set/cpu_shared_set
  std::string inventory;   // declarative pinning inventory (hosts without libvirt)
  uint32_t intruder_threshold_ms = 10;
  std::string libvirt_uri = "qemu:///system";  // empty: no libvirt
};

int cmd_serve(const ServeOptions& opts);

}  // namespace hvtel::cli
