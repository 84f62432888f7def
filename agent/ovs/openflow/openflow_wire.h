// OpenFlow message framing and the handful of messages the flow monitor needs.
//
// Everything here is pure: encoders return byte vectors and decoders take spans,
// so the session logic can be tested with canned byte streams. All decoders are
// bounds-checked and return an Error on malformed input; none of them trusts a
// length field before checking it against the bytes actually present.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/util/result.h"

namespace hvtel::ovs {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

// Big-endian cursor over a byte span. Every getter fails (returns nullopt and
// latches ok()==false) instead of reading past the end.
class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}

  size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }
  size_t pos() const { return pos_; }
  bool ok() const { return ok_; }

  std::optional<uint8_t> u8();
  std::optional<uint16_t> u16();
  std::optional<uint32_t> u32();
  std::optional<uint64_t> u64();
  std::optional<ByteView> bytes(size_t n);
  bool skip(size_t n);

 private:
  bool need(size_t n);
  ByteView data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Big-endian loads from a span that the caller has already length-checked.
uint16_t load_be16(const uint8_t* p);
uint32_t load_be32(const uint8_t* p);
uint64_t load_be64(const uint8_t* p);
void put_be16(Bytes& out, uint16_t v);
void put_be32(Bytes& out, uint32_t v);
void put_be64(Bytes& out, uint64_t v);
Bytes be_bytes(uint64_t v, size_t n);  // the low n bytes of v, big-endian (n > 8: zero-padded)
bool all_zero(ByteView b);

std::string hex_bytes(ByteView b);  // "0a0b0c", for raw/unknown data

namespace of {

constexpr uint8_t kVersion10 = 0x01;
constexpr uint8_t kVersion13 = 0x04;
constexpr uint8_t kVersion14 = 0x05;
constexpr uint8_t kVersion15 = 0x06;
constexpr uint32_t kNiciraVendor = 0x00002320;
// Open Networking Foundation experimenter id ("ONF\0"): OpenFlow 1.3
// extensions OVS implements, among them the flow monitor (ONFST_FLOW_MONITOR).
constexpr uint32_t kOnfExperimenter = 0x4f4e4600;
constexpr size_t kHeaderLen = 8;
// OpenFlow caps a message at 64 KiB by its 16-bit length field.
constexpr size_t kMaxMessageLen = 65535;

// OpenFlow 1.0 message types (the subset we send or receive).
enum Type10 : uint8_t {
  kHello = 0,
  kError = 1,
  kEchoRequest = 2,
  kEchoReply = 3,
  kVendor = 4,
  kFeaturesRequest = 5,
  kFeaturesReply = 6,
  kStatsRequest10 = 16,
  kStatsReply10 = 17,
  kBarrierRequest10 = 18,
  kBarrierReply10 = 19,
};

// OpenFlow 1.3+ multipart types (type numbers differ from 1.0).
constexpr uint8_t kMultipartRequest13 = 18;
constexpr uint8_t kMultipartReply13 = 19;
constexpr uint8_t kBarrierRequest13 = 20;
constexpr uint8_t kBarrierReply13 = 21;
constexpr uint16_t kMultipartFlowMonitor = 16;  // OFPMP_FLOW_MONITOR (OpenFlow 1.4)
constexpr uint16_t kMultipartExperimenter = 0xffff;  // OFPMP_EXPERIMENTER
constexpr uint16_t kMultipartReplyMore = 0x0001;  // OFPMPF_REPLY_MORE

constexpr uint16_t kStatsVendor = 0xffff;     // OFPST_VENDOR
constexpr uint16_t kStatsReplyMore = 0x0001;  // OFPSF_REPLY_MORE

// Nicira vendor message subtypes (NXT_*) and stats subtypes (NXST_*).
constexpr uint32_t kNxtFlowMonitorCancel = 21;
constexpr uint32_t kNxtFlowMonitorPaused = 22;
constexpr uint32_t kNxtFlowMonitorResumed = 23;
constexpr uint32_t kNxstFlowMonitor = 2;

// ONF extension types (OpenFlow 1.3): the flow monitor request/reply is the
// experimenter multipart type 1870; PAUSED and RESUMED are OFPT_EXPERIMENTER
// messages with these exp_types.
constexpr uint32_t kOnfstFlowMonitor = 1870;
constexpr uint32_t kOnftFlowMonitorPaused = 1871;
constexpr uint32_t kOnftFlowMonitorResumed = 1872;

// OFPET_HELLO_FAILED / OFPHFC_INCOMPATIBLE (the same in every version).
constexpr uint16_t kErrorHelloFailed = 0;
constexpr uint16_t kHelloFailedIncompatible = 0;

struct Header {
  uint8_t version = 0;
  uint8_t type = 0;
  uint16_t length = 0;
  uint32_t xid = 0;
};

std::optional<Header> parse_header(ByteView b);
void put_header(Bytes& out, uint8_t version, uint8_t type, uint16_t length, uint32_t xid);
// Patches the 16-bit length of a message built in place.
void finish_message(Bytes& msg);

// One complete OpenFlow message (header + body, body = bytes after the header).
struct Message {
  Header header;
  Bytes bytes;  // the whole message including its header
  ByteView body() const { return ByteView(bytes).subspan(kHeaderLen); }
};

// Reassembles messages from a byte stream that may be split anywhere.
class Framer {
 public:
  // Appends received bytes. Never fails; errors surface from next().
  void feed(ByteView data);
  // Returns the next complete message, nullopt when more bytes are needed,
  // or an Error when the stream is corrupt (length < 8): the connection must
  // then be dropped, since there is no way to resynchronise.
  Result<std::optional<Message>> next();
  size_t buffered() const { return buf_.size() - off_; }
  void reset() {
    buf_.clear();
    off_ = 0;
  }

