// PV10 floating_stacking: two or more runnable vCPUs of a floating (not
// dedicated) instance queue on one pCPU while another pCPU they may both run on
// sits idle. The kernel's load balancer normally spreads them within
// milliseconds; when it does not (isolcpus= on the shared CPUs, F19, or a
// cpuset partition without load balancing), the guest loses a CPU's worth of
// time while the host looks half idle.
//
// Judged once a second (reconciles run every poll, 250 ms) over the second
// since the previous judgement, from counters the kernel already keeps: each vCPU's run-queue wait (hv_sched,
// sched_switch) and each pCPU's idle time (/proc/stat). Stateful (deltas), so
// it lives in its own object; the judgement itself is a pure function of the
// two samples.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/util/result.h"
#include "pinning/intent.h"
#include "pinning/static_checks.h"

namespace hvtel::pinning {

// Where a vCPU thread last ran (or is queued) and its cumulative run-queue
// wait, a wait in progress included; nullopt when the kernel has not seen it.
struct VcpuRun {
  int cpu = -1;
  uint64_t wait_ns = 0;
};
using VcpuRunFn = std::function<std::optional<VcpuRun>(pid_t tid)>;

// Cumulative per-pCPU time from /proc/stat (`cpuN` lines), in nanoseconds:
// idle (idle + iowait) and total (every field).
struct CpuTimes {
  uint64_t idle_ns = 0;
  uint64_t total_ns = 0;
};
// Parses /proc/stat text; ticks_per_s is USER_HZ (sysconf(_SC_CLK_TCK)).
Result<std::map<int, CpuTimes>> parse_proc_stat_cpus(std::string_view text, uint64_t ticks_per_s);
Result<std::map<int, CpuTimes>> read_cpu_times(const std::string& proc_root = "/proc");

// Shared by the once-a-second judgements (PV10 here, PV9's run-time part in siblings.h).
int percent(uint64_t part, uint64_t whole);  // rounded; 0 when whole is 0
bool interval_due(uint64_t last_ns, uint64_t now_ns, uint64_t interval_ns);
// The findings whose instance is still in `intents` (a judgement held between two samples).
std::vector<Finding> still_tracked(const std::vector<Finding>& findings,
                                   const std::vector<ResolvedIntent>& intents);

// A vCPU PV10 judges: not dedicated (a mixed instance's floating vCPUs, every
// vCPU of a shared one) and allowed on two or more pCPUs.
bool is_floating_vcpu(const ResolvedIntent& r, const ThreadIntent& t);

struct StackingOptions {
  // A vCPU counts as stacked when it waited at least this share of the interval.
  double min_wait_share = 0.10;
  // The pCPU it could have run on was idle at least this share of the interval.
  double min_idle_share = 0.50;
  // Judged at most this often: reconciles run every poll (250 ms), too short for /proc/stat's 10 ms ticks.
  uint64_t interval_ns = 1'000'000'000;
};

class StackingDetector {
 public:
  explicit StackingDetector(StackingOptions opts = {}) : opts_(opts) {}

  // Whether a new judgement is due at monotonic time now_ns (interval_ns since the last one).
  bool due(uint64_t now_ns) const;
  // The last judgement, for the instances still in `intents` (between two due ones).
  std::vector<Finding> held(const std::vector<ResolvedIntent>& intents) const;
  // One sample at monotonic time now_ns. Returns the findings for the interval
  // since the previous sample: none on the first, and none for a vCPU or pCPU
  // that has no previous value. Considers the floating vCPUs of every instance.
  // One finding per stacked pCPU. Detail:
  //   "vcpus 0,1 stacked on pCPU 1 (waited 49%,48%) while pCPU 0 of their cpuset 0-1 idled 97%"
  std::vector<Finding> sample(const std::vector<ResolvedIntent>& intents, const VcpuRunFn& run,
                              const std::map<int, CpuTimes>& cpus, uint64_t now_ns);

 private:
  StackingOptions opts_;
  std::map<pid_t, uint64_t> wait_;  // tid -> wait_ns at the previous sample
  std::map<int, CpuTimes> cpus_;    // pCPU -> times at the previous sample
  uint64_t last_ns_ = 0;
  std::vector<Finding> last_;  // the judgement of the previous sample
};

}  // namespace hvtel::pinning
