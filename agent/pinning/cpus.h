// Set algebra on sorted, de-duplicated CPU vectors (the form parse_cpu_list
// and parse_nova_cpu_set return).
#pragma once

#include <algorithm>
#include <iterator>
#include <vector>

namespace hvtel::pinning {

inline std::vector<int> cpus_intersect(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

inline std::vector<int> cpus_union(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

inline std::vector<int> cpus_difference(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// True when every CPU of `sub` is in `super`.
inline bool cpus_subset(const std::vector<int>& sub, const std::vector<int>& super) {
  return std::includes(super.begin(), super.end(), sub.begin(), sub.end());
}

// Sorts and de-duplicates an arbitrary CPU vector.
inline std::vector<int> cpus_normalize(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace hvtel::pinning
