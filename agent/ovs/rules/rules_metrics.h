// hvtel_ovs_dirty_flows{bridge,rule}: the latest exact count per rule.
//
// A (bridge, rule) that gating held back keeps its previous value, so the
// gauge neither drops to 0 nor flaps while a bridge is busy. Bridges that are
// gone are dropped.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ovs/rules/rules.h"

namespace hvtel::ovsdb {

class DirtyFlowGauge : public prometheus::Collectable {
 public:
  // `bridges`: every bridge that currently exists (flows or OVSDB).
  void update(const RuleReport& report, const std::set<std::string>& bridges);
  uint64_t value(const std::string& bridge, const std::string& rule) const;
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> counts_;
  std::map<std::string, bool> held_;  // bridge -> flow rules currently held by gating
};

}  // namespace hvtel::ovsdb
