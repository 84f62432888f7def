#include "ovs/openflow/openflow_wire.h"

#include <fmt/core.h>

#include <algorithm>

namespace hvtel::ovs {

bool ByteReader::need(size_t n) {
  if (!ok_ || data_.size() - pos_ < n) {
    ok_ = false;
    return false;
  }
  return true;
}

std::optional<uint8_t> ByteReader::u8() {
  if (!need(1)) return std::nullopt;
  return data_[pos_++];
}
std::optional<uint16_t> ByteReader::u16() {
  if (!need(2)) return std::nullopt;
  uint16_t v = load_be16(data_.data() + pos_);
  pos_ += 2;
  return v;
}
std::optional<uint32_t> ByteReader::u32() {
  if (!need(4)) return std::nullopt;
  uint32_t v = load_be32(data_.data() + pos_);
  pos_ += 4;
  return v;
}
std::optional<uint64_t> ByteReader::u64() {
  if (!need(8)) return std::nullopt;
  uint64_t v = load_be64(data_.data() + pos_);
  pos_ += 8;
  return v;
}
std::optional<ByteView> ByteReader::bytes(size_t n) {
  if (!need(n)) return std::nullopt;
  ByteView v = data_.subspan(pos_, n);
  pos_ += n;
  return v;
}
bool ByteReader::skip(size_t n) {
  if (!need(n)) return false;
  pos_ += n;
  return true;
}

uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t load_be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
uint64_t load_be64(const uint8_t* p) {
  return (static_cast<uint64_t>(load_be32(p)) << 32) | load_be32(p + 4);
}
void put_be16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void put_be32(Bytes& out, uint32_t v) {
  put_be16(out, static_cast<uint16_t>(v >> 16));
  put_be16(out, static_cast<uint16_t>(v));
}
void put_be64(Bytes& out, uint64_t v) {
  put_be32(out, static_cast<uint32_t>(v >> 32));
  put_be32(out, static_cast<uint32_t>(v));
}

Bytes be_bytes(uint64_t v, size_t n) {
  Bytes b(n, 0);
  for (size_t i = 0; i < n && i < 8; ++i) b[n - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return b;
}

bool all_zero(ByteView b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0; });
}

std::string hex_bytes(ByteView b) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) {
    s.push_back(kDigits[c >> 4]);
    s.push_back(kDigits[c & 15]);
  }
  return s;
}

