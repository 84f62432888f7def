#include "ovs/openflow/ofp_format.h"

#include <arpa/inet.h>
#include <fmt/core.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace hvtel::ovs::fmtx {
namespace {

bool all_ones(const Bytes& b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0xff; });
}
bool all_zeros(const Bytes& b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0; });
}
uint64_t be_value(const Bytes& b) {
  uint64_t v = 0;
  for (size_t i = 0; i < b.size() && i < 8; ++i) v = (v << 8) | b[i];
  return v;
}

}  // namespace

std::string port(uint32_t p) {
  switch (p) {
    case 0xfff7: return "UNSET";
    case 0xfff8: return "IN_PORT";
    case 0xfff9: return "TABLE";
    case 0xfffa: return "NORMAL";
    case 0xfffb: return "FLOOD";
    case 0xfffc: return "ALL";
    case 0xfffd: return "CONTROLLER";
    case 0xfffe: return "LOCAL";
    case 0xffff: return "ANY";
    default: return std::to_string(p);
  }
}

std::optional<uint32_t> port11_to_port10(uint32_t p) {
  if (p < 0xff00) return p;
  if (p >= 0xffffff00) return p - 0xffff0000;
  return std::nullopt;
}

std::string port11(uint32_t p) {
  auto p10 = port11_to_port10(p);
  // OVS maps out-of-range OF1.1 ports into a private range; printing the raw
  // number keeps the value visible for the rule engine.
  return p10 ? port(*p10) : std::to_string(p);
}

std::string eth(const uint8_t* m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

std::string eth_masked(const Bytes& v, const Bytes* mask) {
  if (v.size() < 6) return "<bad-mac>";
  std::string s = eth(v.data());
  if (mask && mask->size() >= 6 && !all_ones(*mask)) s += "/" + eth(mask->data());
  return s;
}

std::string ipv4(uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

std::string ipv4_masked(uint32_t ip, uint32_t mask) {
  std::string s = ipv4(ip);
  if (mask != 0xffffffff) {
    // CIDR when the mask is a run of leading ones.
    uint32_t inv = ~mask;
    if ((inv & (inv + 1)) == 0) {
      s += fmt::format("/{}", std::countl_one(mask));
    } else {
      s += "/" + ipv4(mask);
    }
  }
  return s;
}

std::string ipv6(const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN];
  in6_addr addr;
  std::memcpy(&addr, a, 16);
  if (!inet_ntop(AF_INET6, &addr, buf, sizeof buf)) return "<bad-ipv6>";
  return buf;
}

std::string ipv6_masked(const Bytes& v, const Bytes* mask) {
  if (v.size() < 16) return "<bad-ipv6>";
  std::string s = ipv6(v.data());
  if (mask && mask->size() >= 16 && !all_ones(*mask)) {
    // CIDR when the mask is leading ones followed only by zeros.
    int bits = 0;
    bool cidr = true;
    bool seen_zero = false;
    for (int i = 0; i < 128; ++i) {
      bool one = ((*mask)[static_cast<size_t>(i / 8)] >> (7 - i % 8)) & 1;
      if (one) {
        if (seen_zero) cidr = false;
        ++bits;
      } else {
        seen_zero = true;
      }
    }
    s += cidr ? fmt::format("/{}", bits) : "/" + ipv6(mask->data());
  }
  return s;
}

std::string hex_trimmed(const uint8_t* data, size_t n) {
  std::string s;
  bool printed = false;
  for (size_t i = 0; i < n; ++i) {
    if (data[i] || printed) {
      s += printed ? fmt::format("{:02x}", data[i]) : fmt::format("0x{:x}", data[i]);
      printed = true;
    }
  }
  return printed ? s : "0";
}

std::string hex_dotted(const uint8_t* data, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += '.';
    s += fmt::format("{:02x}", data[i]);
  }
  return s;
}

const char* ct_state_bit(uint32_t bit) {
  switch (bit) {
    case 0x01: return "new";
    case 0x02: return "est";
    case 0x04: return "rel";
    case 0x08: return "rpl";
    case 0x10: return "inv";
    case 0x20: return "trk";
    case 0x40: return "snat";
    case 0x80: return "dnat";
    default: return nullptr;
  }
}

const char* tcp_flag_bit(uint32_t bit) {
  switch (bit) {
    case 0x001: return "fin";
    case 0x002: return "syn";
    case 0x004: return "rst";
    case 0x008: return "psh";
    case 0x010: return "ack";
    case 0x020: return "urg";
    case 0x040: return "ece";
    case 0x080: return "cwr";
    case 0x100: return "ns";
    case 0x200: return "[200]";
    case 0x400: return "[400]";
    case 0x800: return "[800]";
    default: return nullptr;
  }
}

