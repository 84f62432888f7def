#include "ovs/openflow/nxm.h"

#include <fmt/core.h>

#include <algorithm>
#include <array>

namespace hvtel::ovs {
namespace {

using F = FieldId;
using Fmt = FieldFormat;

// Field properties (names as printed by ovs-ofctl; n_bits as in OVS's
// meta-flow definitions, which decide "[]" vs "[a..b]" in subfield syntax).
constexpr FieldInfo kFields[] = {
    {F::kDpHash, "dp_hash", "NXM_NX_DP_HASH", 4, 32, Fmt::kHex},
    {F::kRecircId, "recirc_id", "NXM_NX_RECIRC_ID", 4, 32, Fmt::kDecimal},
    {F::kPacketType, "packet_type", "OXM_OF_PACKET_TYPE", 4, 32, Fmt::kPacketType},
    {F::kConjId, "conj_id", "NXM_NX_CONJ_ID", 4, 32, Fmt::kDecimal},
    {F::kTunId, "tun_id", "NXM_NX_TUN_ID", 8, 64, Fmt::kHex},
    {F::kTunSrc, "tun_src", "NXM_NX_TUN_IPV4_SRC", 4, 32, Fmt::kIpv4},
    {F::kTunDst, "tun_dst", "NXM_NX_TUN_IPV4_DST", 4, 32, Fmt::kIpv4},
    {F::kTunIpv6Src, "tun_ipv6_src", "NXM_NX_TUN_IPV6_SRC", 16, 128, Fmt::kIpv6},
    {F::kTunIpv6Dst, "tun_ipv6_dst", "NXM_NX_TUN_IPV6_DST", 16, 128, Fmt::kIpv6},
    {F::kTunFlags, "tun_flags", "NXM_NX_TUN_FLAGS", 2, 1, Fmt::kTunFlags},
    {F::kTunGbpId, "tun_gbp_id", "NXM_NX_TUN_GBP_ID", 2, 16, Fmt::kDecimal},
    {F::kTunGbpFlags, "tun_gbp_flags", "NXM_NX_TUN_GBP_FLAGS", 1, 8, Fmt::kHex},
    {F::kMetadata, "metadata", "OXM_OF_METADATA", 8, 64, Fmt::kHex},
    {F::kInPort, "in_port", "NXM_OF_IN_PORT", 2, 16, Fmt::kOfpPort},
    {F::kPktMark, "pkt_mark", "NXM_NX_PKT_MARK", 4, 32, Fmt::kHex},
    {F::kCtState, "ct_state", "NXM_NX_CT_STATE", 4, 32, Fmt::kCtState},
    {F::kCtZone, "ct_zone", "NXM_NX_CT_ZONE", 2, 16, Fmt::kHex},
    {F::kCtMark, "ct_mark", "NXM_NX_CT_MARK", 4, 32, Fmt::kHex},
    {F::kCtLabel, "ct_label", "NXM_NX_CT_LABEL", 16, 128, Fmt::kHex},
    {F::kCtNwProto, "ct_nw_proto", "NXM_NX_CT_NW_PROTO", 1, 8, Fmt::kDecimal},
    {F::kCtNwSrc, "ct_nw_src", "NXM_NX_CT_NW_SRC", 4, 32, Fmt::kIpv4},
    {F::kCtNwDst, "ct_nw_dst", "NXM_NX_CT_NW_DST", 4, 32, Fmt::kIpv4},
    {F::kCtIpv6Src, "ct_ipv6_src", "NXM_NX_CT_IPV6_SRC", 16, 128, Fmt::kIpv6},
    {F::kCtIpv6Dst, "ct_ipv6_dst", "NXM_NX_CT_IPV6_DST", 16, 128, Fmt::kIpv6},
    {F::kCtTpSrc, "ct_tp_src", "NXM_NX_CT_TP_SRC", 2, 16, Fmt::kDecimal},
    {F::kCtTpDst, "ct_tp_dst", "NXM_NX_CT_TP_DST", 2, 16, Fmt::kDecimal},
    {F::kReg0, "reg0", "NXM_NX_REG0", 4, 32, Fmt::kHex},
    {F::kReg1, "reg1", "NXM_NX_REG1", 4, 32, Fmt::kHex},
    {F::kReg2, "reg2", "NXM_NX_REG2", 4, 32, Fmt::kHex},
    {F::kReg3, "reg3", "NXM_NX_REG3", 4, 32, Fmt::kHex},
    {F::kReg4, "reg4", "NXM_NX_REG4", 4, 32, Fmt::kHex},
    {F::kReg5, "reg5", "NXM_NX_REG5", 4, 32, Fmt::kHex},
    {F::kReg6, "reg6", "NXM_NX_REG6", 4, 32, Fmt::kHex},
    {F::kReg7, "reg7", "NXM_NX_REG7", 4, 32, Fmt::kHex},
    {F::kReg8, "reg8", "NXM_NX_REG8", 4, 32, Fmt::kHex},
    {F::kReg9, "reg9", "NXM_NX_REG9", 4, 32, Fmt::kHex},
    {F::kReg10, "reg10", "NXM_NX_REG10", 4, 32, Fmt::kHex},
    {F::kReg11, "reg11", "NXM_NX_REG11", 4, 32, Fmt::kHex},
    {F::kReg12, "reg12", "NXM_NX_REG12", 4, 32, Fmt::kHex},
    {F::kReg13, "reg13", "NXM_NX_REG13", 4, 32, Fmt::kHex},
    {F::kReg14, "reg14", "NXM_NX_REG14", 4, 32, Fmt::kHex},
    {F::kReg15, "reg15", "NXM_NX_REG15", 4, 32, Fmt::kHex},
    {F::kEthSrc, "eth_src", "NXM_OF_ETH_SRC", 6, 48, Fmt::kEthernet},
    {F::kEthDst, "eth_dst", "NXM_OF_ETH_DST", 6, 48, Fmt::kEthernet},
    {F::kEthType, "eth_type", "NXM_OF_ETH_TYPE", 2, 16, Fmt::kHex},
    {F::kVlanTci, "vlan_tci", "NXM_OF_VLAN_TCI", 2, 16, Fmt::kHex},
    {F::kMplsLabel, "mpls_label", "OXM_OF_MPLS_LABEL", 4, 20, Fmt::kDecimal},
    {F::kMplsTc, "mpls_tc", "OXM_OF_MPLS_TC", 1, 3, Fmt::kDecimal},
    {F::kMplsBos, "mpls_bos", "OXM_OF_MPLS_BOS", 1, 1, Fmt::kDecimal},
    {F::kMplsTtl, "mpls_ttl", "NXM_NX_MPLS_TTL", 1, 8, Fmt::kDecimal},
    {F::kIpv4Src, "ip_src", "NXM_OF_IP_SRC", 4, 32, Fmt::kIpv4},
    {F::kIpv4Dst, "ip_dst", "NXM_OF_IP_DST", 4, 32, Fmt::kIpv4},
    {F::kIpv6Src, "ipv6_src", "NXM_NX_IPV6_SRC", 16, 128, Fmt::kIpv6},
    {F::kIpv6Dst, "ipv6_dst", "NXM_NX_IPV6_DST", 16, 128, Fmt::kIpv6},
    {F::kIpv6Label, "ipv6_label", "NXM_NX_IPV6_LABEL", 4, 20, Fmt::kHex},
    {F::kIpProto, "nw_proto", "NXM_OF_IP_PROTO", 1, 8, Fmt::kDecimal},
    {F::kIpTos, "nw_tos", "NXM_OF_IP_TOS", 1, 8, Fmt::kDecimal},
    {F::kIpEcn, "nw_ecn", "NXM_NX_IP_ECN", 1, 2, Fmt::kDecimal},
    {F::kIpTtl, "nw_ttl", "NXM_NX_IP_TTL", 1, 8, Fmt::kDecimal},
    {F::kIpFrag, "ip_frag", "NXM_NX_IP_FRAG", 1, 2, Fmt::kFrag},
    {F::kArpOp, "arp_op", "NXM_OF_ARP_OP", 2, 16, Fmt::kDecimal},
    {F::kArpSpa, "arp_spa", "NXM_OF_ARP_SPA", 4, 32, Fmt::kIpv4},
    {F::kArpTpa, "arp_tpa", "NXM_OF_ARP_TPA", 4, 32, Fmt::kIpv4},
    {F::kArpSha, "arp_sha", "NXM_NX_ARP_SHA", 6, 48, Fmt::kEthernet},
    {F::kArpTha, "arp_tha", "NXM_NX_ARP_THA", 6, 48, Fmt::kEthernet},
    {F::kTcpSrc, "tcp_src", "NXM_OF_TCP_SRC", 2, 16, Fmt::kDecimal},
    {F::kTcpDst, "tcp_dst", "NXM_OF_TCP_DST", 2, 16, Fmt::kDecimal},
    {F::kTcpFlags, "tcp_flags", "NXM_NX_TCP_FLAGS", 2, 12, Fmt::kTcpFlags},
    {F::kUdpSrc, "udp_src", "NXM_OF_UDP_SRC", 2, 16, Fmt::kDecimal},
    {F::kUdpDst, "udp_dst", "NXM_OF_UDP_DST", 2, 16, Fmt::kDecimal},
    {F::kSctpSrc, "sctp_src", "OXM_OF_SCTP_SRC", 2, 16, Fmt::kDecimal},
    {F::kSctpDst, "sctp_dst", "OXM_OF_SCTP_DST", 2, 16, Fmt::kDecimal},
    {F::kIcmpType, "icmp_type", "NXM_OF_ICMP_TYPE", 1, 8, Fmt::kDecimal},
    {F::kIcmpCode, "icmp_code", "NXM_OF_ICMP_CODE", 1, 8, Fmt::kDecimal},
    {F::kIcmpv6Type, "icmpv6_type", "NXM_NX_ICMPV6_TYPE", 1, 8, Fmt::kDecimal},
    {F::kIcmpv6Code, "icmpv6_code", "NXM_NX_ICMPV6_CODE", 1, 8, Fmt::kDecimal},
    {F::kNdTarget, "nd_target", "NXM_NX_ND_TARGET", 16, 128, Fmt::kIpv6},
    {F::kNdSll, "nd_sll", "NXM_NX_ND_SLL", 6, 48, Fmt::kEthernet},
    {F::kNdTll, "nd_tll", "NXM_NX_ND_TLL", 6, 48, Fmt::kEthernet},
    {F::kVlanVid, "vlan_vid", "OXM_OF_VLAN_VID", 2, 12, Fmt::kDecimal},
    {F::kVlanPcp, "vlan_pcp", "OXM_OF_VLAN_PCP", 1, 3, Fmt::kDecimal},
    {F::kIpDscpShifted, "ip_dscp", "OXM_OF_IP_DSCP", 1, 6, Fmt::kDecimal},
    {F::kInPortOxm, "in_port_oxm", "OXM_OF_IN_PORT", 4, 32, Fmt::kOfp11Port},
    {F::kXreg0, "xreg0", "OXM_OF_PKT_REG0", 8, 64, Fmt::kHex},
    {F::kXreg1, "xreg1", "OXM_OF_PKT_REG1", 8, 64, Fmt::kHex},
    {F::kXreg2, "xreg2", "OXM_OF_PKT_REG2", 8, 64, Fmt::kHex},
    {F::kXreg3, "xreg3", "OXM_OF_PKT_REG3", 8, 64, Fmt::kHex},
    {F::kXreg4, "xreg4", "OXM_OF_PKT_REG4", 8, 64, Fmt::kHex},
    {F::kXreg5, "xreg5", "OXM_OF_PKT_REG5", 8, 64, Fmt::kHex},
    {F::kXreg6, "xreg6", "OXM_OF_PKT_REG6", 8, 64, Fmt::kHex},
    {F::kXreg7, "xreg7", "OXM_OF_PKT_REG7", 8, 64, Fmt::kHex},
};
static_assert(std::size(kFields) == static_cast<size_t>(FieldId::kCount));

constexpr bool fields_in_order() {
  for (size_t i = 0; i < std::size(kFields); ++i) {
    if (static_cast<size_t>(kFields[i].id) != i) return false;
  }
  return true;
}
static_assert(fields_in_order(), "kFields must be indexed by FieldId");

struct HeaderEntry {
  uint16_t oxm_class;
  uint8_t field;
  FieldId id;
};

constexpr uint16_t kNxm0 = 0x0000, kNxm1 = 0x0001, kOfb = 0x8000, kPktRegs = 0x8001;

// Wire headers. The first entry for a FieldId is the one encode_nxm() uses.
constexpr HeaderEntry kHeaders[] = {
    {kNxm0, 0, F::kInPort},      {kNxm0, 1, F::kEthDst},      {kNxm0, 2, F::kEthSrc},
    {kNxm0, 3, F::kEthType},     {kNxm0, 4, F::kVlanTci},     {kNxm0, 5, F::kIpTos},
    {kNxm0, 6, F::kIpProto},     {kNxm0, 7, F::kIpv4Src},     {kNxm0, 8, F::kIpv4Dst},
    {kNxm0, 9, F::kTcpSrc},      {kNxm0, 10, F::kTcpDst},     {kNxm0, 11, F::kUdpSrc},
    {kNxm0, 12, F::kUdpDst},     {kNxm0, 13, F::kIcmpType},   {kNxm0, 14, F::kIcmpCode},
    {kNxm0, 15, F::kArpOp},      {kNxm0, 16, F::kArpSpa},     {kNxm0, 17, F::kArpTpa},
    {kNxm1, 0, F::kReg0},        {kNxm1, 1, F::kReg1},        {kNxm1, 2, F::kReg2},
    {kNxm1, 3, F::kReg3},        {kNxm1, 4, F::kReg4},        {kNxm1, 5, F::kReg5},
    {kNxm1, 6, F::kReg6},        {kNxm1, 7, F::kReg7},        {kNxm1, 8, F::kReg8},
    {kNxm1, 9, F::kReg9},        {kNxm1, 10, F::kReg10},      {kNxm1, 11, F::kReg11},
    {kNxm1, 12, F::kReg12},      {kNxm1, 13, F::kReg13},      {kNxm1, 14, F::kReg14},
    {kNxm1, 15, F::kReg15},      {kNxm1, 16, F::kTunId},      {kNxm1, 17, F::kArpSha},
    {kNxm1, 18, F::kArpTha},     {kNxm1, 19, F::kIpv6Src},    {kNxm1, 20, F::kIpv6Dst},
    {kNxm1, 21, F::kIcmpv6Type}, {kNxm1, 22, F::kIcmpv6Code}, {kNxm1, 23, F::kNdTarget},
    {kNxm1, 24, F::kNdSll},      {kNxm1, 25, F::kNdTll},      {kNxm1, 26, F::kIpFrag},
    {kNxm1, 27, F::kIpv6Label},  {kNxm1, 28, F::kIpEcn},      {kNxm1, 29, F::kIpTtl},
    {kNxm1, 30, F::kMplsTtl},    {kNxm1, 31, F::kTunSrc},     {kNxm1, 32, F::kTunDst},
    {kNxm1, 33, F::kPktMark},    {kNxm1, 34, F::kTcpFlags},   {kNxm1, 35, F::kDpHash},
    {kNxm1, 36, F::kRecircId},   {kNxm1, 37, F::kConjId},     {kNxm1, 38, F::kTunGbpId},
    {kNxm1, 39, F::kTunGbpFlags}, {kNxm1, 104, F::kTunFlags}, {kNxm1, 105, F::kCtState},
    {kNxm1, 106, F::kCtZone},    {kNxm1, 107, F::kCtMark},    {kNxm1, 108, F::kCtLabel},
    {kNxm1, 109, F::kTunIpv6Src}, {kNxm1, 110, F::kTunIpv6Dst}, {kNxm1, 119, F::kCtNwProto},
    {kNxm1, 120, F::kCtNwSrc},   {kNxm1, 121, F::kCtNwDst},   {kNxm1, 122, F::kCtIpv6Src},
    {kNxm1, 123, F::kCtIpv6Dst}, {kNxm1, 124, F::kCtTpSrc},   {kNxm1, 125, F::kCtTpDst},
    {kOfb, 0, F::kInPortOxm},    {kOfb, 2, F::kMetadata},     {kOfb, 3, F::kEthDst},
    {kOfb, 4, F::kEthSrc},       {kOfb, 5, F::kEthType},      {kOfb, 6, F::kVlanVid},
    {kOfb, 7, F::kVlanPcp},      {kOfb, 8, F::kIpDscpShifted}, {kOfb, 9, F::kIpEcn},
    {kOfb, 10, F::kIpProto},     {kOfb, 11, F::kIpv4Src},     {kOfb, 12, F::kIpv4Dst},
    {kOfb, 13, F::kTcpSrc},      {kOfb, 14, F::kTcpDst},      {kOfb, 15, F::kUdpSrc},
    {kOfb, 16, F::kUdpDst},      {kOfb, 17, F::kSctpSrc},     {kOfb, 18, F::kSctpDst},
    {kOfb, 19, F::kIcmpType},    {kOfb, 20, F::kIcmpCode},    {kOfb, 21, F::kArpOp},
    {kOfb, 22, F::kArpSpa},      {kOfb, 23, F::kArpTpa},      {kOfb, 24, F::kArpSha},
    {kOfb, 25, F::kArpTha},      {kOfb, 26, F::kIpv6Src},     {kOfb, 27, F::kIpv6Dst},
    {kOfb, 28, F::kIpv6Label},   {kOfb, 29, F::kIcmpv6Type},  {kOfb, 30, F::kIcmpv6Code},
    {kOfb, 31, F::kNdTarget},    {kOfb, 32, F::kNdSll},       {kOfb, 33, F::kNdTll},
    {kOfb, 34, F::kMplsLabel},   {kOfb, 35, F::kMplsTc},      {kOfb, 36, F::kMplsBos},
    {kOfb, 38, F::kTunId},       {kOfb, 44, F::kPacketType},
    {kPktRegs, 0, F::kXreg0},    {kPktRegs, 1, F::kXreg1},    {kPktRegs, 2, F::kXreg2},
    {kPktRegs, 3, F::kXreg3},    {kPktRegs, 4, F::kXreg4},    {kPktRegs, 5, F::kXreg5},
    {kPktRegs, 6, F::kXreg6},    {kPktRegs, 7, F::kXreg7},
};

// Experimenter OXMs (class 0xffff) OVS sends in OpenFlow 1.3/1.4.
struct ExperimenterEntry {
  uint32_t experimenter;
  uint8_t field;
  FieldId id;
};
constexpr uint32_t kOnfExperimenter = 0x4f4e4600;
constexpr ExperimenterEntry kExperimenterHeaders[] = {
    {kOnfExperimenter, 42, F::kTcpFlags},  // ONFOXM_ET_TCP_FLAGS
};

uint64_t be_value(const Bytes& b) {
  uint64_t v = 0;
  for (uint8_t c : b) v = (v << 8) | c;
  return v;
}

// Adds or merges a normalized field. Merging is used only for vlan_tci, which
// OXM splits into vlan_vid and vlan_pcp.
Status add_field(Match& m, FieldId id, Bytes value, Bytes mask, bool merge) {
  for (size_t i = 0; i < value.size(); ++i) value[i] &= mask[i];
  if (all_zero(mask)) return {};
  for (auto& f : m.fields) {
    if (f.id != id) continue;
    if (!merge) return fail(fmt::format("duplicate field {}", field_info(id).name));
    for (size_t i = 0; i < value.size(); ++i) {
      if (f.mask[i] & mask[i]) return fail(fmt::format("overlapping {}", field_info(id).name));
      f.value[i] |= value[i];
      f.mask[i] |= mask[i];
    }
    return {};
  }
  m.fields.push_back(MatchField{id, std::move(value), std::move(mask)});
  return {};
}

}  // namespace

const FieldInfo& field_info(FieldId id) {
  size_t i = static_cast<size_t>(id);
  if (i >= std::size(kFields)) i = 0;
  return kFields[i];
}

size_t TlvHeader::value_len() const {
  size_t payload = length;
  if (oxm_class == 0xffff) payload = payload >= 4 ? payload - 4 : 0;
  return hasmask ? payload / 2 : payload;
}

std::optional<FieldId> field_by_header(const TlvHeader& h) {
  if (h.oxm_class == 0xffff) {
    for (const auto& e : kExperimenterHeaders) {
      if (e.experimenter == h.experimenter && e.field == h.field &&
          field_info(e.id).n_bytes == h.value_len()) {
        return e.id;
      }
    }
    return std::nullopt;  // other experimenter fields are kept raw
  }
  for (const auto& e : kHeaders) {
    if (e.oxm_class == h.oxm_class && e.field == h.field) {
      if (field_info(e.id).n_bytes != h.value_len()) return std::nullopt;
      return e.id;
    }
  }
  return std::nullopt;
}

std::optional<TlvHeader> read_tlv_header(ByteReader& r) {
  auto raw = r.u32();
  if (!raw) return std::nullopt;
  TlvHeader h;
  h.oxm_class = static_cast<uint16_t>(*raw >> 16);
  h.field = static_cast<uint8_t>((*raw >> 9) & 0x7f);
  h.hasmask = (*raw >> 8) & 1;
  h.length = static_cast<uint8_t>(*raw);
  if (h.oxm_class == 0xffff) {
    auto exp = r.u32();
    if (!exp || h.length < 4) return std::nullopt;
    h.experimenter = *exp;
  }
  return h;
}

bool MatchField::exact() const {
  return std::all_of(mask.begin(), mask.end(), [](uint8_t c) { return c == 0xff; });
}
uint64_t MatchField::value_u64() const { return be_value(value); }
uint64_t MatchField::mask_u64() const { return be_value(mask); }

bool operator==(const MatchField& a, const MatchField& b) {
  return a.id == b.id && a.value == b.value && a.mask == b.mask;
}
bool operator==(const RawTlv& a, const RawTlv& b) {
  return a.header == b.header && a.experimenter == b.experimenter && a.payload == b.payload;
}

const MatchField* Match::find(FieldId id) const {
  for (const auto& f : fields) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

Result<Match> decode_nxm(ByteView data) {
  Match m;
  ByteReader r(data);
  while (r.remaining() > 0) {
    size_t start = r.pos();
    auto h = read_tlv_header(r);
    if (!h) return fail(fmt::format("truncated nxm header at offset {}", start));
    size_t payload_len = h->length - (h->oxm_class == 0xffff ? 4u : 0u);
    if (h->length == 0 || (h->hasmask && payload_len % 2 != 0)) {
      return fail(fmt::format("bad nxm length {} at offset {}", h->length, start));
    }
    auto payload = r.bytes(payload_len);
    if (!payload) return fail(fmt::format("truncated nxm value at offset {}", start));
    size_t vlen = h->value_len();
    Bytes value(payload->begin(), payload->begin() + static_cast<std::ptrdiff_t>(vlen));
    Bytes mask = h->hasmask
                     ? Bytes(payload->begin() + static_cast<std::ptrdiff_t>(vlen), payload->end())
                     : Bytes(vlen, 0xff);

    auto id = field_by_header(*h);
    if (!id) {
      RawTlv raw;
      raw.header = load_be32(data.data() + start);
      raw.experimenter = h->experimenter;
      raw.payload.assign(payload->begin(), payload->end());
      m.unknown.push_back(std::move(raw));
      continue;
    }
    // OVS rejects a value with 1-bits where the mask has 0-bits.
    for (size_t i = 0; i < vlen; ++i) {
      if (value[i] & ~mask[i]) {
        return fail(fmt::format("{} value has bits outside its mask", field_info(*id).name));
      }
    }

    Status st;
    switch (*id) {
      case F::kInPortOxm: {
        if (h->hasmask) return fail("in_port cannot be masked");
        uint32_t p = static_cast<uint32_t>(be_value(value));
        uint32_t p16;
        if (p < 0xff00) {
          p16 = p;
        } else if (p >= 0xffffff00) {
          p16 = p - 0xffff0000;
        } else {
          return fail(fmt::format("OXM in_port {} out of range", p));
        }
        st = add_field(m, F::kInPort, be_bytes(p16, 2), Bytes(2, 0xff), false);
        break;
      }
      case F::kVlanVid: {
        uint16_t v = static_cast<uint16_t>(be_value(value)) & 0x1fff;
        uint16_t k = static_cast<uint16_t>(be_value(mask)) & 0x1fff;
        st = add_field(m, F::kVlanTci, be_bytes(v, 2), be_bytes(k, 2), true);
        break;
      }
      case F::kVlanPcp: {
        uint16_t v = static_cast<uint16_t>(((value[0] & 7) << 13) | 0x1000);
        st = add_field(m, F::kVlanTci, be_bytes(v, 2), be_bytes(0xe000, 2), true);
        break;
      }
      case F::kIpDscpShifted:
        st = add_field(m, F::kIpTos, Bytes{static_cast<uint8_t>(value[0] << 2)},
                       Bytes{static_cast<uint8_t>(mask[0] << 2)}, false);
        break;
      case F::kXreg0: case F::kXreg1: case F::kXreg2: case F::kXreg3:
      case F::kXreg4: case F::kXreg5: case F::kXreg6: case F::kXreg7: {
        int n = static_cast<int>(*id) - static_cast<int>(F::kXreg0);
        auto hi = static_cast<FieldId>(static_cast<int>(F::kReg0) + 2 * n);
        auto lo = static_cast<FieldId>(static_cast<int>(F::kReg0) + 2 * n + 1);
        st = add_field(m, hi, Bytes(value.begin(), value.begin() + 4),
                       Bytes(mask.begin(), mask.begin() + 4), false);
        if (st) {
          st = add_field(m, lo, Bytes(value.begin() + 4, value.end()),
                         Bytes(mask.begin() + 4, mask.end()), false);
        }
        break;
      }
      default:
        st = add_field(m, *id, std::move(value), std::move(mask), false);
        break;
    }
    if (!st) return fail(st.error().context(fmt::format("nxm at offset {}", start)));
  }
  std::sort(m.fields.begin(), m.fields.end(),
            [](const MatchField& a, const MatchField& b) { return a.id < b.id; });
  return m;
}

std::optional<uint32_t> preferred_header(FieldId id) {
  for (const auto& e : kHeaders) {
    if (e.id == id) {
      return (static_cast<uint32_t>(e.oxm_class) << 16) | (static_cast<uint32_t>(e.field) << 9) |
             field_info(id).n_bytes;
    }
  }
  return std::nullopt;
}

Result<Match> decode_ofp_match(ByteView data, size_t& padded_len) {
  ByteReader r(data);
  auto type = r.u16();
  auto length = r.u16();
  if (!type || !length) return fail("ofp_match shorter than its header");
  if (*type != 1) return fail(fmt::format("ofp_match type {} is not OXM", *type));
  padded_len = (static_cast<size_t>(*length) + 7) / 8 * 8;
  if (*length < 4 || padded_len > data.size()) {
    return fail(fmt::format("ofp_match length {} overruns {} bytes", *length, data.size()));
  }
  return decode_nxm(data.subspan(4, *length - 4u));
}

std::string pack_match_fields(const Match& m) {
  std::string out;
  size_t n = 0;
  for (const auto& f : m.fields) n += 3 + 2 * f.value.size();
  out.reserve(n);
  for (const auto& f : m.fields) {
    const auto id = static_cast<uint16_t>(f.id);
    out.push_back(static_cast<char>(id >> 8));
    out.push_back(static_cast<char>(id & 0xff));
    out.push_back(static_cast<char>(f.value.size()));
    out.append(f.value.begin(), f.value.end());
    out.append(f.mask.begin(), f.mask.end());
  }
  return out;
}

void for_each_packed_field(std::string_view packed,
                           const std::function<void(FieldId, ByteView, ByteView)>& f) {
  const auto* p = reinterpret_cast<const uint8_t*>(packed.data());
  size_t at = 0;
  while (at + 3 <= packed.size()) {
    const auto id = static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
    const size_t n = p[at + 2];
    if (at + 3 + 2 * n > packed.size()) return;  // only pack_match_fields writes these
    f(static_cast<FieldId>(id), ByteView(p + at + 3, n), ByteView(p + at + 3 + n, n));
    at += 3 + 2 * n;
  }
}

}  // namespace hvtel::ovs
