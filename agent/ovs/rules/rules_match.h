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
// The 802.1Q bits of a match, from vlan_tci (NXM) or vlan_vid (OXM), both
// laid out as 0x1000 = tag present (CFI), 0x0fff = VID; PCP dropped.
struct VlanBits {
  uint16_t value = 0;
  uint16_t mask = 0;
};
std::optional<VlanBits> vlan_bits(const NormalMatch& m);
// The VID a match pins a tagged packet to (dl_vlan=V), nullopt otherwise.
std::optional<uint16_t> exact_vlan(const NormalMatch& m);

// A bucketing key for an exactly matched field ("" when absent or masked).
std::string exact_key(const NormalMatch& m, const std::string& field);

}  // namespace hvtel::ovsdb
