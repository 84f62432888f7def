#include "base/metrics/selection.h"

#include <fmt/format.h>

#include "base/metrics/catalog.h"

namespace hvtel::metrics {

Result<Selection> Selection::disable(const std::vector<std::string>& names) {
  Selection s;
  for (const auto& n : names) {
    bool known = false;
    for (const MetricDesc* d : catalog::kAll) {
      if (n == d->name) {
        s.disabled_.insert(n);
        known = true;
      }
    }
    for (const auto& g : catalog::kGroups) {
      if (n != g.name) continue;
      for (const MetricDesc* d : g.members) s.disabled_.insert(d->name);
      known = true;
    }
    if (!known) {
      std::string groups;
      for (const auto& g : catalog::kGroups) groups += std::string(groups.empty() ? "" : ", ") + g.name;
      return fail(fmt::format(
          "--metrics-disable {}: not a metric of the catalogue (docs/metrics.md) nor a group ({})", n,
          groups));
    }
  }
  return s;
}

bool Selection::enabled(std::string_view name) const { return !disabled_.contains(name); }

std::vector<prometheus::MetricFamily> Selection::filter(
    std::vector<prometheus::MetricFamily> families) const {
  if (disabled_.empty()) return families;
  std::erase_if(families, [this](const prometheus::MetricFamily& f) { return !enabled(f.name); });
  return families;
}

}  // namespace hvtel::metrics
