// The ovs_dp BPF object (bpf/ovs_dp.bpf.c): its hooks, and OvsDpProbes, which
// loads it when the openvswitch module is there, re-probes every 30 s while it
// is not (the module may be loaded after the agent started), and hands the
// collector a reader of its maps.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/bpf/object.h"
#include "base/bpf/prog_stats.h"
#include "ovs/datapath/ovs_dp_maps.h"

namespace hvtel::ovs_dp {

// Hooks, in order: ovs_dp_upcall (tp_btf, raw_tp, tracepoint), ovs_dp_upcall_ret
// (fexit, kretprobe), ovs_flow_cmd_{new,set,del} (fexit, kprobe). The flow
// kprobe variants need their kretprobe companions, which `configure` autoloads
// and attach_companions() attaches (load_object knows one program per variant).
bpf::ObjectSpec object_spec();

// The kretprobe companion of a flow hook's kprobe program, or empty.
std::string companion_of(const std::string& program);

struct OvsDpOptions {
  // load_object with a fresh KernelBtf (module BTF appears with the module).
  std::function<Result<bpf::LoadedObject>(const bpf::ObjectSpec&)> load;
  std::function<bool()> module_loaded;  // default: /sys/module/openvswitch exists
  std::function<std::chrono::steady_clock::time_point()> clock;
  std::chrono::seconds reprobe{30};
};

class OvsDpProbes {
 public:
  explicit OvsDpProbes(OvsDpOptions opts);  // first attempt now
  ~OvsDpProbes();
  OvsDpProbes(const OvsDpProbes&) = delete;
  OvsDpProbes& operator=(const OvsDpProbes&) = delete;

  // From the agent's main loop: cheap; re-probes at most every `reprobe`
  // while the module is absent or the object did not load.
  void poll();

  std::vector<bpf::ProbeStatus> status() const;
  std::vector<bpf::ProgramRef> attached_programs() const;
  std::shared_ptr<const OvsDpReader> reader() const;  // null while not loaded
  bool loaded() const;

 private:
  struct Loaded;
  void attempt();

  OvsDpOptions opts_;
  mutable std::mutex mu_;
  std::shared_ptr<Loaded> loaded_;
  std::vector<bpf::ProbeStatus> status_;
  std::optional<std::chrono::steady_clock::time_point> last_attempt_;
};

}  // namespace hvtel::ovs_dp
