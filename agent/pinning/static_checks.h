// Static pinning checks: compare resolved intent with itself (overlaps), with
// the host policy (shared on dedicated, emulator policy) and with the kernel's
// view of each thread (affinity drift). Pure functions over their inputs; the
// only system access is through PlacementReader.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pinning/classes.h"
#include "pinning/host_policy.h"
#include "pinning/intent.h"

namespace hvtel::pinning {

// One reason for a (instance, class) to be active. Several findings may hold
// the same key; the key is active while at least one does.
struct Finding {
  std::string instance_id;
  ViolationClass cls = ViolationClass::kAffinityDrift;
  pid_t tid = 0;          // PV2: the drifting thread
  int vcpu = -1;          // PV2: its vCPU index (-1 for emulator/iothread)
  std::vector<int> cpus;  // PV2: actual set; PV3: the overlap; PV6/PV7: the offending pCPUs
  std::string detail;     // one line for logs, events and the CLI

  bool operator==(const Finding&) const = default;
};

// The kernel's view of one thread.
struct ThreadPlacement {
  std::vector<int> cpus_allowed;                     // Cpus_allowed_list
  std::optional<std::vector<int>> cgroup_effective;  // cpuset effective CPUs, when readable
  std::string cgroup_path;  // the thread's cpuset cgroup, relative to the hierarchy root
  // The cgroup is libvirt's per-thread one (…/vcpuN, …/emulator, …/iothreadN),
  // whose cpuset libvirt sets to the pin itself: compare for equality. Any
  // other cgroup only has to contain the pin.
  bool per_thread_cgroup = false;
};

// Reads thread placement. nullopt when the thread is gone or unreadable
// (threads come and go between discovery and the check; that is not drift).
class PlacementReader {
 public:
  virtual ~PlacementReader() = default;
  virtual std::optional<ThreadPlacement> read(pid_t pid, pid_t tid) const = 0;
};

// /proc/<pid>/task/<tid>/status + /proc/<pid>/task/<tid>/cgroup, and the
// cgroup's cpuset.cpus.effective (v2: <cgroup_root><path>, then
// <cgroup_root>/unified<path>) or cpuset.effective_cpus (v1:
// <cgroup_root>/cpuset<path>). Roots are injectable for tests.
class ProcPlacementReader : public PlacementReader {
 public:
  explicit ProcPlacementReader(std::string proc_root = "/proc",
                               std::string cgroup_root = "/sys/fs/cgroup");
  std::optional<ThreadPlacement> read(pid_t pid, pid_t tid) const override;

