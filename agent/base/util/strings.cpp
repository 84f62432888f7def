#include "base/util/strings.h"

#include <algorithm>
#include <charconv>

namespace hvtel {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::optional<uint64_t> parse_u64(std::string_view s, int base) {
  if (base == 16 && (starts_with(s, "0x") || starts_with(s, "0X"))) s.remove_prefix(2);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_i64(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<std::vector<std::string>> proc_stat_fields(std::string_view line) {
  const size_t close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  return split(trim(line.substr(close + 1)), ' ');
}

std::vector<int> expand_cpu_ranges(std::vector<std::pair<int, int>> ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<int> cpus;
  int next = 0;  // the lowest CPU not yet emitted
  for (const auto& [lo, hi] : ranges) {
    for (int c = std::max(lo, next); c <= hi; ++c) cpus.push_back(c);
    next = std::max(next, hi + 1);
  }
  return cpus;
}

std::optional<std::vector<int>> parse_cpu_list(std::string_view s) {
  std::vector<std::pair<int, int>> ranges;
  s = trim(s);
  if (s.empty()) return std::vector<int>{};
  for (const auto& part : split(s, ',')) {
    std::string_view p = trim(part);
    size_t dash = p.find('-');
    if (dash == std::string_view::npos) {
      auto v = parse_u64(p);
      if (!v || *v > 65535) return std::nullopt;
      ranges.emplace_back(static_cast<int>(*v), static_cast<int>(*v));
    } else {
      auto a = parse_u64(trim(p.substr(0, dash)));
      auto b = parse_u64(trim(p.substr(dash + 1)));
      if (!a || !b || *a > *b || *b > 65535) return std::nullopt;
      ranges.emplace_back(static_cast<int>(*a), static_cast<int>(*b));
    }
  }
  return expand_cpu_ranges(std::move(ranges));
}

std::string format_cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace hvtel
