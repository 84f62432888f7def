#include "ovs/openflow/canonical.h"

#include <fmt/core.h>

#include "ovs/openflow/ofp_format.h"

namespace hvtel::ovs {
namespace {

using F = FieldId;

constexpr uint16_t kEthIp = 0x0800, kEthIpv6 = 0x86dd, kEthArp = 0x0806, kEthRarp = 0x8035,
                   kEthMpls = 0x8847, kEthMplsMcast = 0x8848;
constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17, kProtoSctp = 132,
                  kProtoIcmpv6 = 58;

// Read-only view of a Match with OVS "flow + wildcards" semantics: an absent
// field has value 0 and mask 0.
class View {
 public:
  explicit View(const Match& m) : m_(m) {}
  const MatchField* get(F id) const { return m_.find(id); }
  uint64_t v(F id) const {
    auto* f = get(id);
    return f ? f->value_u64() : 0;
  }
  uint64_t k(F id) const {
    auto* f = get(id);
    return f ? f->mask_u64() : 0;
  }
  bool has(F id) const { return get(id) != nullptr; }

 private:
  const Match& m_;
};

class Out {
 public:
  void put(const std::string& s) {
    s_ += s;
    s_ += ',';
  }
  std::string finish() {
    if (!s_.empty() && s_.back() == ',') s_.pop_back();
    return std::move(s_);
  }

