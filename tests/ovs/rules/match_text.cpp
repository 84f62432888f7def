// Test-only: ovs-ofctl match text -> the rules' decoded match, so rule fixtures
// read like dump-flows output. The agent never parses match text: it decodes
// the OpenFlow match (agent/ovs/service/flow_view.cpp). Aliases, dl_vlan and
// dl_vlan_pcp folded into vlan_tci, protocol shorthands expanded, as OVS does.
#include "match_text.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>
#include <map>

#include "base/util/strings.h"
#include "ovs/rules/rules_match.h"

namespace hvtel::ovsdb::testing {
namespace {

std::vector<std::string_view> split_top_level(std::string_view s) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[') ++depth;
    if ((c == ')' || c == ']') && depth > 0) --depth;
    if (c == ',' && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

using Bytes = std::array<uint8_t, 16>;

Bytes all_ones() {
  Bytes b;
  b.fill(0xff);
  return b;
}

std::optional<Bytes> parse_number(const std::string& s) {
  Bytes b{};
  if (starts_with(s, "0x") || starts_with(s, "0X")) {
    std::string hex = s.substr(2);
    if (hex.empty() || hex.size() > 32) return std::nullopt;
    if (hex.size() % 2 != 0) hex.insert(hex.begin(), '0');
    size_t first = 16 - hex.size() / 2;
    for (size_t i = 0; i < hex.size() / 2; ++i) {
      auto v = parse_u64(std::string_view(hex).substr(2 * i, 2), 16);
      if (!v) return std::nullopt;
      b[first + i] = static_cast<uint8_t>(*v);
    }
    return b;
  }
  auto v = parse_u64(s, 10);
  if (!v) return std::nullopt;
  for (int i = 0; i < 8; ++i) b[static_cast<size_t>(15 - i)] = static_cast<uint8_t>(*v >> (8 * i));
  return b;
}

std::optional<Bytes> parse_mac(const std::string& s) {
  if (s.size() != 17) return std::nullopt;
  Bytes b{};
  for (int i = 0; i < 6; ++i) {
    size_t at = static_cast<size_t>(i) * 3;
    if (i > 0 && s[at - 1] != ':') return std::nullopt;
    auto v = parse_u64(std::string_view(s).substr(at, 2), 16);
    if (!v) return std::nullopt;
    b[static_cast<size_t>(10 + i)] = static_cast<uint8_t>(*v);
  }
  return b;
}

std::optional<Bytes> parse_ip(const std::string& s, int* bits) {
  Bytes b{};
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    std::memcpy(b.data() + 12, &a4, 4);
    *bits = 32;
    return b;
  }
  if (s.find(':') != std::string::npos && inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::memcpy(b.data(), &a6, 16);
    *bits = 128;
    return b;
  }
  return std::nullopt;
}

Bytes prefix_mask(int width, int prefix) {
  Bytes m{};
  // The field occupies the last width/8 bytes; set its first `prefix` bits.
  size_t first = 16 - static_cast<size_t>(width / 8);
  for (int i = 0; i < prefix; ++i) {
    m[first + static_cast<size_t>(i / 8)] |= static_cast<uint8_t>(0x80 >> (i % 8));
  }
  return m;
}

// ct_state flags in "+trk-est" form (ovs-fields(7) bit values).
std::optional<std::pair<Bytes, Bytes>> parse_ct_flags(const std::string& s) {
  static const std::map<std::string, uint8_t> kFlags = {
      {"new", 0x01}, {"est", 0x02}, {"rel", 0x04},  {"rpl", 0x08},
      {"inv", 0x10}, {"trk", 0x20}, {"snat", 0x40}, {"dnat", 0x80}};
  Bytes v{}, m{};
  size_t i = 0;
  if (s.empty()) return std::nullopt;
  while (i < s.size()) {
    char sign = s[i];
    if (sign != '+' && sign != '-') return std::nullopt;
    size_t j = i + 1;
    while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
    auto it = kFlags.find(s.substr(i + 1, j - i - 1));
    if (it == kFlags.end()) return std::nullopt;
    m[15] |= it->second;
    if (sign == '+') v[15] |= it->second;
    i = j;
  }
  return std::make_pair(v, m);
}

FieldValue text_value(const MatchField& f) {
  FieldValue fv;
  // Not bits: an FNV-1a digest of the text, compared by equality only.
  const std::string text = f.mask ? f.value + "/" + *f.mask : f.value;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  for (size_t i = 0; i < 8; ++i) fv.value[15 - i] = static_cast<uint8_t>(h >> (8 * i));
  fv.exact = !f.mask.has_value();
  return fv;
}

FieldValue parse_field(const std::string& name, const MatchField& f) {
  std::string value = f.value;
  std::optional<std::string> mask = f.mask;
  if (!mask) {
    if (auto slash = value.find('/'); slash != std::string::npos) {
      mask = value.substr(slash + 1);
      value = value.substr(0, slash);
    }
  }
  FieldValue fv;
  fv.exact = !mask.has_value();
  if (name == "ct_state" && !value.empty() && (value[0] == '+' || value[0] == '-')) {
    auto flags = parse_ct_flags(value);
    if (!flags) return text_value(f);
    fv.is_bits = true;
    fv.value = flags->first;
    fv.mask = flags->second;
    fv.exact = false;
    return fv;
  }
  if (name == "in_port" && value == "LOCAL") value = "65534";

  std::optional<Bytes> v;
  int ip_bits = 0;
  enum { kNum, kMac, kIp } kind = kNum;
  if ((v = parse_mac(value))) {
    kind = kMac;
  } else if ((v = parse_ip(value, &ip_bits))) {
    kind = kIp;
  } else if (!(v = parse_number(value))) {
    return text_value(f);
  }
  fv.is_bits = true;
  fv.value = *v;
  fv.mask = all_ones();
  if (mask) {
    std::optional<Bytes> m;
    int dummy = 0;
    if (kind == kIp && mask->find_first_not_of("0123456789") == std::string::npos) {
      auto len = parse_u64(*mask, 10);
      if (!len || *len > static_cast<uint64_t>(ip_bits)) return text_value(f);
      m = prefix_mask(ip_bits, static_cast<int>(*len));
    } else if (kind == kMac) {
      m = parse_mac(*mask);
    } else if (kind == kIp) {
      m = parse_ip(*mask, &dummy);
    } else {
      m = parse_number(*mask);
    }
    if (!m) return text_value(f);
    fv.mask = *m;
  }
  for (size_t i = 0; i < 16; ++i) fv.value[i] &= fv.mask[i];
  return fv;
}

FieldValue u16_bits(uint16_t value, uint16_t mask) {
  FieldValue fv;
  fv.is_bits = true;
  fv.exact = false;
  fv.value[14] = static_cast<uint8_t>(value >> 8);
  fv.value[15] = static_cast<uint8_t>(value);
  fv.mask[14] = static_cast<uint8_t>(mask >> 8);
  fv.mask[15] = static_cast<uint8_t>(mask);
  return fv;
}

FieldValue exact_number(uint64_t v) {
  MatchField f{"", std::to_string(v), std::nullopt};
  return parse_field("", f);
}

// Adds a field; two constraints on one field (dl_vlan + dl_vlan_pcp) merge.
void put(NormalMatch& m, const std::string& name, FieldValue fv) {
  auto [it, inserted] = m.emplace(name, fv);
  if (inserted) return;
  FieldValue& cur = it->second;
  if (!cur.is_bits || !fv.is_bits) return;  // keep the first: cannot merge text
  for (size_t i = 0; i < 16; ++i) {
    cur.value[i] |= fv.value[i] & fv.mask[i];
    cur.mask[i] |= fv.mask[i];
  }
  cur.exact = false;
}

bool expand_shorthand(NormalMatch& m, const std::string& name) {
  struct Proto {
    uint16_t dl_type;
    int nw_proto;
  };
  static const std::map<std::string, Proto> kShorthands = {
      {"ip", {0x0800, -1}},   {"ipv6", {0x86dd, -1}},  {"arp", {0x0806, -1}},
      {"rarp", {0x8035, -1}}, {"mpls", {0x8847, -1}},  {"mplsm", {0x8848, -1}},
      {"icmp", {0x0800, 1}},  {"tcp", {0x0800, 6}},    {"udp", {0x0800, 17}},
      {"sctp", {0x0800, 132}}, {"icmp6", {0x86dd, 58}}, {"tcp6", {0x86dd, 6}},
      {"udp6", {0x86dd, 17}}, {"sctp6", {0x86dd, 132}}};
  auto it = kShorthands.find(name);
  if (it == kShorthands.end()) return false;
  put(m, "dl_type", exact_number(it->second.dl_type));
  if (it->second.nw_proto >= 0) {
    put(m, "nw_proto", exact_number(static_cast<uint64_t>(it->second.nw_proto)));
  }
  return true;
}

}  // namespace

NormalMatch normalize_match(const std::vector<MatchField>& match) {
  NormalMatch m;
  for (const auto& f : match) {
    std::string name = canonical_field_name(f.field);
    if (f.value.empty() && !f.mask && expand_shorthand(m, name)) continue;
    if (name == "dl_vlan") {
      auto v = parse_u64(f.value, starts_with(f.value, "0x") ? 16 : 10);
      if (v && *v == 0xffff) {
        put(m, "vlan_tci", u16_bits(0, 0xffff));  // OFP_VLAN_NONE: no 802.1Q header
      } else if (v && *v < 4096) {
        put(m, "vlan_tci", u16_bits(static_cast<uint16_t>(0x1000 | *v), 0x1fff));
      } else {
        put(m, name, text_value(f));
      }
      continue;
    }
    if (name == "dl_vlan_pcp") {
      auto v = parse_u64(f.value, 10);
      if (v && *v < 8) {
        put(m, "vlan_tci", u16_bits(static_cast<uint16_t>(0x1000 | (*v << 13)), 0xf000));
      } else {
        put(m, name, text_value(f));
      }
      continue;
    }
    if (name == "vlan_vid") {  // OXM: VID with OFPVID_PRESENT (0x1000)
      FieldValue fv = parse_field(name, f);
      if (fv.is_bits && fv.exact) {
        fv.mask = {};
        fv.mask[14] = 0x1f;
        fv.mask[15] = 0xff;
        fv.exact = false;
      }
      put(m, "vlan_tci", fv);
      continue;
    }
    put(m, name, parse_field(name, f));
  }
  return m;
}


std::vector<MatchField> match_fields_from_text(std::string_view match) {
  std::vector<MatchField> out;
  if (trim(match).empty()) return out;
  auto parts = split_top_level(match);
  out.reserve(parts.size());  // kept for every flow of the bridge: no growth slack
  for (auto part : parts) {
    part = trim(part);
    if (part.empty()) continue;
    MatchField f;
    auto eq = part.find('=');
    if (eq == std::string_view::npos) {
      f.field = std::string(part);  // protocol shorthand: ip, arp, tcp6, ...
      out.push_back(std::move(f));
      continue;
    }
    f.field = std::string(part.substr(0, eq));
    std::string_view value = part.substr(eq + 1);
    auto slash = value.find('/');
    const bool flag_form = !value.empty() && (value[0] == '+' || value[0] == '-');
    if (slash != std::string_view::npos && !flag_form) {
      f.value = std::string(value.substr(0, slash));
      f.mask = std::string(value.substr(slash + 1));
    } else {
      f.value = std::string(value);
    }
    out.push_back(std::move(f));
  }
  return out;
}

NormalMatch match_from_text(std::string_view match) {
  return normalize_match(match_fields_from_text(match));
}

}  // namespace hvtel::ovsdb::testing
