// Which metric families the agent renders (--metrics-disable). Collectors that
// read kernel maps ask enabled() before reading, so a disabled family costs
// neither series nor map reads; Filtered drops the rest from any collector.
#pragma once

#include <prometheus/collectable.h>

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/metrics/family.h"
#include "base/util/result.h"

namespace hvtel::metrics {

class Selection {
 public:
  Selection() = default;
  // Each entry is a metric name from the catalogue or a group of
  // catalog::kGroups; anything else is an error that names the choices.
  static Result<Selection> disable(const std::vector<std::string>& names);
  bool enabled(const MetricDesc& d) const { return enabled(d.name); }
  bool enabled(std::string_view name) const;
  const std::set<std::string, std::less<>>& disabled() const { return disabled_; }
  // The families whose name is enabled, in order.
  std::vector<prometheus::MetricFamily> filter(std::vector<prometheus::MetricFamily> families) const;

 private:
  std::set<std::string, std::less<>> disabled_;
};

// A collector whose disabled families are left out.
class Filtered final : public prometheus::Collectable {
 public:
  Filtered(std::shared_ptr<prometheus::Collectable> inner, Selection selection)
      : inner_(std::move(inner)), selection_(std::move(selection)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return selection_.filter(inner_->Collect());
  }

 private:
  std::shared_ptr<prometheus::Collectable> inner_;
  Selection selection_;
};

}  // namespace hvtel::metrics
