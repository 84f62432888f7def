// PinningMonitor: the agent-side pinning pipeline in one object, for main()
// to own. load() reads nova.conf, the inventory and the host topology;
// reconcile() runs once per second on the discovery snapshot:
//   apply inventory -> resolve intent -> static checks -> registry.
// reconcile() and load() must be called from one thread (the agent loop);
// registry() is shared with the scrape handler, the BPF reader and the CLI,
// which may use it from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/model/instance.h"
#include "base/util/files.h"
#include "base/util/result.h"
#include "pinning/host_policy.h"
#include "pinning/intent.h"
#include "pinning/inventory.h"
#include "pinning/siblings.h"
#include "pinning/stacking.h"
#include "pinning/static_checks.h"
#include "pinning/violations.h"

namespace hvtel::pinning {

struct MonitorConfig {
  std::string nova_conf_path;  // --nova-conf; empty: no Nova policy
  std::string inventory_path;  // --inventory; empty: no inventory
  std::string sysfs_root = "/sys";
  std::string proc_root = "/proc";
  std::string cgroup_root = "/sys/fs/cgroup";
  CheckOptions checks;
  RegistryOptions registry;
};

class PinningMonitor {
 public:
  explicit PinningMonitor(MonitorConfig config);

  // (Re)loads nova.conf, the inventory and the topology. A file that fails is
  // logged, counted in hvtel_pinning_config_errors_total{source} and the last
  // good version (initially: none) stays in use. Returns the first error.
  Status load();
  // Whether nova.conf or the inventory changed on disk (content, replacement,
  // deletion) since the last load() and has settled: it reads the same as at
  // the previous call, so a file still being written is not loaded half-way.
  // stat only, cheap enough for every poll.
  bool config_changed();

  // One pass. Fills `intent` of instances the inventory matches, then checks.
  // Returns the resolved intents of the tracked instances; the kernel side
  // builds its pin bitmaps from ResolvedIntent::threads and ::dedicated.
  // vcpu_run (the sched probes' hv_sched: last pCPU, run-queue wait) enables
  // PV10 and PV11; without it those classes are not checked.
  const std::vector<ResolvedIntent>& reconcile(std::vector<model::Instance>& instances,
                                               const VcpuRunFn& vcpu_run = {});

  std::shared_ptr<ViolationRegistry> registry() const { return registry_; }
  const HostPolicy& host_policy() const { return policy_; }
  const HostTopology& topology() const { return topology_; }
  const std::vector<ResolvedIntent>& intents() const { return intents_; }

  // Tests inject a fake; the default reads config.proc_root/cgroup_root.
  void set_placement_reader(std::unique_ptr<PlacementReader> reader);

 private:
  void log_changes(const InventoryApplyReport& report);

  MonitorConfig config_;
  std::shared_ptr<ViolationRegistry> registry_;
  std::unique_ptr<PlacementReader> reader_;
  HostPolicy policy_;
  HostTopology topology_;
  std::optional<Inventory> inventory_;
  std::vector<ResolvedIntent> intents_;
  std::vector<std::string> last_report_;  // inventory messages already logged
  bool cpu_read_failed_ = false;          // the online-CPU read failed (logged once)
  bool numa_read_failed_ = false;         // a node cpulist was malformed (logged once)
  bool stat_read_failed_ = false;         // /proc/stat unreadable or malformed (logged once)
  StackingDetector stacking_;             // PV10, judged once a second
  SiblingBusyDetector siblings_;          // PV9's run-time part, judged once a second
  FileWatch watch_;                       // nova.conf and the inventory, as of the last load()
};

}  // namespace hvtel::pinning
