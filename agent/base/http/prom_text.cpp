#include "base/http/prom_text.h"

#include <fmt/core.h>

#include <charconv>
#include <cmath>
#include <limits>

namespace hvtel::http {
namespace {

bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
bool is_space(char c) { return c == ' ' || c == '\t'; }

void skip_spaces(std::string_view s, size_t& i) {
  while (i < s.size() && is_space(s[i])) ++i;
}

// Parses one sample line; an error message on failure.
std::optional<std::string> parse_line(std::string_view line, PromSample& out) {
  size_t i = 0;
  skip_spaces(line, i);
  size_t start = i;
  if (i >= line.size() || !name_start(line[i])) return "expected a metric name";
  while (i < line.size() && name_char(line[i])) ++i;
  out.name = std::string(line.substr(start, i - start));
  skip_spaces(line, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      skip_spaces(line, i);
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t ls = i;
      if (i >= line.size() || !name_start(line[i])) return "expected a label name";
      while (i < line.size() && name_char(line[i])) ++i;
      std::string key(line.substr(ls, i - ls));
      skip_spaces(line, i);
      if (i >= line.size() || line[i] != '=') return "expected '=' after label " + key;
      ++i;
      skip_spaces(line, i);
      if (i >= line.size() || line[i] != '"') return "expected '\"' for label " + key;
      ++i;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < line.size()) {
          char e = line[i++];
          value += e == 'n' ? '\n' : e;  // \\ and \" stand for themselves
        } else {
          value += c;
        }
      }
      if (!closed) return "unterminated value of label " + key;
      out.labels[key] = std::move(value);
      skip_spaces(line, i);
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return "expected ',' or '}' after label " + key;
    }
  }
  skip_spaces(line, i);
  size_t vs = i;
  while (i < line.size() && !is_space(line[i])) ++i;
  auto v = parse_prom_value(line.substr(vs, i - vs));
  if (!v) return fmt::format("bad value '{}'", line.substr(vs, i - vs));
  out.value = *v;
  skip_spaces(line, i);
  if (i < line.size()) {  // optional timestamp (ms), then nothing
    size_t ts = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    int64_t t = 0;
    auto tsv = line.substr(ts, i - ts);
    auto [p, ec] = std::from_chars(tsv.data(), tsv.data() + tsv.size(), t);
    if (ec != std::errc() || p != tsv.data() + tsv.size()) return "bad timestamp";
    skip_spaces(line, i);
    if (i < line.size()) return "trailing characters";
  }
  return std::nullopt;
}

}  // namespace

const std::string& PromSample::label(const std::string& key) const {
  static const std::string kEmpty;
  auto it = labels.find(key);
  return it == labels.end() ? kEmpty : it->second;
}

std::optional<double> parse_prom_value(std::string_view s) {
  if (s == "+Inf" || s == "Inf" || s == "+inf" || s == "inf")
    return std::numeric_limits<double>::infinity();
  if (s == "-Inf" || s == "-inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN" || s == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

PromText parse_prometheus_text(std::string_view text) {
  PromText out;
  size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? text.npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t i = 0;
    skip_spaces(line, i);
    if (i == line.size() || line[i] == '#') continue;
    PromSample s;
    if (auto err = parse_line(line, s)) {
      if (out.bad_lines++ == 0) out.first_error = fmt::format("line {}: {}", lineno, *err);
      continue;
    }
    out.samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace hvtel::http
