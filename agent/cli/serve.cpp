#include "cli/serve.h"

#include <fmt/ranges.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <algorithm>
#include <ctime>
#include <memory>

#include "bpf/kernel.h"
#include "bpf/object.h"
#include "bpf/probe_set.h"
#include "bpf/vcpu_maps.h"
#include "discovery/procfs.h"
#include "discovery/vcpu_tracker.h"
#include "events/event_hub.h"
#include "events/event_server.h"
#include "events/pinning_source.h"
#include "kvm/exit_probes.h"
#include "kvm/vmm_timing.h"
#include "metrics/agent_collector.h"
#include "metrics/exit_collector.h"
#include "metrics/process_collector.h"
#include "metrics/sched_collector.h"
#include "ovs_dp/datapath_names.h"
#include "ovs_dp/ovs_dp_collector.h"
#include "libvirt/libvirt_client.h"
#include "libvirt/libvirt_collector.h"
#include "ovs_service/ovs_service.h"
#include "pinning/monitor.h"
#include "util/strings.h"
#include "sched/pin_sync.h"
#include "util/caps.h"
#include "util/log.h"
#include "web/web_server.h"


namespace hvtel::cli {
int cmd_serve(const ServeOptions& opts) {
  // Block the signals the main loop waits for in every thread: TERM and INT
  // stop the agent, HUP reloads the configuration. USR1/USR2 (sent by habit
  // or by mistake) must not kill it.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  ::signal(SIGUSR1, SIG_IGN);
  ::signal(SIGUSR2, SIG_IGN);

  bpf::KernelBtf btf;
  auto probes = bpf::ProbeSet::load(
      {.max_vcpus = opts.max_vcpus, .ovs_reprobe_s = opts.ovs_module_reprobe_s}, btf);
  if (!probes) {
    log::error("serve", "{}", probes.error().message);
    return 1;
  }
  for (const auto& p : (*probes)->probes()) {
    if (p.attached)
      log::info("serve", "probe {} attached via {}", p.probe, bpf::attach_name(*p.attach));
    else
      log::warn("serve", "probe {} not attached: {}", p.probe, p.reason);
  }
  bpf::KernelVcpuMaps& maps = (*probes)->maps();

  discovery::ProcFs proc;
  discovery::VcpuTracker tracker(maps, proc);

  pinning::MonitorConfig pin_cfg;
  pin_cfg.nova_conf_path = opts.nova_conf;
  pin_cfg.inventory_path = opts.inventory;
  pinning::PinningMonitor pin_monitor(pin_cfg);
  if (auto st = pin_monitor.load(); !st) log::warn("serve", "pinning: {}", st.error().message);
  // libvirt: identity (Nova UUID and names) and intent for the VMMs it runs.
  std::atomic<bool> libvirt_changed{false};
  std::unique_ptr<libvirt::LibvirtClient> lv;
  std::optional<std::vector<int>> libvirt_dedicated_set;  // what lv infers policies against
  std::shared_ptr<libvirt::LibvirtCollector> lv_collector;
  if (!opts.libvirt_uri.empty()) {
    libvirt::ClientOptions lv_opts;
    lv_opts.uri = opts.libvirt_uri;
    // Pre-Flamingo Nova metadata has no hw:cpu_policy: infer it against this set.
    lv_opts.dedicated_set = libvirt_dedicated_set = pin_monitor.host_policy().cpu_dedicated_set;
    lv = std::make_unique<libvirt::LibvirtClient>(lv_opts);
    lv->set_change_callback([&tracker, &libvirt_changed](const libvirt::SnapshotPtr&) {
      tracker.refresh_identities();
      libvirt_changed = true;  // a restarted libvirtd: re-read the affinity allow-list
    });
    // A pin changed through libvirt (virsh vcpupin, tuning tools): PV12.
    auto registry = pin_monitor.registry();
    lv->set_pin_change_callback([registry](const libvirt::PinChangeEvent& e) {
      registry->add_kernel_counts(e.instance_id, pinning::ViolationClass::kPinChanged, 1, 0);
      pinning::ViolationEvent ev;
      ev.kind = pinning::EventKind::kKernel;
      ev.instance_id = e.instance_id;
      ev.cls = pinning::ViolationClass::kPinChanged;
      ev.vcpu = e.index;
      ev.detail = "libvirt " + e.param + "=" + format_cpu_list(e.cpus);
      registry->publish(std::move(ev));
    });
    if (auto st = lv->start(); !st) {
      log::error("serve", "libvirt: {}", st.error().message);
      lv.reset();
    } else {
      libvirt::LibvirtClient* client = lv.get();
      tracker.set_identity_lookup([client](pid_t pid) -> std::optional<model::Instance> {
        auto snap = client->snapshot();
        for (const auto& i : snap->instances)
          if (i.pid == pid) return i;
        return std::nullopt;
      });
      tracker.set_known_vmms([client] { return client->snapshot()->instances; });
      lv_collector = std::make_shared<libvirt::LibvirtCollector>(*lv);
    }
  }

  // Open vSwitch: OVSDB port model, per-bridge OpenFlow monitors, dirty-flow
  // rules. Without OVS it stays idle (hvtel_ovsdb_up 0) and keeps retrying.
  ovs_service::OvsServiceOptions ovs_opts;
  ovs_opts.rundir = opts.ovs_rundir;
  ovs_opts.ovsdb_socket = opts.ovsdb_sock;
  auto ovs = std::make_unique<ovs_service::OvsService>(ovs_opts);
  if (lv) {
    libvirt::LibvirtClient* client = lv.get();
    ovs->set_libvirt_source([client] { return client->snapshot()->instances; },
                            [client] { return client->up(); });
  }
  if (auto st = ovs->start(); !st) {
    log::error("serve", "ovs: {}", st.error().message);
    ovs.reset();
  }

  std::unique_ptr<sched::PinSync> pin_sync;
  if ((*probes)->sched()) {
    pin_sync = std::make_unique<sched::PinSync>(
        tracker, maps, pin_monitor,
        sched::PinSyncOptions{.intruder_threshold_ns = uint64_t{opts.intruder_threshold_ms} * 1000000});
    if (lv) {
      libvirt::LibvirtClient* client = lv.get();
      pin_sync->set_intent_source([client] { return client->snapshot()->instances; });
    }
  }

  auto web = web::MetricsServer::start({.listen = opts.listen,
                                        .config_file = opts.web_config_file,
                                        .telemetry_path = opts.telemetry_path,
                                        .max_connections = opts.web_max_connections});
  if (!web) {
    log::error("serve", "{}", web.error().message);
    return 1;
  }
  web::MetricsServer& exposer = **web;
  auto exit_collector = std::make_shared<metrics::ExitCollector>(tracker, maps, opts.per_vcpu);
  std::unique_ptr<kvm::VmmTimingSampler> vmm_sampler;
  if (kvm::MarkerControl* marker = (*probes)->kvm_run_marker()) {
    vmm_sampler = std::make_unique<kvm::VmmTimingSampler>(
        *marker, kvm::VmmTimingOptions{.window = std::chrono::milliseconds(opts.vmm_timing_window_ms),
                                       .period = std::chrono::milliseconds(opts.vmm_timing_period_ms)});
    if (vmm_sampler->sampling())
      log::info("serve", "VMM handling time sampled: {} ms every {} ms (no kvm_entry on this host)",
                opts.vmm_timing_window_ms, opts.vmm_timing_period_ms);
    kvm::VmmTimingSampler* s = vmm_sampler.get();
    exit_collector->set_vmm_sample_ratio([s] { return s->sample_ratio(); });
  } else {
    // No marker: kvm_entry ends every VMM handling interval where it fires;
    // where the marker is needed but did not attach, no exit is timed at all.
    bool timed = false;
    if (!kvm::needs_kvm_run_marker(btf))
      for (const auto& p : (*probes)->probes()) timed |= p.attached && p.probe == "kvm_entry";
    exit_collector->set_vmm_sample_ratio([timed] { return timed ? 1.0 : 0.0; });
  }
  auto sched_collector = std::make_shared<metrics::SchedCollector>(tracker, maps);
  auto agent_collector = std::make_shared<metrics::AgentCollector>(
      (*probes)->probes(), (*probes)->attached_programs(), maps, tracker);
  exposer.add(exit_collector);
  exposer.add(sched_collector);
  const bpf::ProbeSet* ps = probes->get();
  agent_collector->set_probe_source([ps] { return ps->probes(); },
                                    [ps] { return ps->attached_programs(); });
  exposer.add(agent_collector);
  auto process_collector = std::make_shared<metrics::ProcessCollector>();
  exposer.add(process_collector);
  std::shared_ptr<ovs_dp::OvsDpCollector> ovs_dp_collector;  // the exposer keeps a weak_ptr
  if (ovs_dp::OvsDpProbes* dp = (*probes)->ovs_dp()) {
    // Datapath port -> interface -> instance, from OVSDB external_ids (vm-uuid).
    ovs_dp::InstanceLookup instance_of;
    if (ovs) {
      ovs_service::OvsService* svc = ovs.get();
      instance_of = [svc](const std::string& ifname) { return svc->instance_of_interface(ifname); };
    }
    ovs_dp_collector = std::make_shared<ovs_dp::OvsDpCollector>(
        [dp] { return dp->reader(); },
        std::make_shared<ovs_dp::NameCache>(std::make_unique<ovs_dp::SystemDatapathDirectory>()),
        instance_of);
    exposer.add(ovs_dp_collector);
  }
  exposer.add(pin_monitor.registry());
  // hvtel_instance_info also for the VMMs libvirt does not run (plain KVM hosts).
  libvirt::LocalInstances local_instances = [&tracker] {
    std::vector<model::Instance> out;
    tracker.read([&](const auto& instances, const auto&) {
      for (const auto& [pid, ti] : instances)
        if (ti.source != model::Source::kLibvirt) out.push_back(discovery::as_instance(pid, ti));
    });
    return out;
  };
  std::shared_ptr<libvirt::InstanceInfoCollector> local_info;  // the exposer keeps a weak_ptr
  if (lv_collector) {
    lv_collector->set_local_instances(local_instances);
    exposer.add(lv_collector);
  } else {
    local_info = std::make_shared<libvirt::InstanceInfoCollector>(local_instances);
    exposer.add(local_info);
  }
  if (ovs) {
    for (const auto& c : ovs->collectables()) exposer.add(c);
  }

  // Live CLI (hvtel trace): one event stream from the pinning registry (and
  // other sources via event_hub.add_source) on its own, loopback, port.
  events::EventHub event_hub;
  event_hub.add_source(events::pinning_source(pin_monitor.registry()));
  if (ovs) {
    ovs_service::OvsService* svc = ovs.get();
    event_hub.add_source(events::make_source("ovs", [svc](uint64_t cursor, size_t max) {
      events::SourceBatch b;
      b.next_cursor = cursor;
      for (const auto& e : svc->events_since(cursor, max)) {
        if (e.seq > b.next_cursor + 1) b.missed += e.seq - b.next_cursor - 1;  // left the ring
        b.next_cursor = e.seq;
        events::AgentEvent a;
        a.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        e.time.time_since_epoch()).count();
        a.source = "ovs";
        if (e.kind == ovs_service::OvsEvent::Kind::kFlowChange) {
          a.kind = e.change == ovs::ChangeKind::kAdd      ? "flow_added"
                   : e.change == ovs::ChangeKind::kModify ? "flow_modified"
                                                          : "flow_deleted";
          a.text = e.bridge + " " + e.subject + (e.reason.empty() ? "" : " (" + e.reason + ")");
          a.fields = {{"bridge", e.bridge}, {"table", e.table}, {"reason", e.reason},
                      {"from_resync", e.from_resync}};
        } else {
          a.kind = e.kind == ovs_service::OvsEvent::Kind::kDirty ? "dirty_flow" : "dirty_flow_cleared";
          a.text = e.rule + " on " + e.bridge + ": " + e.subject +
                   (e.detail.empty() ? "" : " (" + e.detail + ")");
          a.fields = {{"bridge", e.bridge}, {"rule", e.rule}, {"table", e.table},
                      {"subject", e.subject}, {"detail", e.detail}};
          // R16 subjects are interface names: attach the instance when known.
          if (e.table < 0) a.instance_id = svc->instance_of_interface(e.subject);
        }
        b.events.push_back(std::move(a));
      }
      return b;
    }));
  }
  std::unique_ptr<events::EventServer> event_server;
  if (!opts.events_listen.empty()) {
    if (auto srv = events::EventServer::start(event_hub, opts.events_listen); !srv) {
      log::warn("serve", "events: {} (hvtel trace unavailable)", srv.error().message);
    } else {
      event_server = std::move(*srv);
      event_hub.start();
      for (auto port : event_server->ports())
        log::info("serve", "serving /events on {} (port {})", opts.events_listen, port);
    }
  }

