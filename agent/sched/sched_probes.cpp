#include "sched/sched_probes.h"

#include <bpf/libbpf.h>

#include "vcpu_sched.skel.h"

namespace hvtel::sched {
namespace {

bpf::Hook hook(const char* tp, const char* btf, const char* raw) {
  return bpf::Hook{tp, "sched", tp, {{bpf::AttachKind::kTpBtf, btf}, {bpf::AttachKind::kRawTp, raw}}};
}

}  // namespace

bpf::ObjectSpec sched_object_spec(const bpf::BpfObject& shared) {
  bpf::ObjectSpec spec;
  spec.name = "vcpu_sched";
  spec.elf = vcpu_sched::elf_bytes(&spec.size);
  spec.hooks = {
      hook("sched_switch", "hv_switch_btf", "hv_switch_raw"),
      hook("sched_wakeup", "hv_wakeup_btf", "hv_wakeup_raw"),
      hook("sched_wakeup_new", "hv_wakenew_btf", "hv_wakenew_raw"),
      hook("sched_migrate_task", "hv_migrate_btf", "hv_migrate_raw"),
      bpf::Hook{"sched_setaffinity", "syscalls", "sys_enter_sched_setaffinity",
                {{bpf::AttachKind::kTracepoint, "hv_setaff_tp"}}},
  };
  const bpf::BpfObject* base = &shared;
  spec.configure = [base](bpf::BpfObject& obj) -> Status {
    // One thread table and one slot space for every object.
    for (const char* name : {"hv_threads", "hv_new_threads", "hv_free_slots", "hv_vcpu",
                             "hv_counters", "hv_control", "hv_tid_cache"}) {
      auto from = base->map(name);
      auto to = obj.map(name);
      if (!from || !to) return fail(std::string("shared map missing: ") + name);
      if (int err = bpf_map__reuse_fd(*to, bpf_map__fd(*from)); err)
        return fail_errno(err, std::string("reuse ") + name);
    }
    auto vcpu = base->map("hv_vcpu");
    auto sched = obj.map("hv_sched");
    if (!sched) return fail(sched.error());
    if (int err = bpf_map__set_max_entries(*sched, bpf_map__max_entries(*vcpu)); err)
      return fail_errno(err, "size hv_sched");
    return {};
  };
  return spec;
}

}  // namespace hvtel::sched
