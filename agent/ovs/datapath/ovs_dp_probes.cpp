#include "ovs/datapath/ovs_dp_probes.h"

#include <bpf/libbpf.h>
#include <sys/stat.h>

#include "ovs_dp.skel.h"
#include "base/util/log.h"

namespace hvtel::ovs_dp {
namespace {

using bpf::AttachKind;

constexpr const char* kFlowFns[] = {"ovs_flow_cmd_new", "ovs_flow_cmd_set", "ovs_flow_cmd_del"};

bpf::Hook flow_hook(const std::string& fn) {
  return bpf::Hook{fn, "", fn,
                   {{AttachKind::kFentry, "hv_" + fn + "_fexit"},
                    {AttachKind::kKprobe, "hv_" + fn + "_kprobe"}}};
}

bool sys_module_loaded() {
  struct stat st;
  return ::stat("/sys/module/openvswitch", &st) == 0;
}

}  // namespace

std::string companion_of(const std::string& program) {
  for (const char* fn : kFlowFns)
    if (program == std::string("hv_") + fn + "_kprobe") return std::string("hv_") + fn + "_kretprobe";
  return "";
}

bpf::ObjectSpec object_spec() {
  bpf::ObjectSpec spec;
  spec.name = "ovs_dp";
  spec.elf = ::ovs_dp::elf_bytes(&spec.size);  // the skeleton struct, not this namespace
  spec.hooks = {
      bpf::Hook{"ovs_dp_upcall", "openvswitch", "ovs_dp_upcall",
                {{AttachKind::kTpBtf, "hv_upcall_btf"},
                 {AttachKind::kRawTp, "hv_upcall_raw"},
                 {AttachKind::kTracepoint, "hv_upcall_tp"}}},
      // fexit and kretprobe: the return code (failures); the attach label says fentry/kprobe.
      bpf::Hook{"ovs_dp_upcall_ret", "", "ovs_dp_upcall",
                {{AttachKind::kFentry, "hv_upcall_ret_fexit"},
                 {AttachKind::kKprobe, "hv_upcall_ret_kretprobe"}}},
  };
  for (const char* fn : kFlowFns) spec.hooks.push_back(flow_hook(fn));
  spec.configure = [](bpf::BpfObject& obj) -> Status {
    bpf_program* p;
    bpf_object__for_each_program(p, obj.get()) {
      std::string companion = companion_of(bpf_program__name(p));
      if (companion.empty() || !bpf_program__autoload(p)) continue;
      auto c = obj.program(companion);
      if (!c) return fail(c.error());
      bpf_program__set_autoload(*c, true);
    }
    return {};
  };
  return spec;
}

struct OvsDpProbes::Loaded {
  bpf::LoadedObject object;
  std::optional<KernelOvsDpReader> reader;
  std::vector<bpf::ProgramRef> programs;
};

OvsDpProbes::OvsDpProbes(OvsDpOptions opts) : opts_(std::move(opts)) {
  if (!opts_.module_loaded) opts_.module_loaded = sys_module_loaded;
  if (!opts_.clock) opts_.clock = [] { return std::chrono::steady_clock::now(); };
  attempt();
}

OvsDpProbes::~OvsDpProbes() = default;

void OvsDpProbes::poll() {
  {
    std::lock_guard lock(mu_);
    if (loaded_) return;
    if (last_attempt_ && opts_.clock() - *last_attempt_ < opts_.reprobe) return;
  }
  attempt();
}

void OvsDpProbes::attempt() {
  auto spec = object_spec();
  std::vector<bpf::ProbeStatus> status;
  std::shared_ptr<Loaded> loaded;
  {
    std::lock_guard lock(mu_);
    last_attempt_ = opts_.clock();
  }
  if (!opts_.module_loaded()) {
    // Not worth creating maps for: report each hook with the reason.
    for (const auto& h : spec.hooks) {
      bpf::ProbeStatus s{.probe = h.probe, .object = spec.name};
      s.reason = h.tp_system.empty()
                     ? "function " + h.target + " missing (openvswitch module not loaded)"
                     : "tracepoint " + h.tp_system + ":" + h.target +
                           " missing (openvswitch module not loaded)";
      for (const auto& v : h.variants) s.programs.push_back(v.program);
      status.push_back(std::move(s));
    }
  } else {
    auto lo = opts_.load ? opts_.load(spec) : fail("no loader");
    if (!lo) {
      log::error("ovs_dp", "openvswitch datapath probes: {}", lo.error().message);
      for (const auto& h : spec.hooks)
        status.push_back({.probe = h.probe, .object = spec.name, .reason = lo.error().message});
    } else {
      loaded = std::make_shared<Loaded>(Loaded{std::move(*lo), std::nullopt, {}});
      auto& obj = loaded->object.object;
      for (auto& p : loaded->object.probes) {
        if (!p.attached) continue;
        std::vector<std::string> names;
        for (const auto& n : p.programs) {
          auto prog = obj.program(n);
          if (prog && bpf_program__fd(*prog) >= 0) names.push_back(n);
        }
        std::string companion = names.empty() ? "" : companion_of(names.front());
        if (!companion.empty()) {
          auto c = obj.program(companion);
          Status st = c ? obj.attach(*c) : Status(fail(c.error()));
          if (!st) {
            // The entry kprobe alone counts nothing.
            p.attached = false;
            p.reason = "kretprobe companion: " + st.error().message;
            continue;
          }
          names.push_back(companion);
        }
        for (const auto& n : names)
          loaded->programs.push_back({n, bpf_program__fd(*obj.program(n))});
      }
      auto u = obj.map("hv_ovs_upcalls"), f = obj.map("hv_ovs_flows"),
           c = obj.map("hv_ovs_counters");
      if (u && f && c) {
        auto r = KernelOvsDpReader::from(*u, *f, *c);
        if (r) loaded->reader.emplace(std::move(*r));
        else log::error("ovs_dp", "maps: {}", r.error().message);
      }
      status = loaded->object.probes;
      for (const auto& p : status) {
        if (p.attached)
          log::info("ovs_dp", "probe {} attached via {}", p.probe, bpf::attach_name(*p.attach));
        else
          log::warn("ovs_dp", "probe {} not attached: {}", p.probe, p.reason);
      }
    }
  }
  if (loaded) {
    bool any = false;
    for (const auto& p : status) any = any || p.attached;
    // Caught the module half-loaded (sysfs before its tracepoints/BTF), or
    // nothing usable: drop the object and try again at the next re-probe.
    if (!any) loaded.reset();
  }
  std::lock_guard lock(mu_);
  loaded_ = std::move(loaded);
  status_ = std::move(status);
}

std::vector<bpf::ProbeStatus> OvsDpProbes::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

std::vector<bpf::ProgramRef> OvsDpProbes::attached_programs() const {
  std::lock_guard lock(mu_);
  return loaded_ ? loaded_->programs : std::vector<bpf::ProgramRef>{};
}

std::shared_ptr<const OvsDpReader> OvsDpProbes::reader() const {
  std::lock_guard lock(mu_);
  if (!loaded_ || !loaded_->reader) return nullptr;
  // Aliasing: the reader's map fds stay valid while any scrape holds it.
  return std::shared_ptr<const OvsDpReader>(loaded_, &*loaded_->reader);
}

bool OvsDpProbes::loaded() const {
  std::lock_guard lock(mu_);
  return loaded_ != nullptr;
}

}  // namespace hvtel::ovs_dp
