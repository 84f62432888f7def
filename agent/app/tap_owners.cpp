#include "app/tap_owners.h"

#include <net/if.h>

namespace hvtel::app {

std::optional<ovs_dp::UpcallOwner> TapOwners::owner(const std::string& iface) {
  auto it = holders_.find(iface);
  if (it == holders_.end()) {
    const auto now = std::chrono::steady_clock::now();
    if (scanned_ && now - *scanned_ < kRescan) return std::nullopt;
    rescan();
    scanned_ = now;
    it = holders_.find(iface);
    if (it == holders_.end()) return std::nullopt;
  }
  const auto& id = names_.instance(it->second);
  return ovs_dp::UpcallOwner{id.instance_id, id.instance_name, it->second};
}

void TapOwners::rescan() {
  holders_.clear();
  for (pid_t pid : proc_.processes())
    for (auto& iface : proc_.tun_interfaces(pid)) holders_[std::move(iface)] = pid;
}

std::set<uint32_t> tap_ifindexes(const discovery::ProcFs& proc, pid_t pid) {
  std::set<uint32_t> out;
  for (const auto& iface : proc.tun_interfaces(pid))
    if (unsigned idx = if_nametoindex(iface.c_str()); idx != 0) out.insert(idx);
  return out;
}

}  // namespace hvtel::app
