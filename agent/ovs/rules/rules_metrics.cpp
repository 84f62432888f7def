#include "ovs/rules/rules_metrics.h"

#include "base/metrics/catalog.h"
#include "base/metrics/family.h"

namespace hvtel::ovsdb {

void DirtyFlowGauge::update(const RuleReport& report, const std::set<std::string>& bridges) {
  std::lock_guard lock(mu_);
  for (const auto& [key, n] : report.counts) counts_[key] = n;
  for (auto it = counts_.begin(); it != counts_.end();) {
    it = bridges.count(it->first.first) == 0 ? counts_.erase(it) : std::next(it);
  }
  held_.clear();
  for (const auto& b : bridges) held_[b] = report.held.count(b) != 0;
}

uint64_t DirtyFlowGauge::value(const std::string& bridge, const std::string& rule) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find({bridge, rule});
  return it == counts_.end() ? 0 : it->second;
}

std::vector<prometheus::MetricFamily> DirtyFlowGauge::Collect() const {
  std::lock_guard lock(mu_);
  metrics::FamilyBuilder dirty(metrics::catalog::kOvsDirtyFlows);
  for (const auto& [key, n] : counts_)
    dirty.add({{"bridge", key.first}, {"rule", key.second}}, static_cast<double>(n));
  metrics::FamilyBuilder held(metrics::catalog::kOvsDirtyFlowRulesHeld);
  for (const auto& [bridge, h] : held_) held.add({{"bridge", bridge}}, h ? 1 : 0);
  return {dirty.take(), held.take()};
}

}  // namespace hvtel::ovsdb
