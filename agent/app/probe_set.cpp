#include "app/probe_set.h"

#include <bpf/libbpf.h>

#include "kvm/exit_probes.h"
#include "ovs/datapath/ovs_dp_probes.h"
#include "sched/sched_probes.h"
#include "base/util/log.h"

namespace hvtel::app {
// The loader's vocabulary, for composing its objects.
using namespace hvtel::bpf;

namespace {

class KvmRunMarker : public kvm::MarkerControl {
 public:
  KvmRunMarker(BpfObject& obj, bpf_program* prog, KernelVcpuMaps& maps)
      : obj_(obj), prog_(prog), maps_(maps) {}
  Status start() override {
    if (!obj_.attached(prog_))
      if (auto st = obj_.attach(prog_); !st) return st;
    maps_.set_vmm_timing(true);
    return {};
  }
  void stop() override {
    // Timing off first: an exit between the two then leaves no timestamp for
    // a marker that is no longer there to consume it.
    maps_.set_vmm_timing(false);
    obj_.detach(prog_);
  }

 private:
  BpfObject& obj_;
  bpf_program* prog_;
  KernelVcpuMaps& maps_;
};

// The attached program of the exits object's kvm_fpu hook, if any.
bpf_program* attached_marker(const LoadedObject& lo) {
  for (const auto& p : lo.probes) {
    if (p.probe != "kvm_fpu" || !p.attached) continue;
    for (const auto& name : p.programs) {
      auto prog = lo.object.program(name);
      if (prog && lo.object.attached(*prog)) return *prog;
    }
  }
  return nullptr;
}

}  // namespace

Result<std::unique_ptr<ProbeSet>> ProbeSet::load(const ProbeSetOptions& opts,
                                                 const KernelBtf& btf) {
  std::unique_ptr<ProbeSet> ps(new ProbeSet());
  auto exits = load_object(
      kvm::exit_object_spec({.max_vcpus = opts.max_vcpus,
                             .kvm_run_marker = kvm::needs_kvm_run_marker(btf)}),
      btf);
  if (!exits) return fail(exits.error());
  ps->exits_.emplace(std::move(*exits));
  for (const auto& p : ps->exits_->probes) ps->probes_.push_back(p);
  auto maps = KernelVcpuMaps::attach(ps->exits_->object);
  if (!maps) return fail(maps.error());
  ps->maps_ = std::move(*maps);
  if (bpf_program* marker = attached_marker(*ps->exits_))
    ps->marker_ = std::make_unique<KvmRunMarker>(ps->exits_->object, marker, *ps->maps_);

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
      // From now on every switch rewrites the KVM hooks' per-CPU thread cache.
      for (const auto& p : ps->sched_->probes)
        if (p.probe == "sched_switch" && p.attached) ps->maps_->set_switch_cache(true);
    }
  }

  if (opts.ovs_dp) {
    // Independent of the vCPU objects; loads now or on a later poll() once the
    // module is there. A fresh KernelBtf each time: module BTF comes with the module.
    ps->ovs_dp_ = std::make_unique<ovs_dp::OvsDpProbes>(ovs_dp::OvsDpOptions{
        .load = [](const ObjectSpec& spec) {
          KernelBtf fresh;
          return load_object(spec, fresh);
        },
        .reprobe = std::chrono::seconds(opts.ovs_reprobe_s)});
  }
  return ps;
}

std::vector<ProbeStatus> ProbeSet::probes() const {
  std::vector<ProbeStatus> out = probes_;
  if (ovs_dp_)
    for (auto& p : ovs_dp_->status()) out.push_back(std::move(p));
  return out;
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
  if (ovs_dp_)
    for (auto& p : ovs_dp_->attached_programs()) out.push_back(std::move(p));
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
        if (loaded) {
          // Flow-hook kprobe variants count only with their kretprobe companion.
          for (auto& p : loaded->probes) {
            std::string companion = ovs_dp::companion_of(v.program);
            if (!p.attached || companion.empty()) continue;
            auto prog = loaded->object.program(companion);
            auto st = prog ? loaded->object.attach(*prog) : Status(fail(prog.error()));
            if (!st) {
              p.attached = false;
              p.reason = "kretprobe companion: " + st.error().message;
            }
          }
        }
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
  // Without openvswitch.ko every variant is skipped (its tracepoint/functions are absent).
  check_spec(ovs_dp::object_spec());
  return out;
}

}  // namespace hvtel::app
