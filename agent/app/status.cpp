#include "app/status.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

#include "feature_probe.skel.h"
#include "app/probe_set.h"
#include "base/util/caps.h"

namespace hvtel::app {

namespace {

Feature probe_feature(bpf::AttachKind kind, const char* program, const char* target,
                      const bpf::KernelBtf& btf) {
  bpf::ObjectSpec spec;
  spec.name = "feature_probe";
  spec.elf = feature_probe::elf_bytes(&spec.size);
  bool fn = kind == bpf::AttachKind::kFentry || kind == bpf::AttachKind::kKprobe;
  spec.hooks = {bpf::Hook{"feature", fn ? "" : "sched", target, {{kind, program}}}};
  auto loaded = bpf::load_object(spec, btf);
  if (!loaded) return {false, loaded.error().message};
  const auto& p = loaded->probes.front();
  return {p.attached, p.attached ? "" : p.reason};
}

Feature probe_ringbuf() {
  int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "hv_probe_rb", 0, 0, 4096, nullptr);
  if (fd < 0) {
    const int err = errno;
    return {false, Error::sys(err, "create ring buffer").message + needs_capability(err, "CAP_BPF, or root")};
  }
  ::close(fd);
  return {true, ""};
}

}  // namespace

constexpr const char* kTcgReason =
    "QEMU emulates these vCPUs (threads 'CPU n/TCG'), so no KVM code and no VM exit happens; "
    "scheduling and pinning are still tracked";

StatusReport build_status() {
  StatusReport r;
  bpf::KernelBtf btf;
  r.kernel = bpf::read_kernel_info(btf);
  using K = bpf::AttachKind;
  r.features["tp_btf"] = probe_feature(K::kTpBtf, "fp_tp_btf", "sched_switch", btf);
  r.features["raw_tp"] = probe_feature(K::kRawTp, "fp_raw_tp", "sched_switch", btf);
  r.features["tracepoint"] = probe_feature(K::kTracepoint, "fp_tracepoint", "sched_switch", btf);
  r.features["fentry"] = probe_feature(K::kFentry, "fp_fentry", "vfs_read", btf);
  r.features["kprobe"] = probe_feature(K::kKprobe, "fp_kprobe", "vfs_read", btf);
  r.features["ringbuf"] = probe_ringbuf();
  auto set = ProbeSet::load({}, btf);
  if (!set) {
    r.probes.push_back({.probe = "vcpu_exits", .object = "vcpu_exits", .reason = set.error().message});
  } else {
    r.probes = (*set)->probes();
  }
  r.tcg_vmms = discovery::find_tcg_vmms(discovery::ProcFs{});
  return r;
}

nlohmann::json status_json(const StatusReport& r) {
  using nlohmann::json;
  json features = json::object();
  for (const auto& [name, f] : r.features) features[name] = f.available;
  json reasons = json::object();
  for (const auto& [name, f] : r.features)
    if (!f.available) reasons[name] = f.reason;
  json k = {{"release", r.kernel.release},
            {"btf_vmlinux", r.kernel.btf_vmlinux},
            {"module_btf", r.kernel.module_btf},
            {"lockdown", r.kernel.lockdown},
            {"kvm_loaded", r.kernel.kvm_loaded},
            {"openvswitch_loaded", r.kernel.openvswitch_loaded},
            {"features", features},
            {"feature_reasons", reasons}};
  k["bpf_stats_enabled"] =
      r.kernel.bpf_stats_enabled ? json(*r.kernel.bpf_stats_enabled) : json(nullptr);
  json probes = json::array();
  for (const auto& p : r.probes) {
    json rejected = json::array();
    for (const auto& rj : p.rejected)
      rejected.push_back({{"attach", bpf::attach_name(rj.kind)}, {"reason", rj.reason}});
    probes.push_back({{"probe", p.probe},
                      {"object", p.object},
                      {"attach", p.attach ? json(bpf::attach_name(*p.attach)) : json(nullptr)},
                      {"available", p.attached},
                      {"reason", p.reason},
                      {"rejected", rejected}});
  }
  json tcg = json::array();
  for (const auto& v : r.tcg_vmms)
    tcg.push_back({{"pid", v.pid},
                   {"instance_id", v.identity.instance_id},
                   {"instance_name", v.identity.instance_name},
                   {"vcpus", v.vcpus},
                   {"reason", kTcgReason}});
  return {{"kernel", k}, {"probes", probes}, {"tcg_vmms", tcg}};
}

std::string status_text(const StatusReport& r) {
  std::string out;
  out += fmt::format("kernel {}  BTF {}  lockdown {}  bpf_stats {}\n", r.kernel.release,
                     r.kernel.btf_vmlinux ? "yes" : "no",
                     r.kernel.lockdown.empty() ? "?" : r.kernel.lockdown,
                     !r.kernel.bpf_stats_enabled ? "?" : *r.kernel.bpf_stats_enabled ? "on" : "off");
  std::string mods;
  for (const auto& m : r.kernel.module_btf) mods += (mods.empty() ? "" : " ") + m;
  out += fmt::format("module BTF: {}\n", mods.empty() ? "(none)" : mods);
  out += "features:\n";
  for (const auto& [name, f] : r.features)
    out += fmt::format("  {:<11} {}{}\n", name, f.available ? "yes" : "no",
                       f.available ? "" : "  (" + f.reason + ")");
  out += "probes:\n";
  for (const auto& p : r.probes) {
    std::string attach = p.attach ? bpf::attach_name(*p.attach) : "-";
    out += fmt::format("  {:<20} {:<11} {}\n", p.probe, attach,
                       p.attached ? "attached" : "NOT ATTACHED: " + p.reason);
    for (const auto& rj : p.rejected)
      out += fmt::format("  {:<20}   {} rejected: {}\n", "", bpf::attach_name(rj.kind), rj.reason);
  }
  if (!r.tcg_vmms.empty()) {
    out += fmt::format("TCG guests, no exit metrics ({}):\n", kTcgReason);
    for (const auto& v : r.tcg_vmms)
      out += fmt::format("  pid {:<8} {} ({}), {} vCPU{}\n", v.pid, v.identity.instance_id,
                         v.identity.instance_name, v.vcpus, v.vcpus == 1 ? "" : "s");
  }
  return out;
}

int cmd_status(bool json) {
  auto r = build_status();
  if (json)
    std::printf("%s\n", status_json(r).dump(2).c_str());
  else
    std::printf("%s", status_text(r).c_str());
  return 0;
}

int cmd_selftest(bool json) {
  bpf::KernelBtf btf;
  auto checks = check_all_variants(btf);
  int failed = 0;
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& c : checks) {
    bool ok = c.skipped || c.attached;
    failed += ok ? 0 : 1;
    if (json) {
      arr.push_back({{"object", c.object}, {"program", c.program}, {"attach", c.attach},
                     {"probe", c.probe}, {"attached", c.attached},
                     {"skipped", c.skipped}, {"reason", c.reason}});
    } else {
      std::printf("%-12s %-14s %-11s %s\n", c.object.c_str(), c.program.c_str(), c.attach.c_str(),
                  c.skipped ? ("skipped: " + c.reason).c_str()
                  : ok      ? "loaded+attached"
                            : ("FAILED: " + c.reason).c_str());
    }
  }
  if (json) std::printf("%s\n", arr.dump(2).c_str());
  return failed ? 1 : 0;
}

}  // namespace hvtel::app
