// The catalogue is the public interface: every metric described once, named
// by the Prometheus conventions, and documented in docs/metrics.md, which
// documents nothing the agent does not export.
#include "base/metrics/catalog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

namespace catalog = hvtel::metrics::catalog;

namespace {

bool is_metric_name(std::string_view n) {
  if (n.empty() || !(std::islower(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

// The metric names in the first cell of each table row: "| `a`, `b` | ..." -> a, b.
std::set<std::string> documented_names(const std::string& doc) {
  std::set<std::string> out;
  size_t at = 0;
  while ((at = doc.find("\n| `", at)) != std::string::npos) {
    const size_t cell_end = doc.find(" |", at + 3);
    if (cell_end == std::string::npos) break;
    const std::string cell = doc.substr(at + 3, cell_end - at - 3);
    at = cell_end;
    std::set<std::string> names;
    bool all_metrics = true;
    size_t p = 0;
    while (p < cell.size()) {
      if (cell[p] != '`') { all_metrics = false; break; }
      const size_t close = cell.find('`', p + 1);
      if (close == std::string::npos) { all_metrics = false; break; }
      const std::string n = cell.substr(p + 1, close - p - 1);
      if (!is_metric_name(n) || !(n.starts_with("hvtel_") || n.starts_with("process_"))) {
        all_metrics = false;
        break;
      }
      names.insert(n);
      p = close + 1;
      if (cell.compare(p, 2, ", ") == 0) p += 2;
    }
    if (all_metrics) out.insert(names.begin(), names.end());
  }
  return out;
}

std::string read_doc() {
  std::ifstream in(HVTEL_SOURCE_DIR "/docs/metrics.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Catalog, EachNameOnceAndConventional) {
  std::set<std::string> names;
  for (const auto* d : catalog::kAll) {
    const std::string n = d->name;
    EXPECT_TRUE(names.insert(n).second) << n << " is described twice";
    EXPECT_TRUE(is_metric_name(n)) << n;
    EXPECT_FALSE(std::string(d->help).empty()) << n;
    const bool total = n.ends_with("_total");
    EXPECT_EQ(d->type == prometheus::MetricType::Counter, total) << n << ": counters, and only they, end in _total";
  }
  EXPECT_EQ(names.size(), std::size(catalog::kAll));
}

TEST(Catalog, EveryMetricIsDocumentedAndEveryDocumentedMetricExists) {
  const std::string doc = read_doc();
  ASSERT_FALSE(doc.empty()) << "docs/metrics.md not found";
  std::set<std::string> in_catalog;
  for (const auto* d : catalog::kAll) in_catalog.insert(d->name);
  // The first cell of each metrics table row names one metric or several.
  const std::set<std::string> documented = documented_names(doc);
  for (const auto& n : in_catalog) EXPECT_TRUE(documented.contains(n)) << n << " has no row in docs/metrics.md";
  for (const auto& n : documented) EXPECT_TRUE(in_catalog.contains(n)) << n << " is documented but not exported";
}
