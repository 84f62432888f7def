// Assertions over a Prometheus text exposition, parsed by the agent's own
// parser (agent/base/http/prom_text.h), so the tests exercise it too.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/http/prom_text.h"

namespace hvtel::testing {

using Sample = http::PromSample;

// Every sample of `text`; fails the test on a line the parser rejects.
std::vector<Sample> parse_exposition(const std::string& text);

class Scrape {
 public:
  explicit Scrape(const std::string& text) : samples_(parse_exposition(text)), text_(text) {}
  // The value of the one sample with this name whose labels include `labels`;
  // nullopt when there is none. Fails the test when several match.
  std::optional<double> value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
  // Sum over every sample with this name whose labels include `labels`.
  double sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  size_t count(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  const std::string& text() const { return text_; }

 private:
  std::vector<Sample> samples_;
  std::string text_;
};

}  // namespace hvtel::testing
