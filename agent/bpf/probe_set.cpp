#include "bpf/probe_set.h"

#include <bpf/libbpf.h>

#include "kvm/exit_probes.h"
#include "sched/sched_probes.h"
#include "util/log.h"

namespace hvtel::bpf {

Result<std::unique_ptr<ProbeSet>> ProbeSet::load(const ProbeSetOptions& opts,
                                                 const KernelBtf& btf) {
  std::unique_ptr<ProbeSet> ps(new ProbeSet());
  auto exits = load_object(kvm::exit_object_spec({.max_vcpus = opts.max_vcpus}), btf);
  if (!exits) return fail(exits.error());
  ps->exits_.emplace(std::move(*exits));
  for (const auto& p : ps->exits_->probes) ps->probes_.push_back(p);
  auto maps = KernelVcpuMaps::attach(ps->exits_->object);
  if (!maps) return fail(maps.error());
  ps->maps_ = std::move(*maps);

  if (opts.sched) {
    auto spec = sched::sched_object_spec(ps->exits_->object);
    auto sched = load_object(spec, btf);
    if (!sched) {
      // Scheduling telemetry is lost, exits keep working.
      log::error("bpf", "scheduler probes: {}", sched.error().message);
      for (const auto& h : spec.hooks)
        ps->probes_.push_back({.probe = h.probe, .object = spec.name,
                               .reason = sched.error().message});
    } else {
      ps->sched_.emplace(std::move(*sched));
      for (const auto& p : ps->sched_->probes) ps->probes_.push_back(p);
      if (auto st = ps->maps_->attach_sched(ps->sched_->object); !st) return fail(st.error());
    }
  }
  return ps;
}

std::vector<ProgramRef> ProbeSet::attached_programs() const {
  std::vector<ProgramRef> out;
  auto add = [&](const std::optional<LoadedObject>& lo) {
    if (!lo) return;
    for (const auto& p : lo->probes) {
      if (!p.attached) continue;
      for (const auto& name : p.programs) {
        auto prog = lo->object.program(name);
        if (prog && bpf_program__fd(*prog) >= 0) out.push_back({name, bpf_program__fd(*prog)});
      }
    }
  };
  add(exits_);
  add(sched_);
  return out;
}

std::vector<VariantCheck> check_all_variants(const KernelBtf& btf) {
  std::vector<VariantCheck> out;
  auto check_spec = [&](const ObjectSpec& spec) {
    for (const auto& h : spec.hooks) {
      for (const auto& v : h.variants) {
        ObjectSpec one = spec;
        one.hooks = {Hook{h.probe, h.tp_system, h.target, {v}}};
        VariantCheck c{spec.name, v.program, attach_name(v.kind), h.probe};
        auto loaded = load_object(one, btf);
        if (!loaded) {
          c.reason = loaded.error().message;
        } else {
          const auto& p = loaded->probes.front();
          c.attached = p.attached;
          c.skipped = !p.attach && !p.rejected.empty() && p.rejected.front().prerequisite;
          c.reason = p.attached ? "" : p.reason;
        }
        out.push_back(std::move(c));
      }
    }
  };
  auto exits_spec = kvm::exit_object_spec({});
  check_spec(exits_spec);
  // The scheduler object needs the shared maps of a loaded exits object.
  auto base = load_object(exits_spec, btf);
  if (base) {
    check_spec(sched::sched_object_spec(base->object));
  } else {
    out.push_back({"vcpu_sched", "*", "*", "*", false, false,
                   "vcpu_exits did not load: " + base.error().message});
  }
  return out;
}

}  // namespace hvtel::bpf
