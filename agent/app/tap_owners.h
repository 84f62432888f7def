// The instance behind a tap, for `hvtel trace upcalls`: the VMM process that
// holds the tap open (procfs fdinfo; libvirt passes QEMU the tap fds it
// opens), named as the other traces name VMMs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "discovery/procfs.h"
#include "kvm/exit_trace.h"
#include "ovs/datapath/upcall_trace.h"

namespace hvtel::app {

class TapOwners {
 public:
  // An interface nobody was seen holding is looked for again at most this often.
  static constexpr std::chrono::seconds kRescan{5};

  TapOwners(const discovery::ProcFs& proc, kvm::VmmNamer& names) : proc_(proc), names_(names) {}
  std::optional<ovs_dp::UpcallOwner> owner(const std::string& iface);

 private:
  void rescan();
  const discovery::ProcFs& proc_;
  kvm::VmmNamer& names_;
  std::map<std::string, pid_t> holders_;
  std::optional<std::chrono::steady_clock::time_point> scanned_;
};

// The ifindexes (in this network namespace) of the taps `pid` holds.
std::set<uint32_t> tap_ifindexes(const discovery::ProcFs& proc, pid_t pid);

}  // namespace hvtel::app
