// The violation registry: current static violations, per-(instance, class)
// counters fed by the static checks and by the kernel side, a bounded and
// rate-limited event stream for the live CLI, and the Prometheus collector for
// every hvtel_pinning_* / hvtel_pcpu_foreign_* series.
//
// Thread safety: every public method may be called from any thread (the
// reconcile loop, the BPF reader, the scrape handler, CLI subscribers). One
// mutex guards all state; each call holds it for a bounded amount of work, and
// Collect() only copies numbers out.
//
// Cardinality: series exist only for *tracked* instances, the instance ids
// passed to the last reconcile() (instances with intent). Kernel counts, pCPU
// foreign time and events for other ids are dropped and counted in
// hvtel_pinning_orphan_updates_total. When an instance stops being tracked,
// its series go away (and restart from 0 if it comes back, a normal counter
// reset for Prometheus).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "base/util/seq_ring.h"
#include "pinning/classes.h"
#include "pinning/static_checks.h"

namespace hvtel::pinning {

// Nanoseconds on CLOCK_MONOTONIC, the base of bpf_ktime_get_ns().
using Clock = std::function<uint64_t()>;
uint64_t monotonic_ns();

enum class EventKind {
  kKernel,   // reported by the kernel side (PV1, PV4, PV5, PV7 runtime, PV8, PV12)
  kRaised,   // a static finding appeared
  kCleared,  // a static (instance, class) stopped being active; duration_ns = how long it was
};
std::string_view event_kind_name(EventKind k);  // "kernel", "raised", "cleared"

struct ViolationEvent {
  uint64_t seq = 0;      // assigned by the registry: 1, 2, 3, ...
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC; 0 on publish() means "now" (registry clock)
  EventKind kind = EventKind::kKernel;
  std::string instance_id;
  ViolationClass cls = ViolationClass::kOffpinRun;
  int vcpu = -1;  // -1 when not about one vCPU
  int pcpu = -1;  // -1 when not about one pCPU
  uint64_t duration_ns = 0;
  std::string intruder_comm;  // PV5/PV12: who ran / who changed the pin
  pid_t intruder_pid = 0;
  std::string detail;
};

// One line for the live CLI and logs:
// "1001.500000 raised affinity_drift inst-a vcpu=0 pcpu=0: tid=11 vcpu=0 ..."
// (time in seconds on the monotonic clock; vcpu/pcpu/dur/intruder only when set).
std::string format_event(const ViolationEvent& e);

struct EventBatch {
  std::vector<ViolationEvent> events;  // seq ascending
  uint64_t cursor = 0;  // pass to the next events_since(): the last seq returned or skipped
  uint64_t missed = 0;  // events after the given seq that already left the ring
};

struct RegistryOptions {
  size_t ring_capacity = 4096;
  uint32_t events_per_second = 10;  // token bucket per (instance, class)
  uint32_t event_burst = 20;
  Clock clock;  // empty: monotonic_ns
  // Series of every class at 0 for every tracked instance (25 per instance);
  // else a class's series appear when it first fires (`hvtel serve`'s default:
  // the series budget, docs/metrics.md).
  bool zero_series = true;
};

// Config sources for hvtel_pinning_config_errors_total{source}.
inline constexpr std::string_view kSourceNovaConf = "nova_conf";
inline constexpr std::string_view kSourceInventory = "inventory";

class ViolationRegistry : public prometheus::Collectable {
 public:
  explicit ViolationRegistry(RegistryOptions options = {});

  // Replaces the static-violation set. `tracked`: ids of the instances with
  // intent; `findings`: the current run_static_checks() result (findings for
  // untracked ids are ignored). Per (instance, class) of a static class:
  // inactive -> active counts 1 and publishes a `raised` event per new
  // finding; active -> active adds the time since the previous reconcile to
  // the seconds counter; active -> inactive publishes a `cleared` event.
  // Seconds therefore run from the first reconcile that saw a violation to the
  // last one that still saw it. Call every second and on intent changes.
  void reconcile(const std::vector<std::string>& tracked, const std::vector<Finding>& findings);

  // Kernel-side counts for an (instance, class), as deltas since the last call.
  // Returns false (and counts an orphan update) for untracked instances.
  bool add_kernel_counts(std::string_view instance_id, ViolationClass cls, uint64_t count_delta,
                         uint64_t ns_delta);

  // Foreign runtime on a pCPU dedicated to `owner_instance_id` (PV5 attribution).
  bool add_foreign_ns(int cpu, std::string_view owner_instance_id, IntruderKind intruder,
                      uint64_t ns);

  // Publishes one event (normally from the kernel side). Returns false when the
  // instance is untracked (orphan) or its (instance, class) bucket is empty
  // (counted in hvtel_pinning_events_dropped_total).
  bool publish(ViolationEvent event);

  // Events with seq > `since`, at most `max`. Start with since = 0 for the
  // whole ring, or last_seq() for new events only.
  EventBatch events_since(uint64_t since, size_t max = 1024) const;
  // As events_since, but waits up to `timeout` for at least one event.
  EventBatch wait_events_since(uint64_t since, std::chrono::milliseconds timeout,
                               size_t max = 1024) const;
  uint64_t last_seq() const;

  // A config file (nova.conf, inventory) failed to load or parse.
  void note_config_error(std::string_view source);

  // Introspection for tests and the CLI.
  struct Counters {
    uint64_t count = 0;
    uint64_t ns = 0;
    bool active = false;
  };
  std::optional<Counters> counters(std::string_view instance_id, ViolationClass cls) const;
  std::vector<Finding> active_findings() const;  // sorted by instance, class
  uint64_t events_dropped() const;
  uint64_t orphan_updates() const;

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Bucket {
    uint64_t nanotokens = 0;  // tokens * 1e9, so refills are exact integers
    uint64_t last_ns = 0;
    bool primed = false;
  };
  struct KeyState {
    uint64_t count = 0;
    uint64_t ns = 0;
    bool active = false;
    uint64_t active_since_ns = 0;  // first reconcile that saw it active
    uint64_t accounted_ns = 0;     // last time ns was advanced to
    std::vector<Finding> findings;
    Bucket bucket;
  };
  struct InstanceState {
    std::map<ViolationClass, KeyState> classes;
    std::map<std::pair<int, IntruderKind>, uint64_t> foreign_ns;
  };

  bool publish_locked(ViolationEvent event, uint64_t now);
  bool take_token_locked(Bucket& b, uint64_t now);
  EventBatch collect_events_locked(uint64_t since, size_t max) const;

  const RegistryOptions options_;
  Clock clock_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, InstanceState, std::less<>> instances_;
  SeqRing<ViolationEvent> ring_;
  uint64_t events_dropped_ = 0;
  uint64_t orphan_updates_ = 0;
  std::map<std::string, uint64_t, std::less<>> config_errors_;
};

}  // namespace hvtel::pinning
