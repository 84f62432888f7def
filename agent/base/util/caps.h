// Capabilities: what hvtel serve keeps once it is running, and errors that
// name the capability a failed call needed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/util/result.h"

namespace hvtel {

// " (needs CAP_X ...)" when `err` (an errno, either sign) is a permission
// failure, else "": appended to the error of the call that needed it.
std::string needs_capability(int err, std::string_view capabilities);

// What `hvtel serve` still needs after start-up (the rest is dropped):
//   CAP_BPF, CAP_PERFMON  attach later: the VMM re-entry marker is attached
//                         and detached every sampling window (hosts without
//                         kvm_entry)
//   CAP_SYS_PTRACE        read /proc/<pid>/ of VMMs run by other users
//                         (libvirt-qemu): exe, task names, cgroups
//   CAP_DAC_READ_SEARCH   read sysfs/cgroup/procfs files and reach sockets
//                         of other owners (libvirt, OVS)
// While a module the agent waits for (openvswitch.ko) is not loaded, also
// CAP_SYS_ADMIN (loading programs against a module's BTF needs
// BPF_BTF_GET_FD_BY_ID) and CAP_SETPCAP (to drop both, bounding set
// included, once the module's programs are attached).
// Kernels without CAP_BPF (before 5.8) keep CAP_SYS_ADMIN in its place.
std::vector<int> serve_capabilities(bool module_pending);
// Drops every capability but `keep` from the permitted, effective,
// inheritable, ambient and bounding sets, and sets no_new_privs. Returns the
// names kept (those of `keep` the process had).
Result<std::vector<std::string>> drop_capabilities(const std::vector<int>& keep);

// The capability names in a CapEff/CapPrm mask of /proc/<pid>/status ("cap_bpf").
std::vector<std::string> capability_names(uint64_t mask);

}  // namespace hvtel
