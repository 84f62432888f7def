#include "ovs/openflow/legacy_actions.h"

#include "ovs/openflow/nxm.h"
#include "ovs/openflow/ofp_format.h"

namespace hvtel::ovs::legacy {
namespace {

using F = FieldId;

// OpenFlow 1.0 action types (OFPAT10_*) and Nicira subtypes written here.
enum Of10Type : uint16_t {
  kOutput10 = 0, kSetVlanVid10 = 1, kSetVlanPcp10 = 2, kStripVlan10 = 3, kSetDlSrc10 = 4,
  kSetDlDst10 = 5, kSetNwSrc10 = 6, kSetNwDst10 = 7, kSetNwTos10 = 8, kSetTpSrc10 = 9,
  kSetTpDst10 = 10, kEnqueue10 = 11,
};
enum NxSubtype : uint16_t {
  kNxSetQueue = 4, kNxPopQueue = 5, kNxRegMove = 6, kNxRegLoad = 7, kNxResubmitTable = 14, kNxDecTtl = 18,
  kNxWriteMetadata = 22, kNxPushMpls = 23, kNxPopMpls = 24, kNxSetMplsTtl = 25,
  kNxDecMplsTtl = 26, kNxGroup = 40,
};

Bytes of10(uint16_t type, size_t len) {
  Bytes b;
  put_be16(b, type);
  put_be16(b, static_cast<uint16_t>(len));
  return b;
}

// Nicira action header; the caller appends the body and pads with finish().
Bytes nx(uint16_t subtype, size_t len) {
  Bytes b = of10(0xffff, len);
  put_be32(b, of::kNiciraVendor);
  put_be16(b, subtype);
  return b;
}

Bytes finish(Bytes b, size_t len) {
  b.resize(len, 0);
  return b;
}

// Bit 'i' (0 = least significant) of a big-endian value.
bool bit(const Bytes& v, size_t i) { return (v[v.size() - 1 - i / 8] >> (i % 8)) & 1; }

uint64_t bits(const Bytes& v, size_t ofs, size_t n) {
  uint64_t x = 0;
  for (size_t i = n; i-- > 0;) x = (x << 1) | (bit(v, ofs + i) ? 1u : 0u);
  return x;
}

// OVS's set_field_to_nxast: one NXAST_REG_LOAD per run of mask bits, at most
// 64 bits each, lowest bits first (next_load_segment).
std::optional<std::vector<Bytes>> reg_loads(F id, const Bytes& value, const Bytes& mask) {
  auto hdr = preferred_header(id);
  if (!hdr) return std::nullopt;
  const size_t n_bits = field_info(id).n_bits;
  std::vector<Bytes> out;
  size_t start = 0;
  while (start < n_bits) {
    size_t ofs = start;
    while (ofs < n_bits && !bit(mask, ofs)) ++ofs;
    if (ofs >= n_bits) break;
    size_t end = ofs + 1, limit = std::min(ofs + 64, n_bits);
    while (end < limit && bit(mask, end)) ++end;
    Bytes b = nx(kNxRegLoad, 24);
    put_be16(b, static_cast<uint16_t>((ofs << 6) | (end - ofs - 1)));
    put_be32(b, *hdr);
    put_be64(b, bits(value, ofs, end - ofs));
    out.push_back(std::move(b));
    start = end;
  }
  return out;
}

// An OpenFlow 1.0 action: header, body, zero padding to 'len'.
std::vector<Bytes> one10(uint16_t type, size_t len, const Bytes& body) {
  Bytes b = of10(type, len);
  b.insert(b.end(), body.begin(), body.end());
  return {finish(std::move(b), len)};
}

Bytes be(uint64_t x, size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[n - 1 - i] = static_cast<uint8_t>(x >> (8 * i));
  return b;
}

// OVS's set_field_to_legacy_openflow for OpenFlow 1.0: fields with an
// OpenFlow 1.0 action use it (the mask is ignored, as OVS does); the rest
// become register loads.
std::optional<std::vector<Bytes>> set_field(ByteView a) {
  ByteReader r(a.subspan(4));
  auto h = read_tlv_header(r);
  if (!h) return std::nullopt;
  auto id = field_by_header(*h);
  size_t n = h->value_len();
  auto value = r.bytes(n);
  auto mask = h->hasmask ? r.bytes(n) : std::optional<ByteView>(ByteView{});
  if (!id || !value || !mask || n != field_info(*id).n_bytes) return std::nullopt;
  Bytes v(value->begin(), value->end());
  Bytes m = h->hasmask ? Bytes(mask->begin(), mask->end()) : Bytes(n, 0xff);
  uint64_t x = 0;
  for (uint8_t c : v) x = (x << 8) | c;

  switch (*id) {
    case F::kVlanTci:
      // CFI set: add or modify the tag; clear: strip it.
      if (x & 0x1000) {
        auto out = one10(kSetVlanVid10, 8, be(x & 0xfff, 2));
        out.push_back(one10(kSetVlanPcp10, 8, be((x >> 13) & 7, 1)).front());
        return out;
      }
      return one10(kStripVlan10, 8, {});
    case F::kVlanVid: return one10(kSetVlanVid10, 8, be(x & 0xfff, 2));
    case F::kVlanPcp: return one10(kSetVlanPcp10, 8, v);
    case F::kEthSrc: return one10(kSetDlSrc10, 16, v);
    case F::kEthDst: return one10(kSetDlDst10, 16, v);
    case F::kIpv4Src: return one10(kSetNwSrc10, 8, v);
    case F::kIpv4Dst: return one10(kSetNwDst10, 8, v);
    case F::kIpTos: return one10(kSetNwTos10, 8, v);
    case F::kIpDscpShifted: return one10(kSetNwTos10, 8, be(x << 2, 1));
    case F::kTcpSrc:
    case F::kUdpSrc: return one10(kSetTpSrc10, 8, v);
    case F::kTcpDst:
    case F::kUdpDst: return one10(kSetTpDst10, 8, v);
    default: return reg_loads(*id, v, m);
  }
}

// A Nicira action with a 16-bit argument right after the subtype (push/pop_mpls).
std::vector<Bytes> nx_u16(uint16_t subtype, uint16_t v) {
  Bytes b = nx(subtype, 16);
  put_be16(b, v);
  return {finish(std::move(b), 16)};
}

// A Nicira action with a 32-bit argument after two pad bytes (set_queue, group).
std::vector<Bytes> nx_u32(uint16_t subtype, uint32_t v) {
  Bytes b = nx(subtype, 16);
  put_be16(b, 0);
  put_be32(b, v);
  return {std::move(b)};
}

// OpenFlow 1.5 copy_field (n_bits, src_offset, dst_offset, pad, then the src
// and dst OXM headers) as NXAST_REG_MOVE (n_bits, src_ofs, dst_ofs, then the
// same headers); the decoder validates the headers and offsets.
std::optional<std::vector<Bytes>> reg_move(ByteView a) {
  if (a.size() < 20) return std::nullopt;
  ByteView headers = a.subspan(12);
  size_t len = (16 + headers.size() + 7) / 8 * 8;
  Bytes b = nx(kNxRegMove, len);
  b.insert(b.end(), a.begin() + 4, a.begin() + 10);  // n_bits, src_offset, dst_offset
  b.insert(b.end(), headers.begin(), headers.end());
  return std::vector<Bytes>{finish(std::move(b), len)};
}

// True when 'a' is one whole action of type 'type' and length 'len'.
bool is_action(ByteView a, uint16_t type, size_t len) {
  return a.size() == len && load_be16(a.data()) == type && load_be16(a.data() + 2) == len;
}

}  // namespace

std::optional<std::vector<Bytes>> of10_actions(ByteView a) {
  if (a.size() < 8) return std::nullopt;
  const uint8_t* p = a.data();
  switch (load_be16(p)) {
    case kOutput13: {
      if (a.size() < 16) return std::nullopt;
      auto port = fmtx::port11_to_port10(load_be32(p + 4));
      if (!port) return std::nullopt;
      Bytes b = of10(kOutput10, 8);
      put_be16(b, static_cast<uint16_t>(*port));
      put_be16(b, load_be16(p + 8));
      return std::vector<Bytes>{std::move(b)};
    }
    case kSetMplsTtl13: {
      Bytes b = nx(kNxSetMplsTtl, 16);
      b.push_back(p[4]);
      return std::vector<Bytes>{finish(std::move(b), 16)};
    }
    case kDecMplsTtl13: return std::vector<Bytes>{finish(nx(kNxDecMplsTtl, 16), 16)};
    case kPopVlan13: return std::vector<Bytes>{finish(of10(kStripVlan10, 8), 8)};
    case kPushMpls13: return nx_u16(kNxPushMpls, load_be16(p + 4));
    case kPopMpls13: return nx_u16(kNxPopMpls, load_be16(p + 4));
    case kSetQueue13: return nx_u32(kNxSetQueue, load_be32(p + 4));
    case kGroup13: return nx_u32(kNxGroup, load_be32(p + 4));
    case kSetNwTtl13: return reg_loads(F::kIpTtl, Bytes{p[4]}, Bytes{0xff});
    case kDecNwTtl13: return std::vector<Bytes>{finish(nx(kNxDecTtl, 16), 16)};
    case kSetField13: return set_field(a);
    case kCopyField15: return reg_move(a);
    default: return std::nullopt;
  }
}

std::optional<Bytes> of10_enqueue(ByteView set_queue, ByteView output, ByteView pop_queue) {
  if (!is_action(set_queue, kSetQueue13, 8)) return std::nullopt;
  if (!is_action(output, kOutput13, 16) || load_be16(output.data() + 8) != 0xffff) {
    return std::nullopt;
  }
  if (!is_action(pop_queue, 0xffff, 16) || load_be32(pop_queue.data() + 4) != of::kNiciraVendor ||
      load_be16(pop_queue.data() + 8) != kNxPopQueue) {
    return std::nullopt;
  }
  auto port = fmtx::port11_to_port10(load_be32(output.data() + 4));
  if (!port) return std::nullopt;
  Bytes b = of10(kEnqueue10, 16);
  put_be16(b, static_cast<uint16_t>(*port));
  b.resize(12, 0);
  put_be32(b, load_be32(set_queue.data() + 4));
  return b;
}

std::optional<Bytes> of10_instruction(ByteView in) {
  if (in.size() < 8) return std::nullopt;
  switch (load_be16(in.data())) {
    case kGotoTable: {
      Bytes b = nx(kNxResubmitTable, 16);
      put_be16(b, 0xfff8);  // in_port: OFPP_IN_PORT, i.e. "resubmit(,N)"
      b.push_back(in[4]);
      return finish(std::move(b), 16);
    }
    case kWriteMetadata: {
      if (in.size() < 24) return std::nullopt;
      Bytes b = finish(nx(kNxWriteMetadata, 32), 16);
      b.insert(b.end(), in.begin() + 8, in.begin() + 24);  // metadata, mask
      return b;
    }
    default: return std::nullopt;
  }
}

}  // namespace hvtel::ovs::legacy
