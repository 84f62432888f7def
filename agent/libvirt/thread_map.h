// Maps a running libvirt/QEMU domain to its threads without talking to QEMU.
//
// QMP (query-cpus-fast) would be exact but needs a read-write connection and
// taints the domain, so it is never used. Instead, in order:
//   1. cgroups: libvirt puts every vCPU thread in its own cgroup
//      (vcpuN/emulator/iothreadN); the domain's cgroup is found from
//      /proc/<pid>/cgroup, not guessed, so cgroup v1 (/machine/qemu-<id>-<name>
//      .libvirt-qemu) and v2 (machine.slice/machine-qemu\x2d…scope/libvirt)
//      both work, with any mount layout listed in mountinfo.
//   2. thread names: /proc/<pid>/task/*/comm = "CPU <n>/KVM" (or /TCG),
//      "IO iothread<n>"; needs debug-threads=on, which libvirt always passes.
// Every path is below an injectable root so tests run on fixture trees.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/model/instance.h"
#include "base/util/result.h"

namespace hvtel::libvirt {

struct ThreadMapOptions {
  std::string root = "/";                       // prefix for every path below
  std::string pid_dir = "/run/libvirt/qemu";    // <pid_dir>/<domain>.pid
  std::string proc = "/proc";
  std::string mountinfo = "/proc/self/mountinfo";  // where cgroup mounts are looked up
};

enum class ThreadMapMethod { kNone, kCgroupV1, kCgroupV2, kThreadNames };
const char* method_name(ThreadMapMethod m);

struct ThreadMap {
  pid_t pid = 0;
  ThreadMapMethod method = ThreadMapMethod::kNone;
  std::string cgroup_dir;  // the domain's cgroup directory (holding vcpuN/), if found
  std::vector<model::ThreadInfo> vcpus;      // sorted by index, then tid
  std::vector<model::ThreadInfo> emulator;   // index -1
  std::vector<model::ThreadInfo> iothreads;  // index = IOThread id
  // Threads sitting in a vCPU cgroup that are not that vCPU: KVM's
  // kvm-nx-lpage-recovery worker joins the cgroup of the vCPU that first
  // ran (index = that vCPU). Kept apart so pin checks do not misread them.
  std::vector<model::ThreadInfo> others;
  // Distinct vCPU indexes found != configured count (hotplug in flight, a
  // vCPU cgroup missing, debug-threads off). Reported, not an error.
  bool vcpu_count_mismatch = false;
  std::string mismatch;    // human-readable detail when vcpu_count_mismatch
};

class ThreadMapper {
 public:
  explicit ThreadMapper(ThreadMapOptions opts = {});

  // QEMU pid from the libvirt pidfile; fails when missing, malformed or stale.
  Result<pid_t> read_pid(const std::string& domain_name) const;

  // Full map. `pid` 0 means "read the pidfile". `configured_vcpus` (online
  // vCPUs) is used for the cross-check only.
  Result<ThreadMap> map(const std::string& domain_name, int configured_vcpus, pid_t pid = 0) const;

 private:
  std::string path(const std::string& p) const;
  Result<ThreadMap> from_cgroup(pid_t pid) const;
  Result<ThreadMap> from_names(pid_t pid) const;

  ThreadMapOptions opts_;
};

}  // namespace hvtel::libvirt
