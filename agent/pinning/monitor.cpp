#include "pinning/monitor.h"

#include <algorithm>

#include "base/util/log.h"

namespace hvtel::pinning {

PinningMonitor::PinningMonitor(MonitorConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<ViolationRegistry>(config_.registry)),
      reader_(std::make_unique<ProcPlacementReader>(config_.proc_root, config_.cgroup_root)) {}

void PinningMonitor::set_placement_reader(std::unique_ptr<PlacementReader> reader) {
  reader_ = std::move(reader);
}

Status PinningMonitor::load() {
  Status first;
  auto keep_first = [&](const Error& e) {
    if (first) first = fail(e);
  };

  std::vector<std::string> files;
  for (const auto* p : {&config_.nova_conf_path, &config_.inventory_path})
    if (!p->empty()) files.push_back(*p);
  watch_.loaded(files);

  if (auto topo = read_host_topology(config_.sysfs_root)) {
    topology_ = std::move(*topo);
  } else {
    log::warn("pinning", "{}; undeclared threads are not checked", topo.error().message);
  }

  if (!config_.nova_conf_path.empty()) {
    if (auto p = load_nova_conf(config_.nova_conf_path)) {
      policy_ = std::move(*p);
      for (const auto& w : policy_.warnings) log::warn("pinning", "nova.conf: {}", w);
      for (const auto& w : check_policy_against_topology(policy_, topology_)) {
        log::warn("pinning", "nova.conf: {}", w);
      }
    } else {
      registry_->note_config_error(kSourceNovaConf);
      log::error("pinning", "{}; keeping the previous CPU policy", p.error().message);
      keep_first(p.error());
    }
  }

  if (!config_.inventory_path.empty()) {
    if (auto inv = load_inventory(config_.inventory_path)) {
      log::info("pinning", "inventory {}: {} VMM entries", config_.inventory_path,
                inv->entries.size());
      inventory_ = std::move(*inv);
      last_report_.clear();
    } else {
      registry_->note_config_error(kSourceInventory);
      log::error("pinning", "{}; keeping the previous inventory", inv.error().message);
      keep_first(inv.error());
    }
  }
  return first;
}

bool PinningMonitor::config_changed() { return watch_.changed(); }

void PinningMonitor::log_changes(const InventoryApplyReport& report) {
  std::vector<std::string> lines;
  for (const auto& u : report.unmatched) lines.push_back("entry matches no running VMM: " + u);
  for (const auto& c : report.conflicts) lines.push_back(c);
  for (const auto& w : report.warnings) lines.push_back(w);
  if (lines == last_report_) return;  // log a situation once, not every second
  for (const auto& l : lines) log::warn("pinning", "inventory: {}", l);
  last_report_ = std::move(lines);
}

const std::vector<ResolvedIntent>& PinningMonitor::reconcile(std::vector<model::Instance>& instances,
                                                             const VcpuRunFn& vcpu_run) {
  if (inventory_) log_changes(apply_inventory(*inventory_, instances));
  intents_ = resolve_intents(instances, policy_, topology_.online);
  auto findings =
      run_static_checks(intents_, policy_, topology_.online, *reader_, config_.checks);
  auto pv9 = check_thread_policy(intents_, policy_, topology_.siblings);
  findings.insert(findings.end(), pv9.begin(), pv9.end());
  std::vector<int> dedicated;
  for (const auto& r : intents_) dedicated.insert(dedicated.end(), r.dedicated.begin(), r.dedicated.end());
  if (!dedicated.empty()) {
    if (auto cpus = read_cpu_availability(config_.sysfs_root, dedicated)) {
      auto pv13 = check_pinned_cpu_unavailable(intents_, *cpus);
      findings.insert(findings.end(), pv13.begin(), pv13.end());
      cpu_read_failed_ = false;
    } else if (!cpu_read_failed_) {  // logged once per outage; PV13 reads as clear meanwhile
      log::warn("pinning", "{}; pinned_cpu_unavailable not checked", cpus.error().message);
      cpu_read_failed_ = true;
    }
  }
  bool numa = std::ranges::any_of(intents_, [](const ResolvedIntent& r) {
    return std::ranges::any_of(r.threads, [](const ThreadIntent& t) { return !t.numa_nodes.empty(); });
  });
  if (numa && vcpu_run) {
    LastCpuFn last_cpu = [&](pid_t tid) -> std::optional<int> {
      auto r = vcpu_run(tid);
      return r ? std::optional<int>(r->cpu) : std::nullopt;
    };
    if (auto nodes = read_numa_nodes(config_.sysfs_root)) {
      auto pv11 = check_numa_misplaced(intents_, *nodes, last_cpu);
      findings.insert(findings.end(), pv11.begin(), pv11.end());
      numa_read_failed_ = false;
    } else if (!numa_read_failed_) {
      log::warn("pinning", "{}; numa_misplaced not checked", nodes.error().message);
      numa_read_failed_ = true;
    }
  }
  // PV10 and PV9's run-time part: judged once a second from one /proc/stat read (every pCPU's idle
  // time) and, for PV10, every floating vCPU's wait; the reconciles in between keep the last judgement.
  bool floating = vcpu_run && std::ranges::any_of(intents_, [](const ResolvedIntent& r) {
                    return std::ranges::count_if(
                               r.threads, [&](const ThreadIntent& t) { return is_floating_vcpu(r, t); }) > 1;
                  });
  bool isolate = SiblingBusyDetector::applies(intents_, topology_.siblings);
  if (floating || isolate) {
    const uint64_t now = config_.registry.clock ? config_.registry.clock() : monotonic_ns();
    const bool stack_due = floating && stacking_.due(now), sibs_due = isolate && siblings_.due(now);
    std::optional<std::map<int, CpuTimes>> times;
    if (stack_due || sibs_due) {
      if (auto t = read_cpu_times(config_.proc_root)) {
        times = std::move(*t);
        stat_read_failed_ = false;
      } else if (!stat_read_failed_) {
        log::warn("pinning", "{}; floating_stacking and thread_policy's busy siblings not checked",
                  t.error().message);
        stat_read_failed_ = true;
      }
    }
    std::vector<Finding> judged;
    if (floating) {
      judged = !stack_due ? stacking_.held(intents_)
               : times    ? stacking_.sample(intents_, vcpu_run, *times, now)
                          : std::vector<Finding>{};
    }
    if (isolate) {
      auto busy = !sibs_due ? siblings_.held(intents_)
                  : times   ? siblings_.sample(intents_, topology_.siblings, *times, now)
                            : std::vector<Finding>{};
      judged.insert(judged.end(), busy.begin(), busy.end());
    }
    findings.insert(findings.end(), judged.begin(), judged.end());
  }
  std::vector<std::string> tracked;
  tracked.reserve(intents_.size());
  for (const auto& r : intents_) tracked.push_back(r.instance_id);
  registry_->reconcile(tracked, findings);
  return intents_;
}

}  // namespace hvtel::pinning
