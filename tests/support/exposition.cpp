#include "support/exposition.h"

#include <gtest/gtest.h>


namespace hvtel::testing {

std::vector<Sample> parse_exposition(const std::string& text) {
  http::PromText parsed = http::parse_prometheus_text(text);
  EXPECT_EQ(parsed.bad_lines, 0u) << parsed.first_error;
  return std::move(parsed.samples);
}

namespace {
bool matches(const Sample& s, const std::string& name,
             const std::map<std::string, std::string>& labels) {
  if (s.name != name) return false;
  for (const auto& [k, v] : labels) {
    auto it = s.labels.find(k);
    if (it == s.labels.end() || it->second != v) return false;
  }
  return true;
}
}  // namespace

std::optional<double> Scrape::value(const std::string& name,
                                    const std::map<std::string, std::string>& labels) const {
  std::optional<double> found;
  for (const auto& s : samples_) {
    if (!matches(s, name, labels)) continue;
    EXPECT_FALSE(found.has_value()) << "several samples match " << name;
    found = s.value;
  }
  return found;
}

double Scrape::sum(const std::string& name, const std::map<std::string, std::string>& labels) const {
  double t = 0;
  for (const auto& s : samples_)
    if (matches(s, name, labels)) t += s.value;
  return t;
}

size_t Scrape::count(const std::string& name,
                     const std::map<std::string, std::string>& labels) const {
  size_t n = 0;
  for (const auto& s : samples_)
    if (matches(s, name, labels)) ++n;
  return n;
}

}  // namespace hvtel::testing
