#include "pinning/intent.h"

#include <fmt/core.h>

#include <set>

#include "pinning/cpus.h"

namespace hvtel::pinning {
namespace {

std::string extra_spec(const model::Instance& inst, const std::string& key) {
  if (!inst.nova) return {};
  auto it = inst.nova->extra_specs.find(key);
  return it == inst.nova->extra_specs.end() ? std::string() : it->second;
}

model::CpuPolicy policy_from_spec(const std::string& v) {
  if (v == "dedicated") return model::CpuPolicy::kDedicated;
  if (v == "shared") return model::CpuPolicy::kShared;
  if (v == "mixed") return model::CpuPolicy::kMixed;
  return model::CpuPolicy::kUnknown;
}

bool single_pins_everywhere(const model::Instance& inst, const HostPolicy& policy) {
  const auto& pins = inst.intent.vcpu_pins;
  if (pins.empty()) return false;
  if (inst.vcpus > 0 && pins.size() != static_cast<size_t>(inst.vcpus)) return false;
  std::set<int> used;
  for (const auto& [vcpu, cpus] : pins) {
    if (cpus.size() != 1 || !used.insert(cpus[0]).second) return false;
    if (policy.cpu_dedicated_set && !cpus_subset(cpus, *policy.cpu_dedicated_set)) return false;
  }
  return true;
}

void add_thread(ResolvedIntent& r, const model::ThreadInfo& t, ThreadRole role,
                const std::vector<int>* pin, const model::PinIntent& intent,
                const std::vector<int>& host_cpus) {
  ThreadIntent ti;
  ti.tid = t.tid;
  ti.role = role;
  ti.index = role == ThreadRole::kEmulator ? -1 : t.index;
  if (pin != nullptr && !pin->empty()) {
    ti.allowed = *pin;
    ti.source = AllowedSource::kPin;
  } else if (!intent.vcpu_cpuset.empty()) {
    ti.allowed = intent.vcpu_cpuset;
    ti.source = AllowedSource::kVcpuCpuset;
  } else if (!host_cpus.empty()) {
    ti.allowed = host_cpus;
    ti.source = AllowedSource::kHostCpus;
  }
  r.threads.push_back(std::move(ti));
}

// A vCPU's cell's memnode wins over the guest-wide <memory nodeset>, as in libvirt.
std::vector<int> numa_nodes_of(const model::PinIntent& intent, int vcpu) {
  if (auto cell = intent.vcpu_cells.find(vcpu); cell != intent.vcpu_cells.end()) {
    if (auto m = intent.numa_memnodes.find(cell->second); m != intent.numa_memnodes.end()) return m->second;
  }
  return intent.numa_nodeset;
}

}  // namespace

std::string_view role_name(ThreadRole r) {
  switch (r) {
    case ThreadRole::kVcpu: return "vcpu";
    case ThreadRole::kEmulator: return "emulator";
    case ThreadRole::kIothread: return "iothread";
  }
  return "unknown";
}

bool has_intent(const model::Instance& inst) {
  const auto& i = inst.intent;
  if (i.policy != model::CpuPolicy::kUnknown) return true;
  if (!i.vcpu_pins.empty() || !i.vcpu_cpuset.empty() || !i.emulator_pin.empty() ||
      !i.iothread_pins.empty()) {
    return true;
  }
  return policy_from_spec(extra_spec(inst, "hw:cpu_policy")) != model::CpuPolicy::kUnknown;
}

ResolvedIntent resolve_intent(const model::Instance& inst, const HostPolicy& policy,
                              const std::vector<int>& host_cpus) {
  const model::PinIntent& intent = inst.intent;
  ResolvedIntent r;
  r.instance_id = inst.instance_id;
  r.pid = inst.pid;
  r.emulator_policy = extra_spec(inst, "hw:emulator_threads_policy");
  r.thread_policy = intent.thread_policy.empty() ? extra_spec(inst, "hw:cpu_thread_policy")
                                                 : intent.thread_policy;

  r.policy = intent.policy;
  if (r.policy == model::CpuPolicy::kUnknown) {
    r.policy = policy_from_spec(extra_spec(inst, "hw:cpu_policy"));
  }
  if (r.policy == model::CpuPolicy::kUnknown) {
    if (single_pins_everywhere(inst, policy)) {
      r.policy = model::CpuPolicy::kDedicated;
      r.inferred = true;
    } else if (has_intent(inst)) {
      r.policy = model::CpuPolicy::kShared;
      r.inferred = true;
    }
  }

  for (const auto& [vcpu, cpus] : intent.vcpu_pins) {
    bool dedicated = false;
    if (cpus.size() == 1) {
      if (r.policy == model::CpuPolicy::kDedicated) {
        dedicated = true;
      } else if (r.policy == model::CpuPolicy::kMixed) {
        dedicated = !policy.cpu_dedicated_set || cpus_subset(cpus, *policy.cpu_dedicated_set);
      }
    }
    if (dedicated) {
      r.dedicated_vcpus[vcpu] = cpus[0];
      r.dedicated.push_back(cpus[0]);
    } else {
      r.floating.push_back({fmt::format("vcpupin {}", vcpu), cpus});
    }
  }
  r.dedicated = cpus_normalize(std::move(r.dedicated));
  if (!intent.vcpu_cpuset.empty()) r.floating.push_back({"vcpu cpuset", intent.vcpu_cpuset});
  if (!intent.emulator_pin.empty()) r.floating.push_back({"emulatorpin", intent.emulator_pin});
  for (const auto& [id, cpus] : intent.iothread_pins) {
    r.floating.push_back({fmt::format("iothreadpin {}", id), cpus});
  }

  for (const auto& t : inst.vcpu_threads) {
    if (t.index < 0) {  // vCPU index not mapped yet: nothing to compare with
      r.threads.push_back(ThreadIntent{t.tid, ThreadRole::kVcpu, -1, {}, AllowedSource::kUnknown});
      continue;
    }
    auto it = intent.vcpu_pins.find(t.index);
    add_thread(r, t, ThreadRole::kVcpu, it == intent.vcpu_pins.end() ? nullptr : &it->second, intent,
               host_cpus);
    r.threads.back().numa_nodes = numa_nodes_of(intent, t.index);
  }
  for (const auto& t : inst.emulator_threads) {
    add_thread(r, t, ThreadRole::kEmulator, &intent.emulator_pin, intent, host_cpus);
  }
  for (const auto& t : inst.iothreads) {
    auto it = intent.iothread_pins.find(t.index);
    add_thread(r, t, ThreadRole::kIothread,
               it == intent.iothread_pins.end() ? nullptr : &it->second, intent, host_cpus);
  }
  return r;
}

std::vector<ResolvedIntent> resolve_intents(const std::vector<model::Instance>& instances,
                                            const HostPolicy& policy,
                                            const std::vector<int>& host_cpus) {
  std::vector<ResolvedIntent> out;
  for (const auto& inst : instances) {
    if (has_intent(inst)) out.push_back(resolve_intent(inst, policy, host_cpus));
  }
  return out;
}

}  // namespace hvtel::pinning