namespace of {

std::optional<Header> parse_header(ByteView b) {
  if (b.size() < kHeaderLen) return std::nullopt;
  Header h;
  h.version = b[0];
  h.type = b[1];
  h.length = load_be16(b.data() + 2);
  h.xid = load_be32(b.data() + 4);
  return h;
}

void put_header(Bytes& out, uint8_t version, uint8_t type, uint16_t length, uint32_t xid) {
  out.push_back(version);
  out.push_back(type);
  put_be16(out, length);
  put_be32(out, xid);
}

void finish_message(Bytes& msg) {
  if (msg.size() < kHeaderLen) return;
  uint16_t len = static_cast<uint16_t>(std::min(msg.size(), kMaxMessageLen));
  msg[2] = static_cast<uint8_t>(len >> 8);
  msg[3] = static_cast<uint8_t>(len);
}

void Framer::feed(ByteView data) {
  // Compact once the consumed prefix dominates, so a long-lived connection
  // does not grow its buffer without bound.
  if (off_ > 0 && off_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(off_));
    off_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

Result<std::optional<Message>> Framer::next() {
  ByteView avail(buf_.data() + off_, buf_.size() - off_);
  auto h = parse_header(avail);
  if (!h) return std::optional<Message>{};
  if (h->length < kHeaderLen) {
    return fail(fmt::format("openflow message length {} shorter than header", h->length));
  }
  if (avail.size() < h->length) return std::optional<Message>{};
  Message m;
  m.header = *h;
  m.bytes.assign(avail.begin(), avail.begin() + h->length);
  off_ += h->length;
  if (off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  }
  return std::optional<Message>(std::move(m));
}

Bytes encode_hello(uint8_t header_version, const std::vector<uint8_t>& versions, uint32_t xid) {
  Bytes out;
  put_header(out, header_version, kHello, 0, xid);
  uint32_t bitmap = 0;
  for (uint8_t v : versions) {
    if (v < 32) bitmap |= 1u << v;
  }
  put_be16(out, 1);  // OFPHET_VERSIONBITMAP
  put_be16(out, 8);  // element length: type + len + one 32-bit bitmap
  put_be32(out, bitmap);
  finish_message(out);
  return out;
}

Result<Hello> decode_hello(const Message& m) {
  Hello h;
  h.version = m.header.version;
  ByteReader r(m.body());
  while (r.remaining() >= 4) {
    uint16_t type = *r.u16();
    uint16_t len = *r.u16();
    if (len < 4) return fail("hello element shorter than its header");
    auto body = r.bytes(len - 4u);
    if (!body) return fail("hello element overruns message");
    if (type == 1 && body->size() >= 4) h.bitmap = load_be32(body->data());
    r.skip(((len + 7u) / 8u) * 8u - len);  // elements are padded to 8; tolerate missing pad
  }
  return h;
}

uint32_t hello_versions(const Hello& h) {
  if (h.bitmap) return h.bitmap;
  if (h.version == 0 || h.version > 31) return 0;
  // 1..version, shifted in 64 bits: a peer's HELLO may say version 31, and 1u << 32 is undefined.
  return static_cast<uint32_t>((uint64_t{2} << h.version) - 1) & ~1u;
}

std::optional<uint8_t> negotiate_version(const Hello& ours, const Hello& theirs) {
  uint32_t common = hello_versions(ours) & hello_versions(theirs);
  for (int v = 31; v > 0; --v) {
    if (common & (1u << v)) return static_cast<uint8_t>(v);
  }
  return std::nullopt;
}

Bytes encode_echo_reply(const Message& request) {
  Bytes out = request.bytes;
  if (out.size() >= kHeaderLen) out[1] = kEchoReply;
  return out;
}

Bytes encode_error(uint8_t version, uint16_t type, uint16_t code, ByteView data, uint32_t xid) {
  Bytes out;
  put_header(out, version, kError, 0, xid);
  put_be16(out, type);
  put_be16(out, code);
  out.insert(out.end(), data.begin(), data.end());
  finish_message(out);
  return out;
}

static Bytes empty_message(uint8_t version, uint8_t type, uint32_t xid) {
  Bytes out;
  put_header(out, version, type, kHeaderLen, xid);
  return out;
}

Bytes encode_echo_request(uint8_t version, uint32_t xid) {
  return empty_message(version, kEchoRequest, xid);
}
Bytes encode_features_request(uint8_t version, uint32_t xid) {
  return empty_message(version, kFeaturesRequest, xid);
}
Bytes encode_barrier_request(uint8_t version, uint32_t xid) {
  uint8_t type = version == kVersion10 ? uint8_t{kBarrierRequest10} : kBarrierRequest13;
  return empty_message(version, type, xid);
}

Result<FeaturesReply> decode_features_reply(const Message& m) {
  ByteReader r(m.body());
  FeaturesReply f;
  auto dpid = r.u64();
  auto nbuf = r.u32();
  auto ntab = r.u8();
  if (!dpid || !nbuf || !ntab) return fail("features reply too short");
  f.datapath_id = *dpid;
  f.n_buffers = *nbuf;
  f.n_tables = *ntab;
  return f;
}

std::string ErrorMsg::describe() const {
  static const char* kTypes10[] = {"HELLO_FAILED", "BAD_REQUEST", "BAD_ACTION",
                                   "FLOW_MOD_FAILED", "PORT_MOD_FAILED", "QUEUE_OP_FAILED"};
  static const char* kTypes13[] = {
      "HELLO_FAILED",     "BAD_REQUEST",          "BAD_ACTION",          "BAD_INSTRUCTION",
      "BAD_MATCH",        "FLOW_MOD_FAILED",      "GROUP_MOD_FAILED",    "PORT_MOD_FAILED",
      "TABLE_MOD_FAILED", "QUEUE_OP_FAILED",      "SWITCH_CONFIG_FAILED", "ROLE_REQUEST_FAILED",
      "METER_MOD_FAILED", "TABLE_FEATURES_FAILED", "BAD_PROPERTY",        "ASYNC_CONFIG_FAILED",
      "FLOW_MONITOR_FAILED"};
  if (version <= kVersion10 && type < std::size(kTypes10)) {
    return fmt::format("OFPET_{} code {}", kTypes10[type], code);
  }
  if (version > kVersion10 && type < std::size(kTypes13)) {
    return fmt::format("OFPET_{} code {}", kTypes13[type], code);
  }
  return fmt::format("error type 0x{:x} code {}", type, code);
}

Result<ErrorMsg> decode_error(const Message& m) {
  ByteReader r(m.body());
  auto type = r.u16();
  auto code = r.u16();
  if (!type || !code) return fail("error message too short");
  ErrorMsg e;
  e.version = m.header.version;
  e.type = *type;
  e.code = *code;
  // Nicira extended error (OF1.0): type 0xb0c2, then vendor/type/code.
  if (e.type == 0xb0c2 && r.remaining() >= 8) {
    r.skip(4);
    e.type = *r.u16();
    e.code = *r.u16();
  }
  auto rest = r.bytes(r.remaining());
  if (rest) e.data.assign(rest->begin(), rest->end());
  return e;
}

Result<NxtMessage> decode_nxt(const Message& m) { return decode_experimenter(m, kNiciraVendor); }

Result<NxtMessage> decode_experimenter(const Message& m, uint32_t want) {
  ByteReader r(m.body());
  auto vendor = r.u32();
  auto subtype = r.u32();
  if (!vendor || !subtype) return fail("vendor message too short");
  if (*vendor != want) return fail(fmt::format("vendor 0x{:08x} is not 0x{:08x}", *vendor, want));
  NxtMessage n;
  n.subtype = *subtype;
  n.payload = m.body().subspan(8);
  return n;
}

Bytes encode_nxt(uint32_t subtype, ByteView payload, uint32_t xid) {
  Bytes out;
  put_header(out, kVersion10, kVendor, 0, xid);
  put_be32(out, kNiciraVendor);
  put_be32(out, subtype);
  out.insert(out.end(), payload.begin(), payload.end());
  finish_message(out);
  return out;
}

Result<NxStats> decode_nx_stats(const Message& m) {
  ByteReader r(m.body());
  auto type = r.u16();
  auto flags = r.u16();
  auto vendor = r.u32();
  auto subtype = r.u32();
  if (!type || !flags || !vendor || !subtype || !r.skip(4)) return fail("stats message too short");
  if (*type != kStatsVendor || *vendor != kNiciraVendor) {
    return fail(fmt::format("stats type 0x{:x} vendor 0x{:x} is not NXST", *type, *vendor));
  }
  NxStats s;
  s.subtype = *subtype;
  s.flags = *flags;
  s.body = m.body().subspan(16);
  return s;
}

Bytes encode_nx_stats_request(uint32_t subtype, ByteView body, uint32_t xid) {
  Bytes out;
  put_header(out, kVersion10, kStatsRequest10, 0, xid);
  put_be16(out, kStatsVendor);
  put_be16(out, 0);
  put_be32(out, kNiciraVendor);
  put_be32(out, subtype);
  put_be32(out, 0);  // pad
  out.insert(out.end(), body.begin(), body.end());
  finish_message(out);
  return out;
}

Result<Multipart> decode_multipart(const Message& m) {
  ByteReader r(m.body());
  auto type = r.u16();
  auto flags = r.u16();
  if (!type || !flags || !r.skip(4)) return fail("multipart message too short");
  Multipart mp;
  mp.type = *type;
  mp.flags = *flags;
  mp.body = m.body().subspan(8);
  return mp;
}

Bytes encode_multipart_request(uint8_t version, uint16_t type, ByteView body, uint32_t xid) {
  Bytes out;
  put_header(out, version, kMultipartRequest13, 0, xid);
  put_be16(out, type);
  put_be16(out, 0);  // flags
  put_be32(out, 0);  // pad
  out.insert(out.end(), body.begin(), body.end());
  finish_message(out);
  return out;
}

Result<ExperimenterMultipart> decode_experimenter_multipart(const Multipart& mp) {
  if (mp.type != kMultipartExperimenter) {
    return fail(fmt::format("multipart type {} is not OFPMP_EXPERIMENTER", mp.type));
  }
  ByteReader r(mp.body);
  auto experimenter = r.u32();
  auto exp_type = r.u32();
  if (!experimenter || !exp_type) return fail("experimenter multipart shorter than its header");
  ExperimenterMultipart e;
  e.experimenter = *experimenter;
  e.exp_type = *exp_type;
  e.flags = mp.flags;
  e.body = mp.body.subspan(8);
  return e;
}

Bytes encode_experimenter_multipart_request(uint8_t version, uint32_t experimenter,
                                            uint32_t exp_type, ByteView body, uint32_t xid) {
  Bytes payload;
  put_be32(payload, experimenter);
  put_be32(payload, exp_type);
  payload.insert(payload.end(), body.begin(), body.end());
  return encode_multipart_request(version, kMultipartExperimenter, payload, xid);
}

const char* type_name(uint8_t version, uint8_t type) {
  switch (type) {
    case kHello: return "HELLO";
    case kError: return "ERROR";
    case kEchoRequest: return "ECHO_REQUEST";
    case kEchoReply: return "ECHO_REPLY";
    case kVendor: return version == kVersion10 ? "VENDOR" : "EXPERIMENTER";
    case kFeaturesRequest: return "FEATURES_REQUEST";
    case kFeaturesReply: return "FEATURES_REPLY";
    default: break;
  }
  if (version == kVersion10) {
    switch (type) {
      case kStatsRequest10: return "STATS_REQUEST";
      case kStatsReply10: return "STATS_REPLY";
      case kBarrierRequest10: return "BARRIER_REQUEST";
      case kBarrierReply10: return "BARRIER_REPLY";
      default: break;
    }
  } else {
    switch (type) {
      case kMultipartRequest13: return "MULTIPART_REQUEST";
      case kMultipartReply13: return "MULTIPART_REPLY";
      case kBarrierRequest13: return "BARRIER_REQUEST";
      case kBarrierReply13: return "BARRIER_REPLY";
      default: break;
    }
  }
  return "OTHER";
}

}  // namespace of
}  // namespace hvtel::ovs
