#include "kvm/exit_trace.h"

#include <bpf/libbpf.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <vector>

#include "base/bpf/object.h"
#include "base/util/strings.h"
#include "kvm/exit_reasons.h"
#include "trace_exits.skel.h"

namespace hvtel::kvm {

const discovery::VmmIdentity& VmmNamer::instance(pid_t tgid) {
  if (lookup_)
    if (auto id = lookup_(tgid)) return instances_[tgid] = std::move(*id);
  auto it = instances_.find(tgid);
  if (it != instances_.end()) return it->second;
  auto argv = proc_.cmdline(tgid);
  auto comm = proc_.comm(tgid);
  discovery::VmmIdentity id;
  if (argv || comm) {
    id = discovery::identity_from_cmdline(argv ? *argv : std::vector<std::string>{},
                                          comm ? *comm : std::string(), tgid);
  } else {
    // Gone before it was named (a short-lived VMM): the pid is all there is.
    id.instance_id = "pid-" + std::to_string(tgid);
    id.instance_name = id.instance_id;
  }
  return instances_.emplace(tgid, std::move(id)).first->second;
}

int VmmNamer::vcpu(pid_t tgid, pid_t tid, int32_t kernel_idx) {
  if (kernel_idx >= 0) return kernel_idx;
  auto it = vcpus_.find(tid);
  if (it != vcpus_.end()) return it->second;
  int v = thread_vcpu_index(proc_, tgid, tid).value_or(-1);
  // Unknown is not cached: the thread may be named later, or be back in KVM_RUN.
  if (v >= 0) vcpus_[tid] = v;
  return v;
}

std::optional<int> thread_vcpu_index(const discovery::ProcFs& proc, pid_t tgid, pid_t tid) {
  if (auto comm = proc.thread_comm(tgid, tid))
    if (auto n = discovery::vcpu_index_from_comm(*comm)) return *n;
  return proc.vcpu_fd_index(tgid, tid);
}

TracedThread name_thread(uint64_t ts_ns, uint64_t latency_ns, uint32_t tgid, uint32_t tid, int32_t vcpu_idx,
                         uint32_t cpu, VmmNamer& names) {
  TracedThread r;
  r.ts_ns = ts_ns;
  r.latency_ns = latency_ns;
  r.pid = static_cast<pid_t>(tgid);
  r.tid = static_cast<pid_t>(tid);
  const auto& id = names.instance(r.pid);
  r.instance_id = id.instance_id;
  r.instance_name = id.instance_name;
  r.vcpu = names.vcpu(r.pid, r.tid, vcpu_idx);
  r.cpu = cpu;
  return r;
}

ExitRecord describe(const hv_trace_exit& e, VmmNamer& names) {
  ExitRecord r;
  static_cast<TracedThread&>(r) = name_thread(e.ts_ns, e.latency_ns, e.tgid, e.tid, e.vcpu_idx, e.cpu, names);
  if (e.vendor != HV_VENDOR_UNKNOWN) {
    r.vendor = vendor_name(e.vendor);
    r.reason = exit_reason_name(e.vendor, e.reason_index);
  }
  if (e.end == HV_TRACE_END_USER) r.vmm_reason = userspace_exit_name(e.user_reason);
  return r;
}

bool passes_vcpu_filter(const ExitRecord& r, int vcpu) { return vcpu < 0 || r.vcpu == vcpu; }

std::string format_exit_text(const ExitRecord& r) {
  std::string reason = r.reason.empty() ? "-" : r.reason;
  if (!r.vmm_reason.empty()) reason += " -> vmm " + r.vmm_reason;
  return fmt::format("{:<20} vcpu {:<3} {:<28} {}", r.instance_name,
                     r.vcpu < 0 ? std::string("?") : std::to_string(r.vcpu), reason,
                     bpf::format_latency(r.latency_ns));
}

std::string format_exit_line(const ExitRecord& r, int64_t wall_offset_ns) {
  return bpf::format_wall_time(r.ts_ns, wall_offset_ns) + " " + format_exit_text(r);
}

std::string exit_json(const ExitRecord& r, int64_t wall_offset_ns, uint64_t dropped) {
  nlohmann::ordered_json j;
  j["type"] = "exit";
  j["time_ns"] = static_cast<int64_t>(r.ts_ns) + wall_offset_ns;
  j["instance_id"] = r.instance_id;
  j["instance_name"] = r.instance_name;
  j["pid"] = r.pid;
  j["tid"] = r.tid;
  j["vcpu"] = r.vcpu;
  j["cpu"] = r.cpu;
  j["vendor"] = r.vendor.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.vendor);
  j["reason"] = r.reason.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.reason);
  j["vmm_reason"] =
      r.vmm_reason.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.vmm_reason);
  j["latency_ns"] = r.latency_ns;
  j["dropped"] = dropped;
  return j.dump();
}

std::string format_drop_line(const ExitTraceCounts& c, const ExitTraceConfig& cfg) {
  return bpf::format_drop_line(c, cfg, "exits not timed (in-flight map full)");
}

Result<pid_t> find_vmm(const discovery::ProcFs& proc, const std::string& instance) {
  if (instance.empty()) return fail("no instance given");
  std::vector<pid_t> found;
  std::string candidates;
  const auto pid_arg = parse_u64(instance);
  for (pid_t pid : proc.processes()) {
    auto argv = proc.cmdline(pid);
    if (!argv || argv->empty()) continue;  // kernel threads, or gone
    auto comm = proc.comm(pid);
    auto id = discovery::identity_from_cmdline(*argv, comm ? *comm : std::string(), pid);
    bool has_name = false;
    for (const auto& a : *argv) has_name = has_name || a == "-name" || a == "--name";
    bool match = id.instance_id == instance || (pid_arg && static_cast<uint64_t>(pid) == *pid_arg) ||
                 (has_name && id.instance_name == instance);
    if (!match) continue;
    found.push_back(pid);
    candidates += fmt::format(" {} ({} {})", pid, id.instance_id, id.instance_name);
  }
  if (found.empty()) return fail(fmt::format("no running VMM is instance \"{}\"", instance));
  if (found.size() > 1)
    return fail(fmt::format("instance \"{}\" is ambiguous:{}; give its id or pid", instance, candidates));
  return found.front();
}

// ---- the BPF side --------------------------------------------------------------

Result<std::unique_ptr<ExitTracer>> ExitTracer::start(const ExitTraceConfig& cfg) {
  bpf::ObjectSpec spec;
  spec.name = "trace_exits";
  spec.elf = trace_exits::elf_bytes(&spec.size);
  spec.hooks = {
      bpf::trace_hook("kvm", "kvm_exit", "hv_trace_exit_btf", "hv_trace_exit_raw"),
      bpf::trace_hook("kvm", "kvm_entry", "hv_trace_entry_btf", "hv_trace_entry_raw"),
      bpf::trace_hook("kvm", "kvm_userspace_exit", "hv_trace_uexit_btf", "hv_trace_uexit_raw"),
  };
  // Without kvm_userspace_exit no exit ends where the trace can see it (kvm_exit alone has no end).
  auto object = bpf::TraceObject::start(std::move(spec), cfg, sizeof(hv_trace_exit), "kvm_userspace_exit");
  if (!object) return fail(object.error());
  return std::unique_ptr<ExitTracer>(new ExitTracer(std::move(*object)));
}

Status ExitTracer::poll(int timeout_ms, const std::function<void(const hv_trace_exit&)>& on_event) {
  return object_->poll_as<hv_trace_exit>(timeout_ms, on_event);
}

}  // namespace hvtel::kvm
