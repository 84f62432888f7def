// A parser for the Prometheus text exposition format (version 0.0.4), for
// `hvtel top`: comments and blank lines skipped, label values with \\ \" \n
// escapes, +Inf/-Inf/NaN, an optional timestamp. A malformed line is skipped
// and counted, never fatal.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hvtel::http {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;

  // The label's value, or "" when absent.
  const std::string& label(const std::string& key) const;
};

struct PromText {
  std::vector<PromSample> samples;
  size_t bad_lines = 0;
  std::string first_error;  // "line 12: ..." for the first bad line
};

PromText parse_prometheus_text(std::string_view text);

// "1.5", "+Inf", "-Inf", "NaN", "1e-3"; nullopt otherwise.
std::optional<double> parse_prom_value(std::string_view s);

}  // namespace hvtel::http
