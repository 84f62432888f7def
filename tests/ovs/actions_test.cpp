#include <gtest/gtest.h>

#include "ovs/actions.h"
#include "ovs_bytes.h"

namespace hvtel::ovs {
namespace {

using testbytes::B;

std::string text(const Bytes& b) {
  auto l = decode_actions(b);
  EXPECT_TRUE(l.ok()) << l.error;
  return render_actions(l.actions);
}

Bytes output(uint16_t port, uint16_t max_len = 0) { return B().u16(0).u16(8).u16(port).u16(max_len); }
Bytes resubmit_table(uint16_t in_port, uint8_t table) {
  return B().nx(16, 14).u16(in_port).u8(table).zeros(3);
}
Bytes reg_load(uint32_t hdr, uint16_t ofs, uint16_t n_bits, uint64_t v) {
  return B().nx(24, 7).u16(static_cast<uint16_t>((ofs << 6) | (n_bits - 1))).u32(hdr).u64(v);
}
constexpr uint32_t kReg5 = 0x00010a04, kReg6 = 0x00010c04, kVlanTci = 0x00000802;

TEST(Actions, EmptyIsDrop) {
  auto l = decode_actions({});
  EXPECT_TRUE(l.facts.is_drop);
  EXPECT_EQ(render_actions(l.actions), "drop");
}

TEST(Actions, OutputsAndReservedPorts) {
  Bytes b = B().raw(output(2)).raw(output(0xfffa)).raw(output(0xfffd, 65535)).raw(output(0xfffe))
                .raw(output(0xfff8)).raw(output(0xfffb)).raw(output(0xfffc));
  auto l = decode_actions(b);
  EXPECT_EQ(render_actions(l.actions), "output:2,NORMAL,CONTROLLER:65535,LOCAL,IN_PORT,FLOOD,ALL");
  EXPECT_EQ(l.facts.output_ports, (std::vector<uint32_t>{2}));
  EXPECT_TRUE(l.facts.outputs_normal && l.facts.outputs_controller && l.facts.outputs_local &&
              l.facts.outputs_in_port && l.facts.outputs_flood);
}

TEST(Actions, ResubmitForms) {
  Bytes b = B().raw(resubmit_table(0xfff8, 71)).raw(resubmit_table(1, 3))
                .nx(16, 1).u16(4).zeros(4).nx(16, 44).u16(0xfff8).u8(5).zeros(3);
  auto l = decode_actions(b);
  EXPECT_EQ(render_actions(l.actions), "resubmit(,71),resubmit(1,3),resubmit:4,resubmit(,5,ct)");
  EXPECT_EQ(l.facts.resubmit_tables, (std::vector<uint8_t>{71, 3, 5}));
}

TEST(Actions, VlanRewritesAndLoads) {
  Bytes b = B().u16(1).u16(8).u16(100).u16(0)   // mod_vlan_vid:100
                .u16(3).u16(8).u32(0)           // strip_vlan
                .raw(reg_load(kReg6, 0, 32, 1))
                .raw(reg_load(kVlanTci, 0, 12, 0xff));
  auto l = decode_actions(b);
  EXPECT_EQ(render_actions(l.actions),
            "mod_vlan_vid:100,strip_vlan,load:0x1->NXM_NX_REG6[],load:0xff->NXM_OF_VLAN_TCI[0..11]");
  EXPECT_EQ(l.facts.vlan_vids_set, (std::vector<uint16_t>{100, 0xff}));
  EXPECT_TRUE(l.facts.strips_vlan);
}

TEST(Actions, LoadZeroPrintsBareZero) {
  EXPECT_EQ(text(reg_load(kReg5, 0, 32, 0)), "load:0->NXM_NX_REG5[]");
  EXPECT_EQ(text(reg_load(kReg5, 3, 1, 1)), "load:0x1->NXM_NX_REG5[3]");
}

TEST(Actions, MoveAndOutputReg) {
  Bytes mv = B().nx(24, 6).u16(48).u16(0).u16(0).u32(0x00000406).u32(0x00000206);
  EXPECT_EQ(text(mv), "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]");
  Bytes oreg = B().nx(24, 15).u16(15).u32(0x00010204).u16(0).zeros(6);
  auto l = decode_actions(oreg);
  EXPECT_EQ(render_actions(l.actions), "output:NXM_NX_REG1[0..15]");
  EXPECT_TRUE(l.facts.outputs_via_register);
}

TEST(Actions, CtWithZoneFieldNatAndExec) {
  // ct(commit,zone=NXM_NX_REG6[0..15])
  Bytes ct1 = B().nx(24, 35).u16(1).u32(kReg6).u16(15).u8(0xff).zeros(3).u16(0);
  EXPECT_EQ(text(ct1), "ct(commit,zone=NXM_NX_REG6[0..15])");
  // ct(commit,zone=5,exec(load:0x1->NXM_NX_CT_MARK[]))
  Bytes load_mark = reg_load(0x0001d604, 0, 32, 1);
  Bytes ct2 = B().nx(static_cast<uint16_t>(24 + load_mark.size()), 35).u16(1).u32(0).u16(5)
                  .u8(0xff).zeros(3).u16(0).raw(load_mark);
  EXPECT_EQ(text(ct2), "ct(commit,zone=5,exec(load:0x1->NXM_NX_CT_MARK[]))");
  // ct(table=3,zone=7,nat(src=10.0.0.1-10.0.0.5:100-200),alg=ftp)
  Bytes nat = B().nx(32, 36).zeros(2).u16(1).u16(1 | 2 | 16 | 32).u32(0x0a000001).u32(0x0a000005)
                  .u16(100).u16(200).zeros(4);
  Bytes ct3 = B().nx(static_cast<uint16_t>(24 + nat.size()), 35).u16(0).u32(0).u16(7).u8(3)
                  .zeros(3).u16(21).raw(nat);
  auto l = decode_actions(ct3);
  EXPECT_EQ(render_actions(l.actions), "ct(table=3,zone=7,nat(src=10.0.0.1-10.0.0.5:100-200),alg=ftp)");
  EXPECT_EQ(l.facts.resubmit_tables, (std::vector<uint8_t>{3}));
  EXPECT_TRUE(l.facts.has_ct);
}

TEST(Actions, OutputInsideCloneCountsAsOutput) {
  Bytes inner = output(4);
  Bytes clone = B().nx(static_cast<uint16_t>(16 + inner.size()), 42).zeros(6).raw(inner);
  auto l = decode_actions(clone);
  EXPECT_EQ(render_actions(l.actions), "clone(output:4)");
  EXPECT_EQ(l.facts.output_ports, (std::vector<uint32_t>{4}));
}

TEST(Actions, LearnConjunctionNoteMisc) {
  // learn(table=10,idle_timeout=60,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],
  //       load:0->NXM_OF_VLAN_TCI[],output:NXM_OF_IN_PORT[])
  Bytes learn = B().nx(0, 16).u16(60).u16(0).u16(32768).u64(0).u16(0).u8(10).u8(0).u16(0).u16(0)
                    .u16(12).u32(kVlanTci).u16(0).u32(kVlanTci).u16(0)
                    .u16(48).u32(0x00000406).u16(0).u32(0x00000206).u16(0)
                    .u16(static_cast<uint16_t>((1 << 13) | (1 << 11) | 16)).u16(0).u32(kVlanTci).u16(0)
                    .u16(static_cast<uint16_t>((2 << 11) | 16)).u32(0x00000002).u16(0)
                    .pad8();
  learn[2] = static_cast<uint8_t>(learn.size() >> 8);
  learn[3] = static_cast<uint8_t>(learn.size());
  EXPECT_EQ(text(learn),
            "learn(table=10,idle_timeout=60,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
            "load:0->NXM_OF_VLAN_TCI[],output:NXM_OF_IN_PORT[])");
  EXPECT_EQ(text(B().nx(16, 34).u8(0).u8(2).u32(7)), "conjunction(7,1/2)");
  EXPECT_EQ(text(B().nx(16, 8).raw({1, 2, 3, 0, 0, 0})), "note:01.02.03.00.00.00");
  EXPECT_EQ(text(B().nx(16, 18).zeros(6)), "dec_ttl");
  EXPECT_EQ(text(B().nx(16, 43).zeros(6)), "ct_clear");
  EXPECT_EQ(text(B().nx(16, 17).zeros(6)), "exit");
  EXPECT_EQ(text(B().nx(16, 2).zeros(2).u32(5)), "set_tunnel:0x5");
  EXPECT_EQ(text(B().nx(32, 22).zeros(6).u64(5).u64(0xff)), "write_metadata:0x5/0xff");
  EXPECT_EQ(text(B().nx(16, 19).u16(5).u16(0).zeros(2)), "fin_timeout(idle_timeout=5)");
  EXPECT_EQ(text(B().u16(11).u16(16).u16(1).zeros(6).u32(2)), "enqueue:1:2");
  EXPECT_EQ(text(B().u16(4).u16(16).raw({0, 0, 0, 0, 0, 1}).zeros(6)), "mod_dl_src:00:00:00:00:00:01");
}

TEST(Actions, UnknownActionKeptRaw) {
  Bytes b = B().raw(output(1)).nx(16, 200).zeros(6);
  auto l = decode_actions(b);
  EXPECT_FALSE(l.ok());
  ASSERT_EQ(l.actions.size(), 2u);
  EXPECT_EQ(l.actions[1].kind, ActionKind::kUnknown);
  EXPECT_EQ(render_actions(l.actions), "output:1,raw:ffff0010000023200" "0c8000000000000");
  EXPECT_TRUE(l.facts.has_unknown);
}

TEST(Actions, BadLengthStopsWithRawTail) {
  Bytes b = B().raw(output(1)).u16(0).u16(7).u32(0);
  auto l = decode_actions(b);
  EXPECT_FALSE(l.ok());
  ASSERT_EQ(l.actions.size(), 2u);
  EXPECT_EQ(l.actions[0].text, "output:1");
  EXPECT_EQ(l.actions[1].kind, ActionKind::kUnknown);
}

TEST(Actions, LoadValueWiderThanFieldIsRejected) {
  auto l = decode_actions(reg_load(kReg5, 0, 4, 0x10));
  EXPECT_FALSE(l.ok());
  EXPECT_EQ(l.actions.at(0).kind, ActionKind::kUnknown);
}

}  // namespace
}  // namespace hvtel::ovs
