#include "cli/serve.h"

#include <prometheus/exposer.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "bpf/kernel.h"
#include "bpf/object.h"
#include "bpf/probe_set.h"
#include "bpf/vcpu_maps.h"
#include "discovery/procfs.h"
#include "discovery/vcpu_tracker.h"
#include "metrics/agent_collector.h"
#include "metrics/exit_collector.h"
#include "metrics/sched_collector.h"
#include "libvirt/libvirt_client.h"
#include "libvirt/libvirt_collector.h"
#include "pinning/monitor.h"
#include "util/strings.h"
#include "sched/pin_sync.h"
#include "util/log.h"


namespace hvtel::cli {
int cmd_serve(const ServeOptions& opts) {
  // Block the stop signals in every thread; the main loop waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  bpf::KernelBtf btf;
  auto probes = bpf::ProbeSet::load({.max_vcpus = opts.max_vcpus}, btf);
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
  std::unique_ptr<libvirt::LibvirtClient> lv;
  std::shared_ptr<libvirt::LibvirtCollector> lv_collector;
  if (!opts.libvirt_uri.empty()) {
    libvirt::ClientOptions lv_opts;
    lv_opts.uri = opts.libvirt_uri;
    lv = std::make_unique<libvirt::LibvirtClient>(lv_opts);
    lv->set_change_callback([&tracker](const libvirt::SnapshotPtr&) { tracker.refresh_identities(); });
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
      lv_collector = std::make_shared<libvirt::LibvirtCollector>(*lv);
    }
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

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(opts.listen);
  } catch (const std::exception& e) {
    log::error("serve", "listen on {}: {}", opts.listen, e.what());
    return 1;
  }
  auto exit_collector = std::make_shared<metrics::ExitCollector>(tracker, maps, opts.per_vcpu);
  auto sched_collector = std::make_shared<metrics::SchedCollector>(tracker, maps);
  auto agent_collector = std::make_shared<metrics::AgentCollector>(
      (*probes)->probes(), (*probes)->attached_programs(), maps, tracker);
  exposer->RegisterCollectable(exit_collector);
  exposer->RegisterCollectable(sched_collector);
  exposer->RegisterCollectable(agent_collector);
  exposer->RegisterCollectable(pin_monitor.registry());
  if (lv_collector) exposer->RegisterCollectable(lv_collector);
  for (auto port : exposer->GetListeningPorts())
    log::info("serve", "serving /metrics on {} (port {})", opts.listen, port);

  const timespec tick{static_cast<time_t>(opts.poll_ms / 1000),
                      static_cast<long>(opts.poll_ms % 1000) * 1000000L};
  while (true) {
    tracker.poll();
    if (pin_sync) pin_sync->tick();
    int sig = sigtimedwait(&stop, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      log::info("serve", "signal {}: stopping", sig);
      break;
    }
  }
  exposer.reset();
  if (lv) lv->stop();
  return 0;
}

}  // namespace hvtel::cli
