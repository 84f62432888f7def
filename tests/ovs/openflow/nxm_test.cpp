#include <gtest/gtest.h>

#include "ovs/openflow/canonical.h"
#include "ovs/openflow/nxm.h"
#include "ovs_bytes.h"
#include "match_builders.h"

namespace hvtel::ovs {
namespace {

using testbytes::B;

std::string render(const Bytes& nxm) {
  auto m = decode_nxm(nxm);
  EXPECT_TRUE(m) << (m ? "" : m.error().message);
  return m ? render_match(*m) : "<error>";
}

TEST(Nxm, InPortAndEthSrc) {
  Bytes b = B().nxm(0, 0, false, 2).u16(1).nxm(0, 2, false, 6).raw({0xfa, 0x16, 0x3e, 0, 0, 1});
  EXPECT_EQ(render(b), "in_port=1,dl_src=fa:16:3e:00:00:01");
}

TEST(Nxm, TcpShorthandReplacesEthTypeAndProto) {
  Bytes b = B().nxm(0, 3, false, 2).u16(0x0800).nxm(0, 6, false, 1).u8(6)
                .nxm(0, 10, false, 2).u16(80);
  EXPECT_EQ(render(b), "tcp,tp_dst=80");
}

TEST(Nxm, CtStateComesBeforeProtocolShorthand) {
  // ct_state=+trk-est with mask 0x22, ip.
  Bytes b = B().nxm(0, 3, false, 2).u16(0x0800).nxm(1, 105, true, 8).u32(0x20).u32(0x22);
  EXPECT_EQ(render(b), "ct_state=-est+trk,ip");
}

TEST(Nxm, MaskedFieldsAndCidr) {
  Bytes b = B().nxm(0, 3, false, 2).u16(0x0800)
                .nxm(0, 7, true, 8).u32(0x0a000000).u32(0xffffff00)
                .nxm(0, 8, true, 8).u32(0x01020004).u32(0xffff00ff)
                .nxm(0x8000, 2, true, 16).u64(0x10).u64(0xff)
                .nxm(1, 5, false, 4).u32(0);
  EXPECT_EQ(render(b), "ip,reg5=0,metadata=0x10/0xff,nw_src=10.0.0.0/24,nw_dst=1.2.0.4/255.255.0.255");
}

TEST(Nxm, VlanTciPrintsAsDlVlanOrRawTci) {
  EXPECT_EQ(render(B().nxm(0, 4, true, 4).u16(0x1fff).u16(0x1fff)), "dl_vlan=4095");
  EXPECT_EQ(render(B().nxm(0, 4, true, 4).u16(0x0fff).u16(0x1fff)), "vlan_tci=0x0fff/0x1fff");
  EXPECT_EQ(render(B().nxm(0, 4, false, 2).u16(0x7005)), "dl_vlan=5,dl_vlan_pcp=3");
  EXPECT_EQ(render(B().nxm(0, 4, true, 4).u16(0x1000).u16(0x1000)), "vlan_tci=0x1000/0x1000");
}

TEST(Nxm, OxmVlanVidFoldsIntoVlanTci) {
  // OXM vlan_vid=5|PRESENT equals NXM vlan_tci=0x1005/0x1fff.
  auto a = decode_nxm(B().nxm(0x8000, 6, false, 2).u16(0x1005));
  auto b = decode_nxm(B().nxm(0, 4, true, 4).u16(0x1005).u16(0x1fff));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(render_match(*a), "dl_vlan=5");
}

TEST(Nxm, XregSplitsIntoRegisterPair) {
  auto m = decode_nxm(B().nxm(0x8001, 2, false, 8).u64(0x0000000100000002ull));
  ASSERT_TRUE(m);
  EXPECT_EQ(render_match(*m), "reg4=0x1,reg5=0x2");
}

TEST(Nxm, ArpIpv6IcmpTunnel) {
  EXPECT_EQ(render(B().nxm(0, 3, false, 2).u16(0x0806).nxm(0, 15, false, 2).u16(1)
                       .nxm(0, 17, false, 4).u32(0x01020304)),
            "arp,arp_tpa=1.2.3.4,arp_op=1");
  Bytes v6 = B().nxm(0, 3, false, 2).u16(0x86dd).nxm(0, 6, false, 1).u8(58)
                 .nxm(1, 21, false, 1).u8(135)
                 .nxm(1, 23, false, 16).raw({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
  EXPECT_EQ(render(v6), "icmp6,icmp_type=135,nd_target=fe80::2");
  EXPECT_EQ(render(B().nxm(1, 16, false, 8).u64(5).nxm(1, 31, false, 4).u32(0x01010101)),
            "tun_id=0x5,tun_src=1.1.1.1");
  EXPECT_EQ(render(B().nxm(0, 3, false, 2).u16(0x0800).nxm(0, 6, false, 1).u8(1)
                       .nxm(0, 13, false, 1).u8(8).nxm(0, 14, false, 1).u8(0)
                       .nxm(1, 29, false, 1).u8(4).nxm(0, 5, false, 1).u8(8)),
            "icmp,nw_tos=8,nw_ttl=4,icmp_type=8,icmp_code=0");
}

TEST(Nxm, TcpFlagsAndCtFields) {
  Bytes b = B().nxm(0, 3, false, 2).u16(0x0800).nxm(0, 6, false, 1).u8(6)
                .nxm(1, 34, true, 4).u16(0x002).u16(0x012)
                .nxm(1, 106, false, 2).u16(5).nxm(1, 107, true, 8).u32(3).u32(0xf);
  EXPECT_EQ(render(b), "ct_zone=5,ct_mark=0x3/0xf,tcp,tcp_flags=+syn-ack");
}

TEST(Nxm, NormalizedOrderIsIndependentOfWireOrder) {
  auto a = decode_nxm(B().nxm(0, 0, false, 2).u16(7).nxm(1, 5, false, 4).u32(9));
  auto b = decode_nxm(B().nxm(1, 5, false, 4).u32(9).nxm(0, 0, false, 2).u16(7));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(render_match(*a), "reg5=0x9,in_port=7");
}

TEST(Nxm, UnknownTlvKeptRawAndRendered) {
  auto m = decode_nxm(B().nxm(0x1234, 3, false, 2).u16(0xabcd).nxm(0, 0, false, 2).u16(1));
  ASSERT_TRUE(m);
  ASSERT_EQ(m->unknown.size(), 1u);
  EXPECT_EQ(render_match(*m), "in_port=1,nxm:12340602=abcd");
}

TEST(Nxm, RejectsMalformed) {
  EXPECT_FALSE(decode_nxm(B().nxm(0, 0, false, 2).u8(1)));            // truncated value
  EXPECT_FALSE(decode_nxm(B().u16(0)));                                // truncated header
  EXPECT_FALSE(decode_nxm(B().nxm(0, 0, false, 0)));                   // zero length
  EXPECT_FALSE(decode_nxm(B().nxm(1, 5, true, 8).u32(3).u32(1)));      // value outside mask
  EXPECT_FALSE(decode_nxm(B().nxm(1, 5, false, 4).u32(1).nxm(1, 5, false, 4).u32(2)));  // dup
}

TEST(Nxm, TunFlagsPrintInMaskedForm) {
  // OVS formats the oam bit against all four tunnel flag bits: "+oam".
  EXPECT_EQ(render(B().nxm(1, 104, true, 4).u16(1).u16(1)), "tun_flags=+oam");
  EXPECT_EQ(render(B().nxm(1, 104, true, 4).u16(0).u16(1)), "tun_flags=-oam");
}

// ofp_match as ovs-vswitchd 3.1 sends it in OpenFlow 1.4 flow updates.
TEST(OfpMatch, OxmMatchWithPadding) {
  // in_port=LOCAL,dl_vlan=5,dl_vlan_pcp=3 (OXM length 23, padded to 24).
  Bytes m = B().u16(1).u16(23).oxm(0, false, 4).u32(0xfffffffe).oxm(6, false, 2).u16(0x1005)
                .oxm(7, false, 1).u8(3).pad8().u32(0xaabbccdd);  // trailing instructions
  size_t padded = 0;
  auto match = decode_ofp_match(m, padded);
  ASSERT_TRUE(match) << match.error().message;
  EXPECT_EQ(padded, 24u);
  EXPECT_EQ(render_match(*match), "in_port=LOCAL,dl_vlan=5,dl_vlan_pcp=3");
  // An empty match is 4 bytes padded to 8.
  auto empty = decode_ofp_match(B().u16(1).u16(4).zeros(4), padded);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(padded, 8u);
}

TEST(OfpMatch, OnfTcpFlagsExperimenterIsKnown) {
  // OpenFlow 1.3/1.4 carry tcp_flags as ONF experimenter field 42.
  Bytes m = B().u16(1).u16(27).oxm(5, false, 2).u16(0x0800).oxm(10, false, 1).u8(6)
                .nxm(0xffff, 42, true, 8).u32(0x4f4e4600).u16(0x0002).u16(0x0012).pad8();
  size_t padded = 0;
  auto match = decode_ofp_match(m, padded);
  ASSERT_TRUE(match) << match.error().message;
  EXPECT_EQ(render_match(*match), "tcp,tcp_flags=+syn-ack");
  EXPECT_TRUE(match->unknown.empty());
}

TEST(OfpMatch, OxmCannotTellExactNoVlanFromMaskedNoVlan) {
  // OVS sends vlan_tci=0x0000 and vlan_tci=0x0000/0x1fff alike over OXM
  // (vlan_vid=0, no pcp); the mirror prints what OVS's own 1.4 dump prints.
  size_t padded = 0;
  auto match = decode_ofp_match(B().u16(1).u16(10).oxm(6, false, 2).u16(0).pad8(), padded);
  ASSERT_TRUE(match);
  EXPECT_EQ(render_match(*match), "vlan_tci=0x0000/0x1fff");
}

TEST(OfpMatch, RejectsOtherTypesAndBadLengths) {
  size_t padded = 0;
  auto standard = decode_ofp_match(B().u16(0).u16(88).zeros(84), padded);  // OFPMT_STANDARD
  ASSERT_FALSE(standard);
  EXPECT_EQ(standard.error().message, "ofp_match type 0 is not OXM");
  auto overrun = decode_ofp_match(B().u16(1).u16(20).oxm(5, false, 2).u16(0x800).pad8(), padded);
  ASSERT_FALSE(overrun);
  EXPECT_EQ(overrun.error().message, "ofp_match length 20 overruns 16 bytes");
  EXPECT_FALSE(decode_ofp_match(B().u16(1).u16(2).zeros(4), padded));  // below its header
  EXPECT_FALSE(decode_ofp_match(B().u16(1), padded));                   // truncated header
  // A TLV overrunning the match length is an nxm error.
  EXPECT_FALSE(decode_ofp_match(B().u16(1).u16(9).oxm(5, false, 2).u8(8).zeros(7), padded));
}

TEST(Nxm, EncodeRoundTrip) {
  Match m;
  match_set(m, FieldId::kInPort, 3);
  match_set(m, FieldId::kEthType, 0x0800);
  match_set(m, FieldId::kIpv4Src, 0x0a000000, 0xff000000);
  auto back = decode_nxm(encode_nxm(m));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
  EXPECT_EQ(render_match(m), "ip,in_port=3,nw_src=10.0.0.0/8");
}

}  // namespace
}  // namespace hvtel::ovs
