#include <gtest/gtest.h>

#include "ovs/openflow/openflow_wire.h"
#include "ovs_bytes.h"

namespace hvtel::ovs {
namespace {

using testbytes::B;

TEST(OpenflowWire, HelloCarriesVersionBitmap) {
  Bytes h = of::encode_hello(of::kVersion10, {of::kVersion10, of::kVersion13}, 7);
  EXPECT_EQ(hex_bytes(h), "0100001000000007" "0001000800000012");
  of::Framer f;
  f.feed(h);
  auto m = f.next();
  ASSERT_TRUE(m && *m);
  auto hello = of::decode_hello(**m);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->bitmap, 0x12u);
}

TEST(OpenflowWire, NegotiatesHighestCommonVersion) {
  of::Hello ours{1, 1u << 1};
  EXPECT_EQ(of::negotiate_version(ours, of::Hello{6, 0x7e}), 1);  // OVS: 1.0..1.5
  EXPECT_EQ(of::negotiate_version(ours, of::Hello{1, 0}), 1);     // no bitmap: min version
  EXPECT_FALSE(of::negotiate_version(ours, of::Hello{4, 1u << 4}));
  EXPECT_FALSE(of::negotiate_version(ours, of::Hello{0, 0}));
}

// Found by fuzz/openflow_decode: a HELLO of version 31 without a bitmap shifted 1u by 32 (UBSan).
TEST(OpenflowWire, HelloOfTheHighestVersionWithoutBitmap) {
  EXPECT_EQ(of::hello_versions(of::Hello{31, 0}), 0xfffffffeu);
  EXPECT_EQ(of::hello_versions(of::Hello{30, 0}), 0x7ffffffeu);
  EXPECT_EQ(of::hello_versions(of::Hello{32, 0}), 0u);
  EXPECT_EQ(of::negotiate_version(of::Hello{6, 0x72}, of::Hello{31, 0}), 6);
}

TEST(OpenflowWire, NegotiatesOpenFlow14WhereTheBridgeAllowsIt) {
  // The monitor's HELLO: version 1.4, bitmap {1.0, 1.4}.
  of::Hello ours{5, (1u << 1) | (1u << 5)};
  // ovs-vswitchd with default protocols sends a plain 1.5 HELLO (no bitmap:
  // its versions are contiguous), meaning 1.0..1.5.
  EXPECT_EQ(of::negotiate_version(ours, of::Hello{6, 0}), 5);
  EXPECT_EQ(of::negotiate_version(ours, of::Hello{1, 0}), 1);         // protocols=OpenFlow10
  EXPECT_EQ(of::negotiate_version(ours, of::Hello{5, 0x22}), 5);      // OpenFlow10,OpenFlow14
  EXPECT_EQ(of::negotiate_version(ours, of::Hello{4, 0x12}), 1);      // OpenFlow10,OpenFlow13
  EXPECT_EQ(of::negotiate_version(ours, of::Hello{4, 0}), 1);         // 1.0..1.3
  EXPECT_FALSE(of::negotiate_version(ours, of::Hello{4, 0x10}));      // OpenFlow13 only
  EXPECT_FALSE(of::negotiate_version(ours, of::Hello{6, 0x40}));      // OpenFlow15 only
}

TEST(OpenflowWire, MultipartRequestAndReplyFraming) {
  Bytes body = B().u32(1).u32(2);
  Bytes req = of::encode_multipart_request(of::kVersion14, of::kMultipartFlowMonitor, body, 9);
  EXPECT_EQ(hex_bytes(req), "0512001800000009" "0010000000000000" "0000000100000002");
  Bytes reply = req;
  reply[1] = of::kMultipartReply13;
  reply[11] = 1;  // OFPMPF_REPLY_MORE
  of::Framer f;
  f.feed(reply);
  f.feed(B().u8(5).u8(19).u16(12).u32(1).u32(0));  // shorter than a multipart header
  auto m = f.next();
  ASSERT_TRUE(m && *m);
  auto mp = of::decode_multipart(**m);
  ASSERT_TRUE(mp);
  EXPECT_EQ(mp->type, of::kMultipartFlowMonitor);
  EXPECT_TRUE(mp->more());
  EXPECT_EQ(hex_bytes(mp->body), "0000000100000002");
  auto short_msg = f.next();
  ASSERT_TRUE(short_msg && *short_msg);
  auto bad = of::decode_multipart(**short_msg);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "multipart message too short");
  EXPECT_STREQ(of::type_name(5, 19), "MULTIPART_REPLY");
  EXPECT_STREQ(of::type_name(1, 19), "BARRIER_REPLY");
}