 private:
  std::string proc_root_;
  std::string cgroup_root_;
};

struct CheckOptions {
  // Also check threads with nothing declared against "all host CPUs". Off by
  // default: without libvirt nobody sets that affinity, and cgroup/isolcpus
  // defaults would read as drift.
  bool check_undeclared_threads = false;
};

// PV2 affinity_drift. Detail:
//   "tid=4242 vcpu=0 expected=1 actual=0 via=affinity"
//   "tid=4243 emulator expected=0 actual=0-1 via=cgroup:/machine/qemu-1-a.libvirt-qemu/emulator"
//   "tid=4244 iothread=1 expected=0 actual=1 via=affinity"
std::vector<Finding> check_affinity_drift(const std::vector<ResolvedIntent>& intents,
                                          const PlacementReader& reader,
                                          const CheckOptions& options = {});

// PV3 dedicated_overlap: D(I) ∩ D(J), and D(I) ∩ any declared non-dedicated set
// of J (vcpu cpuset, vcpupins of floating vCPUs, emulatorpin, iothreadpins).
// Both instances get a finding; detail "<mine> overlaps <theirs> of <other> on <cpus>":
//   I: "dedicated overlaps emulatorpin of inst-b on 5"
//   J: "emulatorpin overlaps dedicated of inst-a on 5"
std::vector<Finding> check_dedicated_overlap(const std::vector<ResolvedIntent>& intents);

// PV7 shared_on_dedicated (static part): a non-dedicated instance's declared
// sets (mixed: only its floating vCPU pins) intersect cpu_dedicated_set, or an
// explicitly shared instance declares nothing and so floats over every host
// CPU. Needs cpu_dedicated_set. Detail:
//   "vcpu cpuset 2-5 overlaps cpu_dedicated_set on 4-5"
//   "no cpuset: floats over all host CPUs, including cpu_dedicated_set 4-5"
std::vector<Finding> check_shared_on_dedicated(const std::vector<ResolvedIntent>& intents,
                                               const HostPolicy& policy,
                                               const std::vector<int>& host_cpus);

// PV6-lite emulator_policy_mismatch (dedicated instances, Nova extra spec
// hw:emulator_threads_policy): `share` with cpu_shared_set -> emulatorpin and
// iothreadpins within cpu_shared_set; `isolate` -> emulatorpin is one pCPU
// outside D(I). Unset policy: emulator on the instance's own pCPUs is what
// Nova does, so nothing is reported.
std::vector<Finding> check_emulator_policy(const std::vector<ResolvedIntent>& intents,
                                           const HostPolicy& policy);

// PV13 pinned_cpu_unavailable: a pCPU of D(I) is offline, or runs the
// `powersave` governor of a generic cpufreq driver (pinned to the lowest
// frequency), while I runs. Under intel_pstate and amd-pstate-epp in active
// mode `powersave` is their dynamic default, not a pin to the floor: not
// reported. One finding per instance. Detail:
//   "pCPU 3 offline"   "pCPU 3 offline; pCPU 5 governor powersave"
std::vector<Finding> check_pinned_cpu_unavailable(const std::vector<ResolvedIntent>& intents,
                                                  const CpuAvailability& cpus);

// PV9 thread_policy (static part), for instances with dedicated pCPUs, a
// hw:cpu_thread_policy and known SMT siblings (cpuN/topology/thread_siblings_list):
//   require: the vCPUs fill whole host cores. Taken in index order, each run of
//     w vCPUs (w = the host's threads per core) sits on one core's siblings; on
//     a host without SMT nothing can. Detail:
//     "thread_policy=require: vcpus 2-3 on pCPUs 5,6, not siblings of one core"
//     "thread_policy=require: the host has no SMT siblings"
//   isolate: the siblings of D(I) stay unused: not another vCPU of I, not any
//     declared set of another instance, not cpu_shared_set. Detail:
//     "thread_policy=isolate: vcpus 0,1 on sibling pCPUs 4,28"
//     "thread_policy=isolate: sibling pCPU 28 of 4 is in dedicated of inst-b"
// One finding per reason. A sibling that is busy although nobody declares it
// (host tasks, an IRQ storm) is PV9's run-time part: SiblingBusyDetector.
std::vector<Finding> check_thread_policy(const std::vector<ResolvedIntent>& intents,
                                         const HostPolicy& policy,
                                         const std::map<int, std::vector<int>>& siblings);

// Where a vCPU thread last ran (hv_sched.cpu, written by sched_switch), or
// nullopt when the kernel has not seen it run.
using LastCpuFn = std::function<std::optional<int>(pid_t tid)>;

// PV11 numa_misplaced: a vCPU whose numatune binds it to host NUMA nodes
// (ThreadIntent::numa_nodes) last ran on a pCPU of another node. cpu_node is
// the host's pCPU -> node map; a host with fewer than two nodes has nothing to
// misplace. One finding per misplaced vCPU. Detail:
//   "vcpu=0 tid=4242 pcpu=1 node=1 numatune=0"
std::vector<Finding> check_numa_misplaced(const std::vector<ResolvedIntent>& intents,
                                          const std::map<int, int>& cpu_node, const LastCpuFn& last_cpu);

// PV2, PV3, PV6 and PV7, in class order (PV9, PV11 and PV13 need the host's sysfs or the kernel).
std::vector<Finding> run_static_checks(const std::vector<ResolvedIntent>& intents, const HostPolicy& policy,
                                       const std::vector<int>& host_cpus, const PlacementReader& reader,
                                       const CheckOptions& options = {});

}  // namespace hvtel::pinning
