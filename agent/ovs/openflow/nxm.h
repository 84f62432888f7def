// NXM/OXM match decoding into a normalized match.
//
// A TLV header is 32 bits: class (16) | field (7) | hasmask (1) | length (8);
// experimenter OXM (class 0xffff) adds a 32-bit experimenter id that is counted
// in the length. Fields that OVS can express in more than one way (NXM vs OXM,
// OXM vlan_vid/vlan_pcp vs NXM vlan_tci, ip_dscp vs nw_tos, xreg vs reg pairs,
// 32-bit OXM in_port vs 16-bit NXM in_port) are folded into one representation
// so the same flow always yields the same Match regardless of encoding.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ovs/openflow/openflow_wire.h"
#include "base/util/result.h"

namespace hvtel::ovs {

// Normalized field ids. The order is the sort order of Match::fields only;
// rendering follows OVS's own order (canonical.cpp).
enum class FieldId : uint16_t {
  kDpHash, kRecircId, kPacketType, kConjId,
  kTunId, kTunSrc, kTunDst, kTunIpv6Src, kTunIpv6Dst, kTunFlags, kTunGbpId, kTunGbpFlags,
  kMetadata, kInPort, kPktMark,
  kCtState, kCtZone, kCtMark, kCtLabel, kCtNwProto, kCtNwSrc, kCtNwDst, kCtIpv6Src,
  kCtIpv6Dst, kCtTpSrc, kCtTpDst,
  kReg0, kReg1, kReg2, kReg3, kReg4, kReg5, kReg6, kReg7,
  kReg8, kReg9, kReg10, kReg11, kReg12, kReg13, kReg14, kReg15,
  kEthSrc, kEthDst, kEthType, kVlanTci,
  kMplsLabel, kMplsTc, kMplsBos, kMplsTtl,
  kIpv4Src, kIpv4Dst, kIpv6Src, kIpv6Dst, kIpv6Label,
  kIpProto, kIpTos /* DSCP bits in place */, kIpEcn, kIpTtl, kIpFrag,
  kArpOp, kArpSpa, kArpTpa, kArpSha, kArpTha,
  kTcpSrc, kTcpDst, kTcpFlags, kUdpSrc, kUdpDst, kSctpSrc, kSctpDst,
  kIcmpType, kIcmpCode, kIcmpv6Type, kIcmpv6Code,
  kNdTarget, kNdSll, kNdTll,
  // Fields that exist only as action/subfield references, never in a Match.
  kVlanVid, kVlanPcp, kIpDscpShifted, kInPortOxm, kXreg0, kXreg1, kXreg2, kXreg3, kXreg4,
  kXreg5, kXreg6, kXreg7,
  kCount
};

// How OVS formats a field's value (mf_format).
enum class FieldFormat { kDecimal, kHex, kEthernet, kIpv4, kIpv6, kOfpPort, kOfp11Port, kCtState,
                         kTcpFlags, kTunFlags, kFrag, kPacketType };

struct FieldInfo {
  FieldId id;
  const char* name;      // OVS field name ("reg5", "eth_src")
  const char* nxm_name;  // preferred NXM/OXM name ("NXM_NX_REG5"), nullptr if none
  uint8_t n_bytes;
  uint16_t n_bits;
  FieldFormat format;
};

const FieldInfo& field_info(FieldId id);

// A TLV header as found on the wire (32-bit, plus the experimenter id for
// class 0xffff).
struct TlvHeader {
  uint16_t oxm_class = 0;
  uint8_t field = 0;
  bool hasmask = false;
  uint8_t length = 0;      // payload length including experimenter id and mask
  uint32_t experimenter = 0;
  size_t header_len() const { return oxm_class == 0xffff ? 8 : 4; }
  size_t value_len() const;  // bytes of value (excluding experimenter id and mask)
};

// Maps a header (class/field/width, hasmask ignored) to the field it denotes.
// Experimenter headers are known only where OVS uses one in OpenFlow 1.3/1.4
// for a field that has no standard OXM yet (ONF tcp_flags).
std::optional<FieldId> field_by_header(const TlvHeader& h);
// The unmasked 32-bit header OVS prefers for 'id' in OpenFlow 1.0 (NXM where
// one exists); nullopt for fields without a non-experimenter header.
std::optional<uint32_t> preferred_header(FieldId id);
// Parses a header at the reader position; handles experimenter headers.
std::optional<TlvHeader> read_tlv_header(ByteReader& r);

struct MatchField {
  FieldId id;
  Bytes value;  // n_bytes, big endian, already ANDed with mask
  Bytes mask;   // n_bytes, never all-zero
  bool exact() const;
  uint64_t value_u64() const;  // for fields up to 8 bytes
  uint64_t mask_u64() const;
};

struct RawTlv {
  uint32_t header = 0;  // class<<16 | field<<9 | hasmask<<8 | length
  uint32_t experimenter = 0;
  Bytes payload;        // value (and mask), experimenter id excluded
};

struct Match {
  std::vector<MatchField> fields;  // sorted by id, one entry per id
  std::vector<RawTlv> unknown;     // unknown TLVs in wire order, kept for identity

  const MatchField* find(FieldId id) const;
  bool empty() const { return fields.empty() && unknown.empty(); }
  bool operator==(const Match&) const = default;
};

bool operator==(const MatchField& a, const MatchField& b);
bool operator==(const RawTlv& a, const RawTlv& b);

// Decodes a sequence of NXM/OXM TLVs (exactly 'data', no padding). Fails on a
// truncated TLV, a zero-length or inconsistent header, a duplicate field or a
// value with bits outside the mask set (all of which OVS rejects too).
Result<Match> decode_nxm(ByteView data);

// Decodes an OpenFlow 1.1+ ofp_match of type OXM (type, length, TLVs, zero
// padding to 8) at the start of 'data'. 'padded_len' receives the bytes it
// occupies. Fails on another match type or a length that overruns 'data'.
Result<Match> decode_ofp_match(ByteView data, size_t& padded_len);


// A Match's fields packed into one string, as the flow mirror keeps them per
// flow for the rule engine: per field its id (2 bytes, big endian), width n
// (1), value (n) and mask (n). Unknown TLVs are left out (only identity needs
// them, and the canonical text carries that).
std::string pack_match_fields(const Match& m);
// Calls f(id, value, mask) for each field of a packed match, in FieldId order.
void for_each_packed_field(std::string_view packed,
                           const std::function<void(FieldId, ByteView, ByteView)>& f);


}  // namespace hvtel::ovs
