// The catalogue is the public interface: every metric described once, named
// by the Prometheus conventions, and documented in docs/metrics.md, which
// documents nothing the agent does not export.
#include "base/metrics/catalog.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace catalog = hvtel::metrics::catalog;

namespace {

std::string read_doc() {
  std::ifstream in(HVTEL_SOURCE_DIR "/docs/metrics.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Catalog, EachNameOnceAndConventional) {
  std::set<std::string> names;
  const std::regex valid("[a-z_][a-z0-9_]*");
  for (const auto* d : catalog::kAll) {
    const std::string n = d->name;
    EXPECT_TRUE(names.insert(n).second) << n << " is described twice";
    EXPECT_TRUE(std::regex_match(n, valid)) << n;
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
  std::set<std::string> documented;
  const std::regex first_cell(R"(\n\| ((?:`(?:hvtel|process)_[a-z0-9_]+`(?:, )?)+) \|)");
  const std::regex name(R"(`([a-z0-9_]+)`)");
  for (auto r = std::sregex_iterator(doc.begin(), doc.end(), first_cell); r != std::sregex_iterator(); ++r) {
    const std::string cell = (*r)[1].str();
    for (auto n = std::sregex_iterator(cell.begin(), cell.end(), name); n != std::sregex_iterator(); ++n)
      documented.insert((*n)[1].str());
  }
  for (const auto& n : in_catalog) EXPECT_TRUE(documented.contains(n)) << n << " has no row in docs/metrics.md";
  for (const auto& n : documented) EXPECT_TRUE(in_catalog.contains(n)) << n << " is documented but not exported";
}
