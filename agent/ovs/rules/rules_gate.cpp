#include "ovs/rules/rules_gate.h"

#include <fmt/core.h>

#include <unordered_map>

namespace hvtel::ovsdb {

void RuleGate::observe(const BridgeFlows& flows, TimePoint now) {
  if (!flows.view_complete) return;  // a partial view would elect the wrong cookie
  std::unordered_map<uint64_t, size_t> counts;
  for (const auto& f : flows.flows) {
    if (f.cookie != 0) ++counts[f.cookie];
  }
  uint64_t best = 0;
  size_t best_n = 0, second_n = 0;
  for (const auto& [cookie, n] : counts) {
    if (n > best_n) {
      second_n = best_n;
      best = cookie;
      best_n = n;
    } else if (n > second_n) {
      second_n = n;
    }
  }
  if (best_n == 0 || best_n == second_n) return;  // none, or a tie mid-restart: keep the old one
  auto it = cookies_.find(flows.bridge);
  if (it == cookies_.end()) {
    cookies_.emplace(flows.bridge, CookieState{best, now});
  } else if (it->second.cookie != best) {
    it->second = CookieState{best, now};
  }
}

std::optional<uint64_t> RuleGate::dominant_cookie(const std::string& bridge) const {
  auto it = cookies_.find(bridge);
  if (it == cookies_.end()) return std::nullopt;
  return it->second.cookie;
}

std::optional<std::string> RuleGate::bridge_hold(const BridgeFlows& flows, TimePoint now) const {
  if (!flows.view_complete) return std::string("flow view incomplete");
  if (now - flows.last_change < cfg_.quiet) {
    return fmt::format("bridge not quiet for {}s", cfg_.quiet.count());
  }
  return std::nullopt;
}

bool RuleGate::in_restart_window(const std::string& bridge, TimePoint now) const {
  auto it = cookies_.find(bridge);
  return it != cookies_.end() && now - it->second.since < cfg_.restart_window;
}

bool RuleGate::port_settled(const InterfaceInfo& iface, TimePoint now) const {
  return now - iface.created_at >= cfg_.port_grace &&
         now - iface.ofport_changed_at >= cfg_.port_grace;
}

bool RuleGate::missing_ofport_settled(const BridgeInfo& bridge, int64_t ofport,
                                      TimePoint now) const {
  auto it = bridge.released_ofports.find(ofport);
  return it == bridge.released_ofports.end() || now - it->second >= cfg_.port_grace;
}

bool RuleGate::domain_settled(const DomainView& domain, TimePoint now) const {
  return now - domain.first_seen >= cfg_.port_grace;
}

}  // namespace hvtel::ovsdb
