#include "ovs/rules/rules_match.h"

#include <fmt/core.h>

#include <algorithm>
#include <functional>

namespace hvtel::ovsdb {

std::pair<NormalMatch::iterator, bool> NormalMatch::emplace(std::string name, const FieldValue& value) {
  auto it = std::lower_bound(fields_.begin(), fields_.end(), name,
                             [](const value_type& f, const std::string& n) { return f.first < n; });
  if (it != fields_.end() && it->first == name) return {it, false};
  return {fields_.emplace(it, std::move(name), value), true};
}

NormalMatch::const_iterator NormalMatch::find(std::string_view name) const {
  auto it = std::lower_bound(fields_.begin(), fields_.end(), name,
                             [](const value_type& f, std::string_view n) { return f.first < n; });
  return it != fields_.end() && it->first == name ? it : fields_.end();
}

std::string canonical_field_name(std::string_view ovs_name) {
  static const std::map<std::string, std::string, std::less<>> kAliases = {
      {"eth_src", "dl_src"},     {"eth_dst", "dl_dst"},     {"eth_type", "dl_type"},
      {"ip_proto", "nw_proto"},  {"ipv4_src", "nw_src"},    {"ipv4_dst", "nw_dst"},
      {"ip_src", "nw_src"},      {"ip_dst", "nw_dst"},      {"ip_dscp", "nw_tos"},
      {"tcp_src", "tp_src"},     {"udp_src", "tp_src"},     {"sctp_src", "tp_src"},
      {"tcp_dst", "tp_dst"},     {"udp_dst", "tp_dst"},     {"sctp_dst", "tp_dst"},
      {"icmpv4_type", "icmp_type"}, {"icmpv4_code", "icmp_code"},
      {"icmpv6_type", "icmp_type"}, {"icmpv6_code", "icmp_code"},
      {"tunnel_id", "tun_id"},      {"ip_frag", "nw_frag"},
  };
  auto it = kAliases.find(ovs_name);
  return it == kAliases.end() ? std::string(ovs_name) : it->second;
}

bool fields_compatible(const FieldValue& a, const FieldValue& b) {
  if (!a.is_bits || !b.is_bits) return !a.is_bits && !b.is_bits && a.value == b.value;
  for (size_t i = 0; i < 16; ++i) {
    if (((a.value[i] ^ b.value[i]) & a.mask[i] & b.mask[i]) != 0) return false;
  }
  return true;
}

bool matches_intersect(const NormalMatch& a, const NormalMatch& b) {
  // Walk both sorted maps together; only fields present in both constrain.
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() && ib != b.end()) {
    if (ia->first < ib->first) {
      ++ia;
    } else if (ib->first < ia->first) {
      ++ib;
    } else {
      if (!fields_compatible(ia->second, ib->second)) return false;
      ++ia;
      ++ib;
    }
  }
  return true;
}

std::optional<uint64_t> exact_u64(const NormalMatch& m, const std::string& field) {
  auto it = m.find(field);
  if (it == m.end() || !it->second.is_bits || !it->second.exact) return std::nullopt;
  for (size_t i = 0; i < 8; ++i) {
    if (it->second.value[i] != 0) return std::nullopt;
  }
  uint64_t v = 0;
  for (size_t i = 8; i < 16; ++i) v = (v << 8) | it->second.value[i];
  return v;
}

std::optional<std::string> exact_mac(const NormalMatch& m, const std::string& field) {
  auto it = m.find(field);
  if (it == m.end() || !it->second.is_bits || !it->second.exact) return std::nullopt;
  const auto& v = it->second.value;
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", v[10], v[11], v[12], v[13], v[14],
                     v[15]);
}

std::optional<VlanBits> vlan_bits(const NormalMatch& m) {
  for (const char* name : {"vlan_tci", "vlan_vid"}) {
    auto it = m.find(name);
    if (it == m.end() || !it->second.is_bits) continue;
    const auto& f = it->second;
    auto bits = [](const std::array<uint8_t, 16>& a) {
      return static_cast<uint16_t>((a[14] << 8 | a[15]) & 0x1fff);
    };
    return VlanBits{bits(f.value), bits(f.mask)};
  }
  return std::nullopt;
}

std::optional<uint16_t> exact_vlan(const NormalMatch& m) {
  auto v = vlan_bits(m);
  if (!v || v->mask != 0x1fff || (v->value & 0x1000) == 0) return std::nullopt;
  return static_cast<uint16_t>(v->value & 0x0fff);
}

std::string exact_key(const NormalMatch& m, const std::string& field) {
  auto it = m.find(field);
  if (it == m.end() || !it->second.exact) return {};
  std::string k = it->second.is_bits ? "b:" : "t:";
  for (uint8_t byte : it->second.value) k += fmt::format("{:02x}", byte);
  return k;
}

}  // namespace hvtel::ovsdb