 private:
  Bytes buf_;
  size_t off_ = 0;
};

// HELLO with a version-bitmap element advertising every version in 'versions'.
Bytes encode_hello(uint8_t header_version, const std::vector<uint8_t>& versions, uint32_t xid);
struct Hello {
  uint8_t version = 0;
  uint32_t bitmap = 0;  // bit N = version N supported; 0 when no bitmap element
};
Result<Hello> decode_hello(const Message& m);
// Highest common version. A HELLO without a bitmap supports every version up
// to its header version (how ovs-vswitchd reads it, and what it sends when its
// allowed versions are contiguous), so two plain HELLOs agree on the lower one.
std::optional<uint8_t> negotiate_version(const Hello& ours, const Hello& theirs);

// Bit N of the version bitmap a HELLO stands for (see negotiate_version).
uint32_t hello_versions(const Hello& h);

Bytes encode_echo_reply(const Message& request);
// OFPT_ERROR with the given type/code and 'data' (usually the offending message).
Bytes encode_error(uint8_t version, uint16_t type, uint16_t code, ByteView data, uint32_t xid);
Bytes encode_echo_request(uint8_t version, uint32_t xid);
Bytes encode_features_request(uint8_t version, uint32_t xid);
Bytes encode_barrier_request(uint8_t version, uint32_t xid);

struct FeaturesReply {
  uint64_t datapath_id = 0;
  uint32_t n_buffers = 0;
  uint8_t n_tables = 0;
};
Result<FeaturesReply> decode_features_reply(const Message& m);

struct ErrorMsg {
  uint8_t version = 0;  // names differ between OpenFlow 1.0 and 1.3+
  uint16_t type = 0;
  uint16_t code = 0;
  Bytes data;  // usually the start of the offending request
  std::string describe() const;
};
Result<ErrorMsg> decode_error(const Message& m);

// OF1.0 vendor (OFPT_VENDOR) message with the Nicira id: subtype and payload.
struct NxtMessage {
  uint32_t subtype = 0;
  ByteView payload;  // view into the Message bytes
};
Result<NxtMessage> decode_nxt(const Message& m);
// OFPT_VENDOR / OFPT_EXPERIMENTER (type 4 in every version) from 'vendor'
// (kNiciraVendor, kOnfExperimenter): its subtype (exp_type) and payload.
Result<NxtMessage> decode_experimenter(const Message& m, uint32_t vendor);
Bytes encode_nxt(uint32_t subtype, ByteView payload, uint32_t xid);

// OF1.0 Nicira stats (NXST_*) framing: 24-byte header then body.
struct NxStats {
  uint32_t subtype = 0;
  uint16_t flags = 0;
  bool more() const { return (flags & kStatsReplyMore) != 0; }
  ByteView body;  // view into the Message bytes
};
Result<NxStats> decode_nx_stats(const Message& m);
Bytes encode_nx_stats_request(uint32_t subtype, ByteView body, uint32_t xid);

// OpenFlow 1.3+ multipart (OFPT_MULTIPART_*) framing: 8-byte header then body.
struct Multipart {
  uint16_t type = 0;  // OFPMP_*
  uint16_t flags = 0;
  bool more() const { return (flags & kMultipartReplyMore) != 0; }
  ByteView body;  // view into the Message bytes
};
Result<Multipart> decode_multipart(const Message& m);
Bytes encode_multipart_request(uint8_t version, uint16_t type, ByteView body, uint32_t xid);

// OFPMP_EXPERIMENTER multipart (OpenFlow 1.3+): the multipart header, then
// experimenter id and exp_type, then the body.
struct ExperimenterMultipart {
  uint32_t experimenter = 0;
  uint32_t exp_type = 0;
  uint16_t flags = 0;
  bool more() const { return (flags & kMultipartReplyMore) != 0; }
  ByteView body;  // view into the Message bytes
};
// Fails unless 'mp' is an OFPMP_EXPERIMENTER multipart with a complete
// experimenter header.
Result<ExperimenterMultipart> decode_experimenter_multipart(const Multipart& mp);
Bytes encode_experimenter_multipart_request(uint8_t version, uint32_t experimenter,
                                            uint32_t exp_type, ByteView body, uint32_t xid);

const char* type_name(uint8_t version, uint8_t type);

}  // namespace of
}  // namespace hvtel::ovs
