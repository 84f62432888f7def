#include "cli/serve.h"

#include <prometheus/exposer.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "bpf/kernel.h"
#include "bpf/object.h"
#include "bpf/vcpu_maps.h"
#include "discovery/procfs.h"
#include "discovery/vcpu_tracker.h"
#include "kvm/exit_probes.h"
#include "metrics/agent_collector.h"
#include "metrics/exit_collector.h"
#include "util/log.h"

#include <bpf/libbpf.h>

namespace hvtel::cli {
namespace {

std::vector<bpf::ProgramRef> attached_programs(const bpf::LoadedObject& lo) {
  std::vector<bpf::ProgramRef> out;
  for (const auto& p : lo.probes) {
    if (!p.attached || !p.attach) continue;
    for (const auto& name : p.programs) {
      auto prog = lo.object.program(name);
      if (prog && bpf_program__fd(*prog) >= 0) out.push_back({name, bpf_program__fd(*prog)});
    }
  }
  return out;
}

}  // namespace

int cmd_serve(const ServeOptions& opts) {
  // Block the stop signals in every thread; the main loop waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  bpf::KernelBtf btf;
  auto exits = bpf::load_object(kvm::exit_object_spec({.max_vcpus = opts.max_vcpus}), btf);
  if (!exits) {
    log::error("serve", "{}", exits.error().message);
    return 1;
  }
  for (const auto& p : exits->probes) {
    if (p.attached)
      log::info("serve", "probe {} attached via {}", p.probe, bpf::attach_name(*p.attach));
    else
      log::warn("serve", "probe {} not attached: {}", p.probe, p.reason);
  }
  auto maps = bpf::KernelVcpuMaps::attach(exits->object);
  if (!maps) {
    log::error("serve", "{}", maps.error().message);
    return 1;
  }

  discovery::ProcFs proc;
  discovery::VcpuTracker tracker(**maps, proc);

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(opts.listen);
  } catch (const std::exception& e) {
    log::error("serve", "listen on {}: {}", opts.listen, e.what());
    return 1;
  }
  auto exit_collector = std::make_shared<metrics::ExitCollector>(tracker, **maps, opts.per_vcpu);
  auto agent_collector = std::make_shared<metrics::AgentCollector>(
      exits->probes, attached_programs(*exits), **maps, tracker);
  exposer->RegisterCollectable(exit_collector);
  exposer->RegisterCollectable(agent_collector);
  for (auto port : exposer->GetListeningPorts())
    log::info("serve", "serving /metrics on {} (port {})", opts.listen, port);

  const timespec tick{static_cast<time_t>(opts.poll_ms / 1000),
                      static_cast<long>(opts.poll_ms % 1000) * 1000000L};
  while (true) {
    tracker.poll();
    int sig = sigtimedwait(&stop, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      log::info("serve", "signal {}: stopping", sig);
      break;
    }
  }
  exposer.reset();
  return 0;
}

}  // namespace hvtel::cli
