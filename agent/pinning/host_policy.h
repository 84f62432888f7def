// Host CPU policy: what Nova was told to do with the host's CPUs (nova.conf)
// and what the host has (sysfs topology).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/util/result.h"

namespace hvtel::pinning {

// Parses Nova's CPU set syntax (also libvirt's cpuset syntax): comma-separated
// CPUs and ranges, `^N` / `^N-M` exclusions applied after every inclusion,
// blanks around items and empty items ignored: "4-23,^8,28-47".
// Errors (no partial result): bad numbers, reversed ranges, CPU ids above
// kMaxCpuId, and a spec that leaves no CPU (nova-compute refuses those too).
inline constexpr int kMaxCpuId = 8191;
Result<std::vector<int>> parse_nova_cpu_set(std::string_view spec);

struct HostPolicy {
  // [compute] options (Train+). nullopt when absent or empty.
  std::optional<std::vector<int>> cpu_dedicated_set;
  std::optional<std::vector<int>> cpu_shared_set;
  // Legacy [DEFAULT] options, reported only: hvtel takes no decision from them.
  std::optional<std::vector<int>> vcpu_pin_set;
  std::optional<int> reserved_host_cpus;
  // Combinations nova-compute itself rejects or that make the checks weaker
  // (overlapping sets, legacy + new options). Not fatal: log them.
  std::vector<std::string> warnings;
};

// Parses the text of nova.conf (oslo.config INI: `[section]`, `key = value`
// or `key: value`, `#`/`;` comment lines, indented continuation lines, last
// assignment wins). Only the options above are interpreted; everything else
// is ignored. Errors name the line: "line 12: [compute] cpu_dedicated_set: ...".
Result<HostPolicy> parse_nova_conf(std::string_view text);
// Reads and parses a nova.conf file; errors are prefixed with the path.
Result<HostPolicy> load_nova_conf(const std::string& path);

// The host's CPUs as sysfs describes them.
struct HostTopology {
  std::vector<int> online;                       // /sys/devices/system/cpu/online
  std::map<int, std::vector<int>> siblings;      // cpuN/topology/thread_siblings_list
  std::map<int, int> numa_node;                  // from node*/cpulist; absent without NUMA sysfs
};

// Reads the topology below sysfs_root (normally "/sys"; a fixture directory
// in tests). `online` is required; siblings and NUMA nodes are best effort.
Result<HostTopology> read_host_topology(const std::string& sysfs_root = "/sys");

// What the host's pCPUs can give right now (PV13), read at every reconcile: the
// online CPUs and, where cpufreq exists, each CPU's governor.
struct CpuAvailability {
  std::vector<int> online;              // /sys/devices/system/cpu/online
  std::map<int, std::string> governor;  // cpuN/cpufreq/scaling_governor; absent without cpufreq
  std::map<int, std::string> driver;    // cpuN/cpufreq/scaling_driver
};

// Reads the online list and the governors of `cpus` below sysfs_root. A CPU
// without cpufreq (VMs, disabled drivers) simply has no governor entry.
Result<CpuAvailability> read_cpu_availability(const std::string& sysfs_root, const std::vector<int>& cpus);

// pCPU -> NUMA node from node*/cpulist below sysfs_root (PV11, read at every
// reconcile that has a numatune to check). Empty without NUMA sysfs; a
// malformed cpulist is an error.
Result<std::map<int, int>> read_numa_nodes(const std::string& sysfs_root);

// Cross-checks the policy against the host: dedicated/shared CPUs that are
// not online. Returns human-readable findings (empty when consistent).
std::vector<std::string> check_policy_against_topology(const HostPolicy& policy,
                                                       const HostTopology& topo);

}  // namespace hvtel::pinning
