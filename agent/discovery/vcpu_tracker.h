// VcpuTracker: names the vCPU threads the kernel side found, and retires them.
//
// The BPF side gives any thread that runs KVM code a slot on its first event,
// so counts are exact from the first exit; the tracker then attaches meaning
// (instance identity from procfs or an overlay such as libvirt, the vCPU
// index) and, when a thread or its process is gone, frees the slot. Counts
// of a vCPU thread that exits while its instance lives are folded into the
// instance's retired totals so the exported counters never go backwards.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/bpf/vcpu_maps.h"
#include "discovery/procfs.h"
#include "base/model/instance.h"

namespace hvtel::discovery {

struct TrackedVcpu {
  pid_t tid = 0;
  uint32_t slot = 0;
  int index = -1;           // vCPU index within the instance, -1 unknown
  int kernel_vcpu_id = -1;  // kvm_vcpu.vcpu_id when a hook knew it
};

// A non-vCPU thread the agent registered itself: the emulator (main) thread
// and I/O threads, so scheduler probes can attribute them.
struct TrackedThread {
  pid_t tid = 0;
  uint32_t slot = HV_NO_SLOT;
  uint32_t role = HV_ROLE_EMULATOR;  // enum hv_role
  int index = -1;                    // iothread id, -1 for the emulator
};

// A thread with no slot: taken again when one frees up (KVM vCPU threads by
// the BPF side on their next event, the others by poll()). It is listed with
// its instance meanwhile, and nothing of it is counted.
struct WaitingThread {
  pid_t tid = 0;
  uint32_t role = HV_ROLE_VCPU;  // enum hv_role
  int index = -1;                // vCPU index or iothread id, -1 unknown
};

struct TrackedInstance {
  uint32_t number = 0;  // the agent's instance number, in hv_thread.instance
  pid_t pid = 0;
  uint64_t start_time = 0;
  std::string instance_id;
  std::string instance_name;
  model::Source source = model::Source::kProcfs;
  bool tcg = false;  // vCPUs run under QEMU's TCG: no KVM code, so no exits
  std::vector<TrackedVcpu> vcpus;
  std::vector<TrackedThread> others;
  std::vector<WaitingThread> waiting;  // found no free slot (--max-vcpus overflow)
  // Counters of this instance's exited vCPU threads, by vCPU index.
  std::map<int, hv_vcpu> retired;
  std::map<int, hv_sched> retired_sched;
};

// Identity from a richer source (libvirt): by VMM pid. May return nullopt.
using IdentityLookup = std::function<std::optional<model::Instance>(pid_t pid)>;
// The VMMs a richer source runs, with the vCPU threads it mapped.
using KnownVmms = std::function<std::vector<model::Instance>()>;

struct TrackerStats {
  uint64_t threads_named = 0;
  uint64_t threads_retired = 0;
  uint64_t vanished = 0;  // thread or process gone before it could be named
  uint64_t errors = 0;    // map update failures
  uint64_t no_slot = 0;   // threads (any kind) that found no free slot, once per wait
};

class VcpuTracker {
 public:
  VcpuTracker(bpf::VcpuMaps& maps, const ProcFs& proc);

  void set_identity_lookup(IdentityLookup f);
  // TCG vCPU threads ("CPU n/TCG") never run KVM code, so no hook gives them
  // a slot. poll() registers those of the VMMs `f` lists, so they get
  // identity, scheduling and pinning like KVM vCPUs, and no exit counters.
  void set_known_vmms(KnownVmms f);
  // Drains newly seen threads, gives waiting ones a slot freed since, and
  // retires gone ones. Called from one thread.
  void poll();
  // Sets hv_thread.flags (enum hv_thread_flags) of a tracked thread.
  Status set_thread_flags(pid_t tid, uint32_t flags);
  // Re-resolves every instance's identity (after the overlay changed).
  void refresh_identities();

  // Read access for collectors, under the tracker's lock.
  template <typename F>
  void read(F&& f) const {
    std::lock_guard lock(mu_);
    f(instances_, stats_);
  }

 private:
  TrackedInstance* instance_for(pid_t tgid);
  void add_vcpu(uint32_t tid, const hv_new_thread& nt);
  void adopt_tcg_vcpus(const std::vector<model::Instance>& known);
  void retire_gone();
  void release(const TrackedVcpu& v, TrackedInstance* fold_into);
  void refresh_identity(TrackedInstance& inst);
  void register_others(TrackedInstance& inst);
  Result<uint32_t> take_slot(uint32_t tid, hv_thread t);
  bool slot_other(TrackedInstance& inst, TrackedThread t);
  void add_waiting_vcpu(uint32_t tid, const hv_new_thread& nt);
  void wait_for_slot(TrackedInstance& inst, const WaitingThread& w);
  void retry_waiting();
  std::map<pid_t, uint32_t> flags_;  // tid -> hv_thread.flags last set

  bpf::VcpuMaps& maps_;
  const ProcFs& proc_;
  IdentityLookup identity_;
  KnownVmms known_;
  mutable std::mutex mu_;
  std::map<pid_t, TrackedInstance> instances_;  // by VMM pid
  TrackerStats stats_;
  uint32_t next_number_ = 1;
};

// The model view of a tracked instance: identity and threads (no intent).
model::Instance as_instance(pid_t pid, const TrackedInstance& ti);

// Adds every counter of `src` to `dst` (folding a retired slot).
void accumulate(hv_vcpu& dst, const hv_vcpu& src);
void accumulate(hv_sched& dst, const hv_sched& src);

}  // namespace hvtel::discovery
