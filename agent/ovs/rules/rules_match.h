// Match normalization and intersection for the flow rules.
//
// Each field becomes value/mask bits (up to 128 bits, right-aligned), so that
// two matches intersect iff every field present in both agrees on the bits
// both masks care about. Fields whose values cannot be read as numbers, MACs,
// IP addresses or ct_state flags stay as text and compare by equality.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ovs/rules/rules.h"

namespace hvtel::ovsdb {

struct FieldValue {
  bool is_bits = false;
  bool exact = true;  // no mask was given
  std::array<uint8_t, 16> value{};
  std::array<uint8_t, 16> mask{};
  std::string text;   // !is_bits: the raw value (and "/mask")

  bool operator==(const FieldValue&) const = default;
};

using NormalMatch = std::map<std::string, FieldValue>;

// Aliases resolved (eth_src -> dl_src, tcp_dst -> tp_dst, ...), dl_vlan and
// dl_vlan_pcp folded into vlan_tci, protocol shorthands expanded.
NormalMatch normalize_match(const std::vector<MatchField>& match);

bool fields_compatible(const FieldValue& a, const FieldValue& b);
bool matches_intersect(const NormalMatch& a, const NormalMatch& b);

// The exact (unmasked) value of a numeric field, e.g. in_port or reg5.
std::optional<uint64_t> exact_u64(const NormalMatch& m, const std::string& field);
// The exact value of a MAC field, lower-case "aa:bb:cc:dd:ee:ff".
std::optional<std::string> exact_mac(const NormalMatch& m, const std::string& field);
// A bucketing key for an exactly matched field ("" when absent or masked).
std::string exact_key(const NormalMatch& m, const std::string& field);

}  // namespace hvtel::ovsdb
