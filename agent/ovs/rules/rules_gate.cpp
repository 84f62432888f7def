#include "ovs/rules/rules_gate.h"

#include <fmt/core.h>

#include <algorithm>
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

void RuleGate::record(Steps& steps, size_t n, TimePoint now) const {
  if (steps.empty() || steps.back().second != n) steps.emplace_back(now, n);
  // Keep T + W, plus the last point before it (the value at its start).
  const TimePoint horizon = now - cfg_.flow_loss_hold - cfg_.flow_loss_window;
  while (steps.size() > 1 && steps[1].first <= horizon) steps.pop_front();
}

std::set<uint64_t> RuleGate::minor_cookies(const std::string& bridge) const {
  std::set<uint64_t> out;
  for (const char* key : {bridge.c_str(), "*"}) {
    if (auto it = cfg_.cookie_allow.find(key); it != cfg_.cookie_allow.end())
      out.insert(it->second.begin(), it->second.end());
  }
  out.erase(0);
  if (auto d = dominant_cookie(bridge)) out.erase(*d);
  return out;
}

void RuleGate::record_flow_count(const BridgeFlows& flows, TimePoint now) {
  if (!flows.view_complete) return;  // a partial view is not a loss
  record(flow_counts_[flows.bridge], flows.flows.size(), now);
  const std::set<uint64_t> minor = minor_cookies(flows.bridge);
  if (minor.empty()) {
    cookie_counts_.erase(flows.bridge);
    return;
  }
  std::map<uint64_t, size_t> n;
  for (const auto& f : flows.flows)
    if (minor.contains(f.cookie)) ++n[f.cookie];
  auto& per_cookie = cookie_counts_[flows.bridge];
  std::erase_if(per_cookie, [&](const auto& kv) { return !minor.contains(kv.first); });
  for (uint64_t c : minor) {
    auto it = n.find(c);
    auto steps = per_cookie.find(c);
    if (it == n.end() && steps == per_cookie.end()) continue;  // never seen: nothing to lose
    record(per_cookie[c], it == n.end() ? 0 : it->second, now);
  }
}

std::optional<RuleGate::FlowLoss> RuleGate::loss(const Steps& pts, TimePoint now) const {
  if (pts.empty()) return std::nullopt;
  const TimePoint split = now - cfg_.flow_loss_hold;
  const TimePoint start = split - cfg_.flow_loss_window;
  if (pts.front().first > split) return std::nullopt;  // not watched for T yet
  FlowLoss l;
  for (size_t i = 0; i < pts.size(); ++i) {
    // Point i holds from its time until the next point's.
    const TimePoint from = pts[i].first;
    const TimePoint until = i + 1 < pts.size() ? pts[i + 1].first : now;
    if (until >= start && from <= split) l.before = std::max(l.before, pts[i].second);
    if (until > split || i + 1 == pts.size()) l.after = std::max(l.after, pts[i].second);
  }
  if (l.before == 0) return std::nullopt;
  return l;
}

std::optional<RuleGate::FlowLoss> RuleGate::flow_loss(const std::string& bridge, TimePoint now) const {
  auto it = flow_counts_.find(bridge);
  if (it == flow_counts_.end()) return std::nullopt;
  auto l = loss(it->second, now);
  if (!l) return std::nullopt;
  const double lost = static_cast<double>(l->before - std::min(l->before, l->after));
  if (lost <= cfg_.flow_loss_fraction * static_cast<double>(l->before)) return std::nullopt;
  return l;
}

std::vector<RuleGate::CookieLoss> RuleGate::cookie_losses(const std::string& bridge, TimePoint now) const {
  std::vector<CookieLoss> out;
  auto it = cookie_counts_.find(bridge);
  if (it == cookie_counts_.end()) return out;
  auto dominant = cookies_.find(bridge);
  if (dominant != cookies_.end() &&
      now - dominant->second.since < cfg_.flow_loss_hold + cfg_.flow_loss_window)
    return out;  // an agent restart (or hvtel's own start) within the memory
  for (const auto& [cookie, steps] : it->second) {
    auto l = loss(steps, now);
    if (l && l->after == 0) out.push_back({cookie, l->before});
  }
  return out;
}

}  // namespace hvtel::ovsdb
