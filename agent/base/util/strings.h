// Small string helpers with no system state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hvtel {

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
std::optional<uint64_t> parse_u64(std::string_view s, int base = 10);
std::optional<int64_t> parse_i64(std::string_view s);

// The fields of a /proc/<pid>/stat line from field 3 (state) on: comm (field 2)
// may hold spaces and ')', so they start after the last ')'. nullopt without one.
std::optional<std::vector<std::string>> proc_stat_fields(std::string_view line);

// Parses a Linux cpu list ("0-3,8,10-11") into a sorted, de-duplicated vector.
// Returns nullopt on malformed input; an empty string is an empty list.
std::optional<std::vector<int>> parse_cpu_list(std::string_view s);
// The sorted, de-duplicated CPUs of inclusive [lo, hi] ranges. Ranges are
// merged before they are expanded, so a list that repeats a range costs no
// more than the range once (outside input: "0-65535,0-65535,...").
std::vector<int> expand_cpu_ranges(std::vector<std::pair<int, int>> ranges);
// Formats a sorted cpu vector back into the compact list form.
std::string format_cpu_list(const std::vector<int>& cpus);

}  // namespace hvtel
