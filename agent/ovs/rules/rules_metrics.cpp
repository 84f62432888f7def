#include "ovs/rules/rules_metrics.h"

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
  prometheus::MetricFamily dirty;
  dirty.name = "hvtel_ovs_dirty_flows";
  dirty.help = "Flows or ports currently violating a dirty-flow rule, per bridge and rule.";
  dirty.type = prometheus::MetricType::Gauge;
  for (const auto& [key, n] : counts_) {
    prometheus::ClientMetric m;
    m.label = {{"bridge", key.first}, {"rule", key.second}};
    m.gauge.value = static_cast<double>(n);
    dirty.metric.push_back(std::move(m));
  }
  prometheus::MetricFamily held;
  held.name = "hvtel_ovs_dirty_flow_rules_held";
  held.help = "1 while gating (incomplete view, churn) holds a bridge's flow rules at their last value.";
  held.type = prometheus::MetricType::Gauge;
  for (const auto& [bridge, h] : held_) {
    prometheus::ClientMetric m;
    m.label = {{"bridge", bridge}};
    m.gauge.value = h ? 1 : 0;
    held.metric.push_back(std::move(m));
  }
  return {std::move(dirty), std::move(held)};
}

}  // namespace hvtel::ovsdb
