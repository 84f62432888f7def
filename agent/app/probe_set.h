// ProbeSet: every BPF object of the agent (each feature's), loaded in dependency order
// (vcpu_exits owns the shared thread table and slots; vcpu_sched reuses them).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "base/bpf/kernel.h"
#include "base/bpf/object.h"
#include "base/bpf/prog_stats.h"
#include "base/bpf/vcpu_maps.h"
#include "kvm/vmm_timing.h"
#include "ovs/datapath/ovs_dp_probes.h"

namespace hvtel::app {

struct ProbeSetOptions {
  uint32_t max_vcpus = 1024;
  bool sched = true;
  uint32_t ovs_reprobe_s = 30;  // retry the openvswitch probes this often while unattached
  bool ovs_dp = true;  // Open vSwitch kernel datapath (when openvswitch.ko is loaded)
};

class ProbeSet {
 public:
  static Result<std::unique_ptr<ProbeSet>> load(const ProbeSetOptions& opts, const bpf::KernelBtf& btf);

  // Current state: the ovs_dp probes change when openvswitch.ko is loaded later.
  std::vector<bpf::ProbeStatus> probes() const;
  std::vector<bpf::ProgramRef> attached_programs() const;
  // Null when disabled; call ovs_dp()->poll() from the main loop.
  ovs_dp::OvsDpProbes* ovs_dp() const { return ovs_dp_.get(); }
  bpf::KernelVcpuMaps& maps() { return *maps_; }
  // The kvm_fpu KVM_RUN marker, for the VMM-timing sampler; null where the
  // kernel does not need it (kvm_entry fires) or it did not attach.
  kvm::MarkerControl* kvm_run_marker() const { return marker_.get(); }
  const bpf::BpfObject& exits() const { return exits_->object; }
  const bpf::BpfObject* sched() const { return sched_ ? &sched_->object : nullptr; }

 private:
  ProbeSet() = default;
  std::optional<bpf::LoadedObject> exits_;
  std::optional<bpf::LoadedObject> sched_;
  std::unique_ptr<bpf::KernelVcpuMaps> maps_;
  std::unique_ptr<kvm::MarkerControl> marker_;
  std::unique_ptr<ovs_dp::OvsDpProbes> ovs_dp_;
  std::vector<bpf::ProbeStatus> probes_;  // vcpu_exits and vcpu_sched
};

// Every (object, hook, variant) the agent can load, each loaded and attached
// on its own (with the objects it depends on), for `hvtel selftest`.
struct VariantCheck {
  std::string object, program, attach, probe;
  bool attached = false;
  bool skipped = false;  // prerequisite (tracepoint, BTF) absent on this kernel
  std::string reason;
};
std::vector<VariantCheck> check_all_variants(const bpf::KernelBtf& btf);

}  // namespace hvtel::app