  // Least privilege: the probes are loaded and attached, the ports bound, the
  // sockets connected. What stays is for later attaches and reading other
  // users' /proc (util/caps.h says which and why).
  auto drop_privileges = [&](bool module_pending) {
    if (auto kept = drop_capabilities(serve_capabilities(module_pending)); !kept)
      log::warn("serve", "{}; keeping the capabilities it has", kept.error().message);
    else
      log::info("serve", "capabilities dropped; kept: {}{}", fmt::join(*kept, ","),
                module_pending ? " (cap_sys_admin and cap_setpcap until openvswitch.ko is loaded)" : "");
  };
  bool module_pending = (*probes)->ovs_dp() && !(*probes)->ovs_dp()->loaded();
  drop_privileges(module_pending);

  // nova.conf and the inventory: a broken file is logged with its line and
  // counted, and the last good version stays in force (PinningMonitor::load).
  auto reload_config = [&](const char* why) {
    log::info("serve", "{}: reloading the pinning configuration", why);
    if (auto st = pin_monitor.load(); !st) log::warn("serve", "pinning: {}", st.error().message);
    // libvirt infers the policy of pre-Flamingo guests from cpu_dedicated_set.
    if (lv && pin_monitor.host_policy().cpu_dedicated_set != libvirt_dedicated_set) {
      libvirt_dedicated_set = pin_monitor.host_policy().cpu_dedicated_set;
      lv->set_dedicated_set(libvirt_dedicated_set);
    }
  };
  using Clock = std::chrono::steady_clock;
  const auto poll_every = std::chrono::milliseconds(opts.poll_ms);
  auto next_poll = Clock::now();
  while (true) {
    auto now = Clock::now();
    if (vmm_sampler) vmm_sampler->tick(now);
    if (now >= next_poll) {
      next_poll = now + poll_every;
      tracker.poll();
      exposer.heartbeat();
      const auto status = ps->probes();
      const bool observing = std::any_of(status.begin(), status.end(), [](const auto& p) { return p.attached; });
      exposer.set_unready_reason(observing ? "" : "no probe attached (hvtel status says why)");
      if (!exposer.ready()) {  // probes attached, collectors registered, the first discovery done
        exposer.set_ready(true);
        for (auto port : exposer.ports())
          log::info("serve", "serving {} on {} (port {}{})", opts.telemetry_path, opts.listen,
                    port, exposer.tls() ? ", TLS" : "");
      }
      if (pin_monitor.config_changed()) reload_config("a configuration file changed");
      exposer.poll();  // --web.config.file
      if (auto* dp = (*probes)->ovs_dp()) {
        dp->poll();  // re-probes openvswitch.ko every 30 s
        if (module_pending && dp->loaded()) drop_privileges(module_pending = false);
      }
      if (pin_sync) {
        if (libvirt_changed.exchange(false)) pin_sync->refresh_allowlist();
        pin_sync->tick();
      }
    }
    // Wake for the next poll, or earlier to open or close a timing window.
    auto wake = next_poll;
    if (vmm_sampler) wake = std::min(wake, vmm_sampler->next_deadline());
    auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - Clock::now());
    if (wait < std::chrono::nanoseconds(0)) wait = {};
    const timespec tick{static_cast<time_t>(wait.count() / 1000000000),
                        static_cast<long>(wait.count() % 1000000000)};
    int sig = sigtimedwait(&stop, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      log::info("serve", "signal {}: stopping", sig);
      break;
    }
    if (sig == SIGHUP) {
      reload_config("SIGHUP");
      exposer.reload();
    }
  }
  event_server.reset();
  event_hub.stop();
  web->reset();
  // Before libvirt: the rule thread reads the libvirt snapshot.
  if (ovs) ovs->stop();
  if (lv) lv->stop();
  return 0;
}

}  // namespace hvtel::cli
