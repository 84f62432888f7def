#include "kvm/exit_probes.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "vcpu_exits.skel.h"

namespace hvtel::kvm {
namespace {

bpf::Hook hook(const char* tp, const char* btf, const char* raw, const char* classic) {
  return bpf::Hook{tp, "kvm", tp,
                   {{bpf::AttachKind::kTpBtf, btf},
                    {bpf::AttachKind::kRawTp, raw},
                    {bpf::AttachKind::kTracepoint, classic}}};
}

}  // namespace

bool needs_kvm_run_marker(const bpf::KernelBtf& btf) {
  return !btf.has_type("vcpu_vmx", BTF_KIND_STRUCT) && !btf.has_type("vcpu_svm", BTF_KIND_STRUCT);
}

bpf::ObjectSpec exit_object_spec(const ExitProbeOptions& opts) {
  bpf::ObjectSpec spec;
  spec.name = "vcpu_exits";
  spec.elf = vcpu_exits::elf_bytes(&spec.size);
  spec.hooks = {
      hook("kvm_exit", "hv_exit_btf", "hv_exit_raw", "hv_exit_tp"),
      hook("kvm_entry", "hv_entry_btf", "hv_entry_raw", "hv_entry_tp"),
      hook("kvm_userspace_exit", "hv_uexit_btf", "hv_uexit_raw", "hv_uexit_tp"),
  };
  if (opts.kvm_run_marker) spec.hooks.push_back(hook("kvm_fpu", "hv_fpu_btf", "hv_fpu_raw", "hv_fpu_tp"));
  uint32_t slots = opts.max_vcpus;
  spec.configure = [slots](bpf::BpfObject& obj) -> Status {
    for (const char* name : {"hv_vcpu", "hv_free_slots"}) {
      auto m = obj.map(name);
      if (!m) return fail(m.error());
      if (int err = bpf_map__set_max_entries(*m, slots); err)
        return fail_errno(err, std::string("size ") + name);
    }
    return {};
  };
  return spec;
}

}  // namespace hvtel::kvm
