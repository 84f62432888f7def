#include "support/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace hvtel::testing {

std::vector<Sample> parse_exposition(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string k, v;
        while (i < line.size() && line[i] != '=') k += line[i++];
        i += 2;  // ="
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            v += line[i] == 'n' ? '\n' : line[i];
          } else {
            v += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        s.labels[k] = v;
      }
      ++i;  // }
    }
    std::string val = line.substr(i);
    s.value = val.find("+Inf") != std::string::npos ? INFINITY : std::strtod(val.c_str(), nullptr);
    out.push_back(std::move(s));
  }
  return out;
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
