// Match intersection and field lookups for the flow rules, over decoded
// matches (FlowView::match): two matches intersect iff every field present in
// both agrees on the bits both masks care about.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ovs/rules/rules.h"

namespace hvtel::ovsdb {

bool fields_compatible(const FieldValue& a, const FieldValue& b);
bool matches_intersect(const NormalMatch& a, const NormalMatch& b);

// The exact (unmasked) value of a numeric field, e.g. in_port or reg5.
std::optional<uint64_t> exact_u64(const NormalMatch& m, const std::string& field);
// The exact value of a MAC field, lower-case "aa:bb:cc:dd:ee:ff".
std::optional<std::string> exact_mac(const NormalMatch& m, const std::string& field);
// A bucketing key for an exactly matched field ("" when absent or masked).
std::string exact_key(const NormalMatch& m, const std::string& field);

}  // namespace hvtel::ovsdb
