#include "app/serve.h"

#include <fmt/ranges.h>
#include <prometheus/collectable.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "app/agent_collector.h"
#include "app/exit_trace_source.h"
#include "app/ovs_events.h"
#include "app/probe_set.h"
#include "base/bpf/kernel.h"
#include "base/bpf/object.h"
#include "base/bpf/vcpu_maps.h"
#include "base/metrics/process_collector.h"
#include "base/metrics/selection.h"
#include "base/util/caps.h"
#include "base/util/log.h"
#include "base/util/strings.h"
#include "base/web/web_server.h"
#include "discovery/procfs.h"
#include "discovery/vcpu_tracker.h"
#include "events/event_hub.h"
#include "events/event_server.h"
#include "events/pinning_source.h"
#include "kvm/exit_collector.h"
#include "kvm/exit_probes.h"
#include "kvm/vmm_timing.h"
#include "libvirt/libvirt_client.h"
#include "libvirt/libvirt_collector.h"
#include "ovs/datapath/datapath_names.h"
#include "ovs/datapath/ovs_dp_collector.h"
#include "ovs/service/ovs_service.h"
#include "pinning/monitor.h"
#include "sched/pin_sync.h"
#include "sched/sched_collector.h"

namespace hvtel::app {
namespace {

// One serving agent: its parts in start-up order (destroyed in reverse), each
// wired to the others in the start_* step that owns it.
class Agent {
 public:
  Agent(const ServeOptions& opts, metrics::Selection selection)
      : opts_(opts), selection_(std::move(selection)) {}
  bool start();
  void run(const sigset_t& signals);
  void stop();

 private:
  void start_libvirt();
  void start_ovs();
  void add_kernel_collectors();
  void add_instance_collectors();
  void start_events();
  void drop_privileges();
  void reload_config(const char* why);
  void poll();
  // Every collector's output without the families --metrics-disable names
  // (the map-reading ones also skip the reads).
  std::shared_ptr<prometheus::Collectable> filtered(std::shared_ptr<prometheus::Collectable> c) const {
    if (selection_.disabled().empty()) return c;
    return std::make_shared<metrics::Filtered>(std::move(c), selection_);
  }

