// PV9 thread_policy at run time: under hw:cpu_thread_policy=isolate Nova keeps
// the SMT siblings of an instance's dedicated pCPUs free, so that nothing shares
// their cores. The static check (check_thread_policy) catches a sibling that is
// in someone's declared set; this one catches a sibling that is busy anyway: host
// tasks, a VMM started by hand, an IRQ storm, a cgroup that drifted over it.
//
// Judged once a second from /proc/stat's idle time (the same read as PV10's):
// what ran there is not known, only that the sibling was not idle. Kernel
// housekeeping on an otherwise idle pCPU stays far below the threshold.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "pinning/intent.h"
#include "pinning/stacking.h"
#include "pinning/static_checks.h"

namespace hvtel::pinning {

struct SiblingOptions {
  // A sibling counts as used when it was busy at least this share of the interval.
  double min_busy_share = 0.10;
  uint64_t interval_ns = 1'000'000'000;
};

class SiblingBusyDetector {
 public:
  explicit SiblingBusyDetector(SiblingOptions opts = {}) : opts_(opts) {}

  // True when some instance has thread_policy=isolate, dedicated pCPUs and siblings outside them.
  static bool applies(const std::vector<ResolvedIntent>& intents,
                      const std::map<int, std::vector<int>>& siblings);
  bool due(uint64_t now_ns) const;
  std::vector<Finding> held(const std::vector<ResolvedIntent>& intents) const;
  // One sample: findings for the interval since the previous one (none on the first). One per
  // (instance, busy sibling). Detail:
  //   "thread_policy=isolate: sibling pCPU 2 of 3 busy 83% of the last 1.0 s"
  std::vector<Finding> sample(const std::vector<ResolvedIntent>& intents,
                              const std::map<int, std::vector<int>>& siblings,
                              const std::map<int, CpuTimes>& cpus, uint64_t now_ns);

 private:
  SiblingOptions opts_;
  std::map<int, CpuTimes> cpus_;
  uint64_t last_ns_ = 0;
  std::vector<Finding> last_;
};

}  // namespace hvtel::pinning
