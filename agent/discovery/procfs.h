// Reading VMM processes and threads from procfs. The root is injectable so
// discovery is unit-tested over fixture trees.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/util/result.h"

namespace hvtel::discovery {

class ProcFs {
 public:
  explicit ProcFs(std::string root = "/proc") : root_(std::move(root)) {}
  virtual ~ProcFs() = default;

  virtual Result<std::vector<std::string>> cmdline(pid_t pid) const;
  virtual Result<std::string> comm(pid_t pid) const;
  virtual Result<std::string> thread_comm(pid_t pid, pid_t tid) const;
  // Field 22 of /proc/<pid>/stat: tells a recycled pid from the original.
  virtual Result<uint64_t> start_time(pid_t pid) const;
  virtual bool thread_alive(pid_t pid, pid_t tid) const;
  virtual std::vector<pid_t> threads(pid_t pid) const;
  virtual std::vector<pid_t> processes() const;
  // The vCPU fd index of a thread blocked in ioctl(KVM_RUN): from
  // task/<tid>/syscall (nr 16, arg2 0xae80) and the fd's link
  // "anon_inode:kvm-vcpu:N". nullopt when the thread is elsewhere.
  virtual std::optional<int> vcpu_fd_index(pid_t pid, pid_t tid) const;
  // The interfaces of the tun/tap devices a process holds: the "iff:" line of
  // fdinfo/<fd> for each fd linked to /dev/net/tun (QEMU's taps, those libvirt
  // opened and passed to it too). Sorted, without duplicates.
  virtual std::vector<std::string> tun_interfaces(pid_t pid) const;

 private:
  std::string root_;
};

struct VmmIdentity {
  std::string instance_id;    // -uuid when valid, else "pid-<tgid>"
  std::string instance_name;  // -name guest=X / -name X, else the process name
};

// Identity from a VMM's command line (QEMU syntax: "-uuid U", "-name
// guest=X,debug-threads=on", "-name X"; ",," escapes a comma).
VmmIdentity identity_from_cmdline(const std::vector<std::string>& argv, std::string_view comm,
                                  pid_t tgid);
// "CPU 3/KVM" -> 3. QEMU with debug-threads=on names vCPU threads this way.
std::optional<int> vcpu_index_from_comm(std::string_view comm);
// "CPU 3/TCG": a vCPU QEMU emulates itself, which never enters KVM.
bool is_tcg_vcpu_comm(std::string_view comm);

// A QEMU whose vCPUs run under TCG: no KVM code runs for them, so they have
// no VM exits (hvtel status says so; scheduling and pinning still apply).
struct TcgVmm {
  pid_t pid = 0;
  VmmIdentity identity;
  int vcpus = 0;
};
std::vector<TcgVmm> find_tcg_vmms(const ProcFs& proc);
bool is_uuid(std::string_view s);

}  // namespace hvtel::discovery