 private:
  std::string s_;
};

// format_uint32_masked / format_be64_masked: "%#x" value, "/%#x" mask unless exact.
std::string hex_masked(uint64_t v, uint64_t m, uint64_t full) {
  std::string s = v ? fmt::format("{:#x}", v) : "0";
  if (m != full) s += m ? fmt::format("/{:#x}", m) : "/0";
  return s;
}

// format_be16_masked / format_uint16_masked: decimal when exact, else "0x%x/0x%x".
std::string u16_masked(uint64_t v, uint64_t m) {
  if (m == 0xffff) return std::to_string(v);
  return fmt::format("0x{:x}/0x{:x}", v, m);
}

void put_u32(Out& o, const View& w, F id, const char* name) {
  if (w.k(id)) o.put(fmt::format("{}={}", name, hex_masked(w.v(id), w.k(id), 0xffffffffu)));
}

void put_ipv4(Out& o, const View& w, F id, const char* name) {
  if (w.k(id)) {
    o.put(fmt::format("{}={}", name,
                      fmtx::ipv4_masked(static_cast<uint32_t>(w.v(id)),
                                        static_cast<uint32_t>(w.k(id)))));
  }
}

void put_ipv6(Out& o, const View& w, F id, const char* name) {
  if (auto* f = w.get(id)) o.put(fmt::format("{}={}", name, fmtx::ipv6_masked(f->value, &f->mask)));
}

void put_eth(Out& o, const View& w, F id, const char* name) {
  if (auto* f = w.get(id)) o.put(fmt::format("{}={}", name, fmtx::eth_masked(f->value, &f->mask)));
}

void put_be16(Out& o, uint64_t v, uint64_t m, const char* name) {
  if (m) o.put(fmt::format("{}={}", name, u16_masked(v, m)));
}

}  // namespace

std::string render_match(const Match& m) {
  View w(m);
  Out o;

  put_u32(o, w, F::kPktMark, "pkt_mark");
  put_u32(o, w, F::kRecircId, "recirc_id");
  put_u32(o, w, F::kDpHash, "dp_hash");
  if (w.k(F::kConjId)) o.put(fmt::format("conj_id={}", w.v(F::kConjId)));

  if (uint64_t mask = w.k(F::kCtState) & 0xff) {
    uint32_t v = static_cast<uint32_t>(w.v(F::kCtState));
    if (mask == 0xff) {
      o.put("ct_state=" + fmtx::flags_plain(fmtx::ct_state_bit, v, '|'));
    } else {
      o.put("ct_state=" + fmtx::flags_masked(fmtx::ct_state_bit, v, static_cast<uint32_t>(mask), 0xff));
    }
  }
  if (w.k(F::kCtZone)) o.put("ct_zone=" + u16_masked(w.v(F::kCtZone), w.k(F::kCtZone)));
  put_u32(o, w, F::kCtMark, "ct_mark");
  if (auto* f = w.get(F::kCtLabel)) {
    std::string s = "ct_label=" + fmtx::hex_trimmed(f->value.data(), f->value.size());
    if (!f->exact()) s += "/" + fmtx::hex_trimmed(f->mask.data(), f->mask.size());
    o.put(s);
  }
  put_ipv4(o, w, F::kCtNwSrc, "ct_nw_src");
  put_ipv6(o, w, F::kCtIpv6Src, "ct_ipv6_src");
  put_ipv4(o, w, F::kCtNwDst, "ct_nw_dst");
  put_ipv6(o, w, F::kCtIpv6Dst, "ct_ipv6_dst");
  if (w.k(F::kCtNwProto)) {
    o.put(fmt::format("ct_nw_proto={}", w.v(F::kCtNwProto)));
    put_be16(o, w.v(F::kCtTpSrc), w.k(F::kCtTpSrc), "ct_tp_src");
    put_be16(o, w.v(F::kCtTpDst), w.k(F::kCtTpDst), "ct_tp_dst");
  }

  uint16_t dl_type = static_cast<uint16_t>(w.v(F::kEthType));
  if (w.k(F::kPacketType) && w.v(F::kPacketType) != 0) {
    uint32_t pt = static_cast<uint32_t>(w.v(F::kPacketType));
    o.put(fmt::format("packet_type=({},{:#x})", pt >> 16, pt & 0xffff));
    if ((pt >> 16) == 1) dl_type = static_cast<uint16_t>(pt);
  }

  uint8_t nw_proto = static_cast<uint8_t>(w.v(F::kIpProto));
  bool has_proto = w.k(F::kIpProto) != 0;
  bool skip_type = false, skip_proto = false;
  if (w.k(F::kEthType)) {
    skip_type = true;
    if (dl_type == kEthIp) {
      if (has_proto) {
        skip_proto = true;
        switch (nw_proto) {
          case kProtoIcmp: o.put("icmp"); break;
          case kProtoTcp: o.put("tcp"); break;
          case kProtoUdp: o.put("udp"); break;
          case kProtoSctp: o.put("sctp"); break;
          default: o.put("ip"); skip_proto = false; break;
        }
      } else {
        o.put("ip");
      }
    } else if (dl_type == kEthIpv6) {
      if (has_proto) {
        skip_proto = true;
        switch (nw_proto) {
          case kProtoIcmpv6: o.put("icmp6"); break;
          case kProtoTcp: o.put("tcp6"); break;
          case kProtoUdp: o.put("udp6"); break;
          case kProtoSctp: o.put("sctp6"); break;
          default: o.put("ipv6"); skip_proto = false; break;
        }
      } else {
        o.put("ipv6");
      }
    } else if (dl_type == kEthArp) {
      o.put("arp");
    } else if (dl_type == kEthRarp) {
      o.put("rarp");
    } else if (dl_type == kEthMpls) {
      o.put("mpls");
    } else if (dl_type == kEthMplsMcast) {
      o.put("mplsm");
    } else {
      skip_type = false;
    }
  }

  for (int i = 0; i < 16; ++i) {
    auto id = static_cast<F>(static_cast<int>(F::kReg0) + i);
    put_u32(o, w, id, fmt::format("reg{}", i).c_str());
  }

  if (w.k(F::kTunId)) o.put("tun_id=" + hex_masked(w.v(F::kTunId), w.k(F::kTunId), ~0ull));
  put_ipv4(o, w, F::kTunSrc, "tun_src");
  put_ipv4(o, w, F::kTunDst, "tun_dst");
  put_ipv6(o, w, F::kTunIpv6Src, "tun_ipv6_src");
  put_ipv6(o, w, F::kTunIpv6Dst, "tun_ipv6_dst");
  put_be16(o, w.v(F::kTunGbpId), w.k(F::kTunGbpId), "tun_gbp_id");
  if (w.k(F::kTunGbpFlags)) o.put(fmt::format("tun_gbp_flags={:#x}", w.v(F::kTunGbpFlags)));
  // A match can only hold oam, but OVS formats it against all four tunnel
  // flag bits (FLOW_TNL_F_MASK), so an oam match prints "+oam".
  if (uint64_t tm = w.k(F::kTunFlags) & 1) {
    o.put("tun_flags=" + fmtx::flags_masked(fmtx::tun_flag_bit,
                                            static_cast<uint32_t>(w.v(F::kTunFlags) & 1),
                                            static_cast<uint32_t>(tm), 0xf));
  }

  if (w.k(F::kMetadata)) o.put("metadata=" + hex_masked(w.v(F::kMetadata), w.k(F::kMetadata), ~0ull));

  if (w.k(F::kInPort)) o.put("in_port=" + fmtx::port(static_cast<uint32_t>(w.v(F::kInPort))));

  if (uint64_t tm = w.k(F::kVlanTci)) {
    uint64_t tv = w.v(F::kVlanTci);
    uint64_t vid_mask = tm & 0x0fff, pcp_mask = tm & 0xe000, cfi = tm & 0x1000;
    if (cfi && (tv & 0x1000) && (!vid_mask || vid_mask == 0x0fff) &&
        (!pcp_mask || pcp_mask == 0xe000) && (vid_mask || pcp_mask)) {
      if (vid_mask) o.put(fmt::format("dl_vlan={}", tv & 0x0fff));
      if (pcp_mask) o.put(fmt::format("dl_vlan_pcp={}", (tv >> 13) & 7));
    } else if (tm == 0xffff) {
      o.put(fmt::format("vlan_tci=0x{:04x}", tv));
    } else {
      o.put(fmt::format("vlan_tci=0x{:04x}/0x{:04x}", tv, tm));
    }
  }

  put_eth(o, w, F::kEthSrc, "dl_src");
  put_eth(o, w, F::kEthDst, "dl_dst");

  if (!skip_type && w.k(F::kEthType)) o.put(fmt::format("dl_type=0x{:04x}", dl_type));

  bool is_arp = dl_type == kEthArp || dl_type == kEthRarp;
  if (dl_type == kEthIpv6) {
    put_ipv6(o, w, F::kIpv6Src, "ipv6_src");
    put_ipv6(o, w, F::kIpv6Dst, "ipv6_dst");
    if (uint64_t lm = w.k(F::kIpv6Label)) {
      if (lm == 0xffffffff) {
        o.put(fmt::format("ipv6_label=0x{:05x}", w.v(F::kIpv6Label)));
      } else {
        o.put(fmt::format("ipv6_label=0x{:05x}/0x{:05x}", w.v(F::kIpv6Label), lm));
      }
    }
  } else if (is_arp) {
    put_ipv4(o, w, F::kArpSpa, "arp_spa");
    put_ipv4(o, w, F::kArpTpa, "arp_tpa");
  } else {
    put_ipv4(o, w, F::kIpv4Src, "nw_src");
    put_ipv4(o, w, F::kIpv4Dst, "nw_dst");
  }
  if (is_arp && w.k(F::kArpOp)) {
    // NXM carries the ARP opcode in its own field; OVS keeps it in nw_proto.
    o.put(fmt::format("arp_op={}", w.v(F::kArpOp) & 0xff));
  } else if (!skip_proto && has_proto) {
    o.put(fmt::format("{}={}", is_arp ? "arp_op" : "nw_proto", nw_proto));
  }
  if (is_arp) {
    put_eth(o, w, F::kArpSha, "arp_sha");
    put_eth(o, w, F::kArpTha, "arp_tha");
  }
  if (w.k(F::kIpTos) & 0xfc) o.put(fmt::format("nw_tos={}", w.v(F::kIpTos) & 0xfc));
  if (w.k(F::kIpEcn) & 0x03) o.put(fmt::format("nw_ecn={}", w.v(F::kIpEcn) & 0x03));
  if (w.k(F::kIpTtl)) o.put(fmt::format("nw_ttl={}", w.v(F::kIpTtl)));
  if (w.k(F::kMplsLabel)) o.put(fmt::format("mpls_label={}", w.v(F::kMplsLabel)));
  if (w.k(F::kMplsTc)) o.put(fmt::format("mpls_tc={}", w.v(F::kMplsTc)));
  if (w.k(F::kMplsTtl)) o.put(fmt::format("mpls_ttl={}", w.v(F::kMplsTtl)));
  if (w.k(F::kMplsBos)) o.put(fmt::format("mpls_bos={}", w.v(F::kMplsBos)));

  switch (w.k(F::kIpFrag) & 3) {
    case 3: {
      uint64_t f = w.v(F::kIpFrag);
      o.put(std::string("nw_frag=") +
            ((f & 1) ? ((f & 2) ? "later" : "first") : ((f & 2) ? "<error>" : "no")));
      break;
    }
    case 1: o.put(std::string("nw_frag=") + ((w.v(F::kIpFrag) & 1) ? "yes" : "no")); break;
    case 2: o.put(std::string("nw_frag=") + ((w.v(F::kIpFrag) & 2) ? "later" : "not_later")); break;
    default: break;
  }

  // OVS stores L4 ports and ICMP type/code in shared tp_src/tp_dst slots.
  auto tp = [&](F a, F b, F c, F d, uint64_t& v, uint64_t& k) {
    for (F id : {a, b, c, d}) {
      if (w.k(id)) {
        v = w.v(id);
        k = w.k(id);
        if (field_info(id).n_bytes == 1 && k == 0xff) k = 0xffff;
        return;
      }
    }
  };
  uint64_t sv = 0, sk = 0, dv = 0, dk = 0;
  tp(F::kTcpSrc, F::kUdpSrc, F::kSctpSrc, dl_type == kEthIpv6 ? F::kIcmpv6Type : F::kIcmpType, sv, sk);
  tp(F::kTcpDst, F::kUdpDst, F::kSctpDst, dl_type == kEthIpv6 ? F::kIcmpv6Code : F::kIcmpCode, dv, dk);
  if (dl_type == kEthIp && nw_proto == kProtoIcmp) {
    put_be16(o, sv, sk, "icmp_type");
    put_be16(o, dv, dk, "icmp_code");
  } else if (dl_type == kEthIpv6 && nw_proto == kProtoIcmpv6) {
    put_be16(o, sv, sk, "icmp_type");
    put_be16(o, dv, dk, "icmp_code");
    put_ipv6(o, w, F::kNdTarget, "nd_target");
    put_eth(o, w, F::kNdSll, "nd_sll");
    put_eth(o, w, F::kNdTll, "nd_tll");
  } else {
    put_be16(o, sv, sk, "tp_src");
    put_be16(o, dv, dk, "tp_dst");
  }
  if ((dl_type == kEthIp || dl_type == kEthIpv6) && nw_proto == kProtoTcp) {
    if (uint64_t fm = w.k(F::kTcpFlags) & 0x0fff) {
      o.put("tcp_flags=" + fmtx::flags_masked(fmtx::tcp_flag_bit,
                                              static_cast<uint32_t>(w.v(F::kTcpFlags) & 0x0fff),
                                              static_cast<uint32_t>(fm), 0x0fff));
    }
  }

  for (const auto& u : m.unknown) {
    std::string s = fmt::format("nxm:{:08x}", u.header);
    if ((u.header >> 16) == 0xffff) s += fmt::format(":{:08x}", u.experimenter);
    o.put(s + "=" + hex_bytes(u.payload));
  }
  return o.finish();
}

std::string FlowIdentity::to_string() const {
  std::string s = fmt::format("table={}, priority={}, cookie={:#x}, ", table, priority, cookie);
  if (!match.empty()) s += match + " ";
  s += "actions=" + actions;
  return s;
}

std::string render_flow_body(uint16_t priority, const std::string& match,
                             const std::string& actions) {
  std::string s;
  if (priority != kDefaultPriority) {
    s = fmt::format("priority={}", priority);
    if (!match.empty()) s += ",";
  }
  s += match;
  if (!s.empty()) s += " ";
  return s + "actions=" + actions;
}

}  // namespace hvtel::ovs
