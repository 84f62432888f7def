// PinSync: the bridge between the pinning intent and the scheduler probes.
//
// Once per tick it (1) resolves the intent of every tracked instance through
// the PinningMonitor (static checks PV2/PV3/PV7 happen there), (2) writes pin
// bitmaps, thread flags and dedicated pCPU owners into the BPF maps, and
// (3) feeds the kernel's per-event counters (PV1/PV4/PV7/PV8/PV12), the
// foreign time on dedicated pCPUs (PV5) and ring-buffer events back into the
// violation registry.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/bpf/vcpu_maps.h"
#include "discovery/vcpu_tracker.h"
#include "pinning/monitor.h"

struct ring_buffer;

namespace hvtel::sched {

struct PinSyncOptions {
  // PV5 fires for each window in which non-owner tasks ran longer than the
  // threshold on a dedicated pCPU (hvtel_pcpu_foreign_seconds_total counts
  // every nanosecond anyway).
  uint64_t intruder_threshold_ns = 10'000'000;
  uint64_t intruder_window_ns = 1'000'000'000;
};

class PinSync {
 public:
  PinSync(discovery::VcpuTracker& tracker, bpf::KernelVcpuMaps& maps,
          pinning::PinningMonitor& monitor, PinSyncOptions opts = {});
  ~PinSync();
  PinSync(const PinSync&) = delete;
  PinSync& operator=(const PinSync&) = delete;

  // Optional: instances from another source (libvirt) that carry intent,
  // merged by pid over the procfs view.
  using IntentSource = std::function<std::vector<model::Instance>()>;
  void set_intent_source(IntentSource f) { intent_source_ = std::move(f); }

  void tick();
  // Re-reads which processes are libvirtd/virtqemud (also called on a libvirt
  // reconnect, so a restarted daemon is allowed before it touches a vCPU).
  void refresh_allowlist();

  // Called by the ring-buffer callback.
  void on_event(const hv_event& e);

 private:
  struct Seen {
    pid_t tid = 0;
    std::array<uint64_t, HV_PV_CLASSES> count{}, ns{};
  };
  // One read of the tracker per tick, in the shapes each step needs.
  struct TrackerView {
    std::vector<model::Instance> instances;
    std::map<pid_t, uint32_t> number_of;                      // VMM pid -> instance number
    std::map<uint32_t, std::string> instance_ids;             // instance number -> id
    std::map<pid_t, uint32_t> slot_of;                        // tid -> slot (may be HV_NO_SLOT)
    std::map<uint32_t, std::pair<pid_t, std::string>> live;   // slot -> (tid, instance id)
  };
  TrackerView read_tracker() const;
  void push_intent(const TrackerView& view, const std::vector<pinning::ResolvedIntent>& intents);
  void pull_counts(const TrackerView& view);
  std::set<uint32_t> allowed_;  // tgids in hv_affinity_allow

  discovery::VcpuTracker& tracker_;
  bpf::KernelVcpuMaps& maps_;
  pinning::PinningMonitor& monitor_;
  PinSyncOptions opts_;
  IntentSource intent_source_;
  ring_buffer* ring_ = nullptr;
  std::map<uint32_t, Seen> seen_;                       // by slot
  std::vector<std::array<uint64_t, HV_INTRUDERS>> foreign_seen_;
  std::vector<uint64_t> window_foreign_;  // pCPU -> foreign ns in the current window
  uint64_t window_start_ns_ = 0;
  std::map<uint32_t, std::string> instance_ids_;        // instance number -> id
  std::vector<uint32_t> owners_;                        // pCPU -> owner instance number
  unsigned ticks_ = 0;
  int ncpu_ = 0;
};

}  // namespace hvtel::sched