  const ServeOptions& opts_;
  metrics::Selection selection_;  // --metrics-disable
  // The kernel's BTF, parsed once for start-up (5-6 MB of heap): dropped once every probe is loaded.
  // What loads later (the OVS module's probes, on-demand tracers) parses its own.
  std::optional<bpf::KernelBtf> btf_;
  std::unique_ptr<ProbeSet> probes_;
  discovery::ProcFs proc_;
  std::unique_ptr<discovery::VcpuTracker> tracker_;
  std::unique_ptr<pinning::PinningMonitor> pin_monitor_;
  // libvirt: identity (Nova UUID and names) and intent for the VMMs it runs.
  std::atomic<bool> libvirt_changed_{false};
  std::unique_ptr<libvirt::LibvirtClient> lv_;
  std::optional<std::vector<int>> libvirt_dedicated_set_;  // what lv_ infers policies against
  std::shared_ptr<libvirt::LibvirtCollector> lv_collector_;
  std::unique_ptr<ovs_service::OvsService> ovs_;
  std::unique_ptr<sched::PinSync> pin_sync_;
  std::unique_ptr<web::MetricsServer> web_;
  std::unique_ptr<kvm::VmmTimingSampler> vmm_sampler_;
  // The exposer keeps weak_ptrs: the collectors live here.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectors_;
  events::EventHub event_hub_;
  std::unique_ptr<events::EventServer> event_server_;
  bool module_pending_ = false;  // openvswitch.ko not loaded yet: keep what attaching it needs
  std::chrono::steady_clock::time_point next_poll_;
};

bool Agent::start() {
  btf_.emplace();
  auto probes =
      ProbeSet::load({.max_vcpus = opts_.max_vcpus, .ovs_reprobe_s = opts_.ovs_module_reprobe_s}, *btf_);
  if (!probes) {
    log::error("serve", "{}", probes.error().message);
    return false;
  }
  probes_ = std::move(*probes);
  for (const auto& p : probes_->probes()) {
    if (p.attached)
      log::info("serve", "probe {} attached via {}", p.probe, bpf::attach_name(*p.attach));
    else
      log::warn("serve", "probe {} not attached: {}", p.probe, p.reason);
  }
  tracker_ = std::make_unique<discovery::VcpuTracker>(probes_->maps(), proc_);

  pinning::MonitorConfig pin_cfg;
  pin_cfg.nova_conf_path = opts_.nova_conf;
  pin_cfg.inventory_path = opts_.inventory;
  pin_cfg.registry.zero_series = opts_.pinning_zero_series;
  pin_monitor_ = std::make_unique<pinning::PinningMonitor>(pin_cfg);
  if (auto st = pin_monitor_->load(); !st) log::warn("serve", "pinning: {}", st.error().message);
  if (!opts_.libvirt_uri.empty()) start_libvirt();
  start_ovs();
  if (probes_->sched()) {
    pin_sync_ = std::make_unique<sched::PinSync>(
        *tracker_, probes_->maps(), *pin_monitor_,
        sched::PinSyncOptions{.intruder_threshold_ns = uint64_t{opts_.intruder_threshold_ms} * 1000000});
    if (lv_) {
      libvirt::LibvirtClient* client = lv_.get();
      pin_sync_->set_intent_source([client] { return client->snapshot()->instances; });
    }
  }

  auto web = web::MetricsServer::start({.listen = opts_.listen,
                                        .config_file = opts_.web_config_file,
                                        .telemetry_path = opts_.telemetry_path,
                                        .max_connections = opts_.web_max_connections});
  if (!web) {
    log::error("serve", "{}", web.error().message);
    return false;
  }
  web_ = std::move(*web);
  add_kernel_collectors();
  add_instance_collectors();
  start_events();
  module_pending_ = probes_->ovs_dp() && !probes_->ovs_dp()->loaded();
  btf_.reset();
  drop_privileges();
  return true;
}

void Agent::start_libvirt() {
  libvirt::ClientOptions lv_opts;
  lv_opts.uri = opts_.libvirt_uri;
  // Pre-Flamingo Nova metadata has no hw:cpu_policy: infer it against this set.
  lv_opts.dedicated_set = libvirt_dedicated_set_ = pin_monitor_->host_policy().cpu_dedicated_set;
  lv_ = std::make_unique<libvirt::LibvirtClient>(lv_opts);
  discovery::VcpuTracker* tracker = tracker_.get();
  lv_->set_change_callback([this, tracker](const libvirt::SnapshotPtr&) {
    tracker->refresh_identities();
    libvirt_changed_ = true;  // a restarted libvirtd: re-read the affinity allow-list
  });
  // A pin changed through libvirt (virsh vcpupin, tuning tools): PV12.
  auto registry = pin_monitor_->registry();
  lv_->set_pin_change_callback([registry](const libvirt::PinChangeEvent& e) {
    registry->add_kernel_counts(e.instance_id, pinning::ViolationClass::kPinChanged, 1, 0);
    pinning::ViolationEvent ev;
    ev.kind = pinning::EventKind::kKernel;
    ev.instance_id = e.instance_id;
    ev.cls = pinning::ViolationClass::kPinChanged;
    ev.vcpu = e.index;
    ev.detail = "libvirt " + e.param + "=" + format_cpu_list(e.cpus);
    registry->publish(std::move(ev));
  });
  if (auto st = lv_->start(); !st) {
    log::error("serve", "libvirt: {}", st.error().message);
    lv_.reset();
    return;
  }
  libvirt::LibvirtClient* client = lv_.get();
  tracker_->set_identity_lookup([client](pid_t pid) -> std::optional<model::Instance> {
    auto snap = client->snapshot();
    for (const auto& i : snap->instances)
      if (i.pid == pid) return i;
    return std::nullopt;
  });
  tracker_->set_known_vmms([client] { return client->snapshot()->instances; });
  lv_collector_ = std::make_shared<libvirt::LibvirtCollector>(*lv_);
}

// Open vSwitch: OVSDB port model, per-bridge OpenFlow monitors, dirty-flow
// rules. Without OVS it stays idle (hvtel_ovsdb_up 0) and keeps retrying.
void Agent::start_ovs() {
  ovs_service::OvsServiceOptions ovs_opts;
  ovs_opts.rundir = opts_.ovs_rundir;
  ovs_opts.ovsdb_socket = opts_.ovsdb_sock;
  ovs_ = std::make_unique<ovs_service::OvsService>(ovs_opts);
  if (lv_) {
    libvirt::LibvirtClient* client = lv_.get();
    ovs_->set_libvirt_source([client] { return client->snapshot()->instances; },
                             [client] { return client->up(); });
  }
  if (auto st = ovs_->start(); !st) {
    log::error("serve", "ovs: {}", st.error().message);
    ovs_.reset();
  }
}

// Exits, scheduling, the agent's own metrics and the OVS datapath: read from
// the kernel's maps at scrape time.
void Agent::add_kernel_collectors() {
  bpf::KernelVcpuMaps& maps = probes_->maps();
  auto exit_collector = std::make_shared<kvm::ExitCollector>(
      *tracker_, maps,
      kvm::ExitSeries{.per_vcpu = opts_.per_vcpu,
                      .handling_per_instance = opts_.exit_handling_per_instance,
                      .selection = selection_});
  if (kvm::MarkerControl* marker = probes_->kvm_run_marker()) {
    vmm_sampler_ = std::make_unique<kvm::VmmTimingSampler>(
        *marker, kvm::VmmTimingOptions{.window = std::chrono::milliseconds(opts_.vmm_timing_window_ms),
                                       .period = std::chrono::milliseconds(opts_.vmm_timing_period_ms)});
    if (vmm_sampler_->sampling())
      log::info("serve", "VMM handling time sampled: {} ms every {} ms (no kvm_entry on this host)",
                opts_.vmm_timing_window_ms, opts_.vmm_timing_period_ms);
    kvm::VmmTimingSampler* s = vmm_sampler_.get();
    exit_collector->set_vmm_sample_ratio([s] { return s->sample_ratio(); });
  } else {
    // No marker: kvm_entry ends every VMM handling interval where it fires;
    // where the marker is needed but did not attach, no exit is timed at all.
    bool timed = false;
    if (!kvm::needs_kvm_run_marker(*btf_))
      for (const auto& p : probes_->probes()) timed |= p.attached && p.probe == "kvm_entry";
    exit_collector->set_vmm_sample_ratio([timed] { return timed ? 1.0 : 0.0; });
  }
  auto agent_collector = std::make_shared<AgentCollector>(
      probes_->probes(), probes_->attached_programs(), maps, *tracker_);
  const ProbeSet* ps = probes_.get();
  agent_collector->set_probe_source([ps] { return ps->probes(); },
                                    [ps] { return ps->attached_programs(); });
  agent_collector->set_selection(selection_);
  collectors_.push_back(exit_collector);
  collectors_.push_back(std::make_shared<sched::SchedCollector>(*tracker_, maps, opts_.per_vcpu, selection_));
  collectors_.push_back(agent_collector);
  collectors_.push_back(std::make_shared<metrics::ProcessCollector>());
  if (ovs_dp::OvsDpProbes* dp = probes_->ovs_dp()) {
    // Datapath port -> interface -> instance, from OVSDB external_ids (vm-uuid).
    ovs_dp::InstanceLookup instance_of;
    if (ovs_) {
      ovs_service::OvsService* svc = ovs_.get();
      instance_of = [svc](const std::string& ifname) { return svc->instance_of_interface(ifname); };
    }
    collectors_.push_back(std::make_shared<ovs_dp::OvsDpCollector>(
        [dp] { return dp->reader(); },
        std::make_shared<ovs_dp::NameCache>(std::make_unique<ovs_dp::SystemDatapathDirectory>()),
        instance_of));
  }
  for (auto& c : collectors_) {
    c = filtered(c);
    web_->add(c);
  }
}

// Pinning, instance identity and OVS: what the agent's own threads keep.
void Agent::add_instance_collectors() {
  std::vector<std::shared_ptr<prometheus::Collectable>> added{pin_monitor_->registry()};
  // hvtel_instance_info also for the VMMs libvirt does not run (plain KVM hosts).
  discovery::VcpuTracker* tracker = tracker_.get();
  libvirt::LocalInstances local_instances = [tracker] {
    std::vector<model::Instance> out;
    tracker->read([&](const auto& instances, const auto&) {
      for (const auto& [pid, ti] : instances)
        if (ti.source != model::Source::kLibvirt) out.push_back(discovery::as_instance(pid, ti));
    });
    return out;
  };
  if (lv_collector_) {
    lv_collector_->set_local_instances(local_instances);
    added.push_back(lv_collector_);
  } else {
    added.push_back(std::make_shared<libvirt::InstanceInfoCollector>(local_instances));
  }
  if (ovs_)
    for (const auto& c : ovs_->collectables()) added.push_back(c);
  for (const auto& c : added) {
    collectors_.push_back(filtered(c));
    web_->add(collectors_.back());
  }
}

// Live CLI (hvtel trace): one event stream from the pinning registry and the
// OVS service, on its own loopback port.
void Agent::start_events() {
  event_hub_.add_source(events::pinning_source(pin_monitor_->registry()));
  if (ovs_) event_hub_.add_source(ovs_event_source(*ovs_));
  if (opts_.events_listen.empty()) return;
  // hvtel trace exits|runq|upcalls --agent: loaded only while someone follows that source.
  // Names as the metrics have them (Nova's, where libvirt runs the VMM).
  discovery::VcpuTracker* tracker = tracker_.get();
  auto names = [tracker](pid_t pid) -> std::optional<discovery::VmmIdentity> {
    std::optional<discovery::VmmIdentity> id;
    tracker->read([&](const auto& instances, const auto&) {
      auto it = instances.find(pid);
      if (it != instances.end())
        id = discovery::VmmIdentity{it->second.instance_id, it->second.instance_name};
    });
    return id;
  };
  event_hub_.add_source(exit_trace_source(event_hub_, names));
  event_hub_.add_source(runq_trace_source(event_hub_, names));
  event_hub_.add_source(upcall_trace_source(event_hub_, names));
  auto srv = events::EventServer::start(event_hub_, opts_.events_listen);
  if (!srv) {
    log::warn("serve", "events: {} (hvtel trace unavailable)", srv.error().message);
    return;
  }
  event_server_ = std::move(*srv);
  event_hub_.start();
  for (auto port : event_server_->ports())
    log::info("serve", "serving /events on {} (port {})", opts_.events_listen, port);
}

// Least privilege: the probes are loaded and attached, the ports bound, the
// sockets connected. What stays is for later attaches and reading other
// users' /proc (base/util/caps.h says which and why).
void Agent::drop_privileges() {
  if (auto kept = drop_capabilities(serve_capabilities(module_pending_)); !kept)
    log::warn("serve", "{}; keeping the capabilities it has", kept.error().message);
  else
    log::info("serve", "capabilities dropped; kept: {}{}", fmt::join(*kept, ","),
              module_pending_ ? " (cap_sys_admin and cap_setpcap until openvswitch.ko is loaded)" : "");
}

// nova.conf and the inventory: a broken file is logged with its line and
// counted, and the last good version stays in force (PinningMonitor::load).
void Agent::reload_config(const char* why) {
  log::info("serve", "{}: reloading the pinning configuration", why);
  if (auto st = pin_monitor_->load(); !st) log::warn("serve", "pinning: {}", st.error().message);
  // libvirt infers the policy of pre-Flamingo guests from cpu_dedicated_set.
  if (lv_ && pin_monitor_->host_policy().cpu_dedicated_set != libvirt_dedicated_set_) {
    libvirt_dedicated_set_ = pin_monitor_->host_policy().cpu_dedicated_set;
    lv_->set_dedicated_set(libvirt_dedicated_set_);
  }
}

void Agent::poll() {
  tracker_->poll();
  web_->heartbeat();
  const auto status = probes_->probes();
  const bool observing = std::any_of(status.begin(), status.end(), [](const auto& p) { return p.attached; });
  web_->set_unready_reason(observing ? "" : "no probe attached (hvtel status says why)");
  if (!web_->ready()) {  // probes attached, collectors registered, the first discovery done
    web_->set_ready(true);
    for (auto port : web_->ports())
      log::info("serve", "serving {} on {} (port {}{})", opts_.telemetry_path, opts_.listen, port,
                web_->tls() ? ", TLS" : "");
  }
  if (pin_monitor_->config_changed()) reload_config("a configuration file changed");
  web_->poll();  // --web.config.file
  if (auto* dp = probes_->ovs_dp()) {
    dp->poll();  // re-probes openvswitch.ko every 30 s
    if (module_pending_ && dp->loaded()) {
      module_pending_ = false;
      drop_privileges();
    }
  }
  if (pin_sync_) {
    if (libvirt_changed_.exchange(false)) pin_sync_->refresh_allowlist();
    pin_sync_->tick();
  }
}

void Agent::run(const sigset_t& signals) {
  using Clock = std::chrono::steady_clock;
  const auto poll_every = std::chrono::milliseconds(opts_.poll_ms);
  next_poll_ = Clock::now();
  while (true) {
    auto now = Clock::now();
    if (vmm_sampler_) vmm_sampler_->tick(now);
    if (now >= next_poll_) {
      next_poll_ = now + poll_every;
      poll();
    }
    // Wake for the next poll, or earlier to open or close a timing window.
    auto wake = next_poll_;
    if (vmm_sampler_) wake = std::min(wake, vmm_sampler_->next_deadline());
    auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - Clock::now());
    if (wait < std::chrono::nanoseconds(0)) wait = {};
    const timespec tick{static_cast<time_t>(wait.count() / 1000000000),
                        static_cast<long>(wait.count() % 1000000000)};
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      log::info("serve", "signal {}: stopping", sig);
      return;
    }
    if (sig == SIGHUP) {
      reload_config("SIGHUP");
      web_->reload();
    }
  }
}

void Agent::stop() {
  event_server_.reset();
  event_hub_.stop();
  web_.reset();
  // Before libvirt: the rule thread reads the libvirt snapshot.
  if (ovs_) ovs_->stop();
  if (lv_) lv_->stop();
}

}  // namespace

int cmd_serve(const ServeOptions& opts) {
  // Block the signals the main loop waits for in every thread: TERM and INT
  // stop the agent, HUP reloads the configuration. USR1/USR2 (sent by habit
  // or by mistake) must not kill it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGUSR1, SIG_IGN);
  ::signal(SIGUSR2, SIG_IGN);

  auto selection = metrics::Selection::disable(opts.metrics_disable);
  if (!selection) {
    log::error("serve", "{}", selection.error().message);
    return 2;
  }
  Agent agent(opts, std::move(*selection));
  if (!agent.start()) {
    agent.stop();
    return 1;
  }
  agent.run(signals);
  agent.stop();
  return 0;
}

}  // namespace hvtel::app