TEST(OpenflowWire, FramerReassemblesSplitReads) {
  Bytes a = of::encode_echo_request(1, 1);
  Bytes b = of::encode_hello(1, {1}, 2);
  Bytes all = a;
  all.insert(all.end(), b.begin(), b.end());
  of::Framer f;
  std::vector<uint32_t> xids;
  for (uint8_t byte : all) {  // one byte at a time
    f.feed(ByteView(&byte, 1));
    while (true) {
      auto m = f.next();
      ASSERT_TRUE(m);
      if (!*m) break;
      xids.push_back((*m)->header.xid);
    }
  }
  EXPECT_EQ(xids, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(OpenflowWire, FramerRejectsLengthBelowHeader) {
  of::Framer f;
  f.feed(B().u8(1).u8(0).u16(4).u32(0));
  EXPECT_FALSE(f.next());
}

TEST(OpenflowWire, EchoReplyMirrorsRequest) {
  of::Framer f;
  f.feed(B().u8(1).u8(2).u16(12).u32(0x55).u32(0xdeadbeef));
  auto m = f.next();
  ASSERT_TRUE(m && *m);
  EXPECT_EQ(hex_bytes(of::encode_echo_reply(**m)), "0103000c00000055deadbeef");
}

TEST(OpenflowWire, NxStatsRequestAndReplyFraming) {
  Bytes body = B().u32(1).u16(0x1f).u16(0xffff).u16(0).u8(0xff).zeros(5);
  Bytes req = of::encode_nx_stats_request(of::kNxstFlowMonitor, body, 9);
  EXPECT_EQ(hex_bytes(req),
            "0110002800000009" "ffff000000002320" "0000000200000000"
            "00000001001fffff" "0000ff0000000000");
  Bytes reply = req;
  reply[1] = of::kStatsReply10;
  reply[11] = 1;  // MORE
  of::Framer f;
  f.feed(reply);
  auto m = f.next();
  ASSERT_TRUE(m && *m);
  auto st = of::decode_nx_stats(**m);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->subtype, of::kNxstFlowMonitor);
  EXPECT_TRUE(st->more());
  EXPECT_EQ(st->body.size(), 16u);
}

TEST(OpenflowWire, ErrorAndFeaturesDecode) {
  of::Framer f;
  f.feed(B().u8(1).u8(1).u16(16).u32(3).u16(1).u16(5).u32(0xaabbccdd));
  f.feed(B().u8(1).u8(6).u16(32).u32(4).u64(0x1234).u32(256).u8(254).zeros(11));
  auto e = f.next();
  ASSERT_TRUE(e && *e);
  auto err = of::decode_error(**e);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->describe(), "OFPET_BAD_REQUEST code 5");
  // OpenFlow 1.3+ numbers its error types differently.
  f.feed(B().u8(5).u8(1).u16(12).u32(5).u16(16).u16(3));
  f.feed(B().u8(1).u8(1).u16(12).u32(6).u16(16).u16(3));
  auto fr = f.next();
  ASSERT_TRUE(fr && *fr);
  auto feat = of::decode_features_reply(**fr);
  ASSERT_TRUE(feat);
  EXPECT_EQ(feat->datapath_id, 0x1234u);
  EXPECT_EQ(feat->n_tables, 254);
  auto e14 = f.next();
  ASSERT_TRUE(e14 && *e14);
  EXPECT_EQ(of::decode_error(**e14)->describe(), "OFPET_FLOW_MONITOR_FAILED code 3");
  auto e10 = f.next();
  ASSERT_TRUE(e10 && *e10);
  EXPECT_EQ(of::decode_error(**e10)->describe(), "error type 0x10 code 3");
}

TEST(OpenflowWire, ReaderNeverReadsPastEnd) {
  Bytes b{1, 2, 3};
  ByteReader r(b);
  EXPECT_EQ(r.u16(), 0x0102);
  EXPECT_FALSE(r.u16());
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.u8());  // latched
  EXPECT_EQ(r.remaining(), 0u);
}

}  // namespace
}  // namespace hvtel::ovs