const char* tun_flag_bit(uint32_t bit) { return bit == 1 ? "oam" : nullptr; }

std::string flags_plain(const char* (*bit_name)(uint32_t), uint32_t flags, char sep) {
  if (!flags) return "0";
  std::string s;
  uint32_t bad = 0;
  while (flags) {
    uint32_t bit = flags & (~flags + 1);
    if (const char* n = bit_name(bit)) {
      s += n;
      s += sep;
    } else {
      bad |= bit;
    }
    flags &= ~bit;
  }
  if (bad) {
    s += fmt::format("0x{:x}", bad);
    s += sep;
  }
  if (!s.empty() && s.back() == sep) s.pop_back();
  return s;
}

std::string flags_masked(const char* (*bit_name)(uint32_t), uint32_t flags, uint32_t mask,
                         uint32_t max_mask) {
  if (mask == max_mask) return flags_plain(bit_name, flags, '|');
  if (!mask) return "0/0";
  std::string s;
  while (mask) {
    uint32_t bit = mask & (~mask + 1);
    const char* n = bit_name(bit);
    s += (flags & bit) ? '+' : '-';
    s += n ? n : "[Unknown]";
    mask &= ~bit;
  }
  return s;
}

std::string field_value(FieldId id, const Bytes& value, const Bytes* mask) {
  const FieldInfo& fi = field_info(id);
  if (value.size() != fi.n_bytes) return "<bad-value>";
  if (mask && mask->size() != fi.n_bytes) mask = nullptr;
  if (mask && all_zeros(*mask)) return "ANY";
  if (mask && all_ones(*mask)) mask = nullptr;

  auto integer = [&]() {
    std::string s = fi.format == FieldFormat::kDecimal && fi.n_bytes <= 8
                        ? std::to_string(be_value(value))
                        : hex_trimmed(value.data(), value.size());
    if (mask) s += "/" + hex_trimmed(mask->data(), mask->size());
    return s;
  };

  switch (fi.format) {
    case FieldFormat::kOfp11Port:
      if (!mask) return port11(static_cast<uint32_t>(be_value(value)));
      return std::to_string(be_value(value)) + "/" + hex_trimmed(mask->data(), mask->size());
    case FieldFormat::kOfpPort:
      if (!mask) return port(static_cast<uint32_t>(be_value(value)));
      return std::to_string(be_value(value)) + "/" + hex_trimmed(mask->data(), mask->size());
    case FieldFormat::kDecimal:
    case FieldFormat::kHex:
      return integer();
    case FieldFormat::kCtState:
      return flags_masked(ct_state_bit, static_cast<uint32_t>(be_value(value)),
                          mask ? static_cast<uint32_t>(be_value(*mask)) : 0xffffffffu, 0xffff);
    case FieldFormat::kEthernet:
      return eth_masked(value, mask);
    case FieldFormat::kIpv4:
      return ipv4_masked(static_cast<uint32_t>(be_value(value)),
                         mask ? static_cast<uint32_t>(be_value(*mask)) : 0xffffffffu);
    case FieldFormat::kIpv6:
      return ipv6_masked(value, mask);
    case FieldFormat::kFrag: {
      uint8_t m = mask ? (*mask)[0] : 0xff;
      m &= 3;
      uint8_t v = value[0] & m;
      if (m == 0) return "any";
      if (m == 1) return v ? "yes" : "no";
      if (m == 3) return v == 0 ? "no" : v == 1 ? "first" : v == 3 ? "later" : "<error>";
      if (m == 2 && v == 2) return "later";
      return "<error>";
    }
    case FieldFormat::kTunFlags:
      return flags_masked(tun_flag_bit, static_cast<uint32_t>(be_value(value)),
                          (mask ? static_cast<uint32_t>(be_value(*mask)) : 0xffffu) & 1, 1);
    case FieldFormat::kTcpFlags:
      return flags_masked(tcp_flag_bit, static_cast<uint32_t>(be_value(value)),
                          mask ? static_cast<uint32_t>(be_value(*mask)) : 0xffffu, 0xffff);
    case FieldFormat::kPacketType: {
      uint32_t pt = static_cast<uint32_t>(be_value(value));
      return fmt::format("({},{:#x})", pt >> 16, pt & 0xffff);
    }
  }
  return integer();
}

std::string subfield(FieldId id, unsigned ofs, unsigned n_bits) {
  const FieldInfo& fi = field_info(id);
  std::string s = fi.nxm_name ? fi.nxm_name : fi.name;
  if (ofs == 0 && n_bits == fi.n_bits) {
    s += "[]";
  } else if (n_bits == 1) {
    s += fmt::format("[{}]", ofs);
  } else {
    s += fmt::format("[{}..{}]", ofs, ofs + n_bits - 1);
  }
  return s;
}

}  // namespace hvtel::ovs::fmtx
