#include <gtest/gtest.h>

#include "ovs/openflow/actions.h"
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

namespace hvtel::ovs {
namespace {

using testbytes::B;

// OpenFlow 1.3/1.4 actions as ovs-vswitchd 3.1 sends them in OFPMP_FLOW_MONITOR
// replies; each expectation is the text `ovs-ofctl dump-flows --no-names`
// (OpenFlow 1.0) prints for the same flow, checked against a live OVS.
std::string text13(const Bytes& b) {
  auto l = decode_actions(b, ActionDialect::kOf13);
  EXPECT_TRUE(l.ok()) << l.error;
  return render_actions(l.actions);
}

Bytes output13(uint32_t port, uint16_t max_len = 0) {
  return B().u16(0).u16(16).u32(port).u16(max_len).zeros(6);
}
// OFPAT_SET_FIELD with one TLV, padded to 8.
Bytes set_field(const Bytes& tlv) {
  B b;
  b.u16(25).u16(static_cast<uint16_t>((4 + tlv.size() + 7) / 8 * 8)).raw(tlv).pad8();
  return b;
}
Bytes apply(const Bytes& actions) { return B().instruction(4, actions); }

TEST(Actions13, OutputUses32BitPorts) {
  Bytes b = B().raw(output13(2)).raw(output13(0xfffffffe)).raw(output13(0xfffffff8))
                .raw(output13(0xfffffffd, 100)).raw(output13(0xfffffffa));
  auto l = decode_actions(b, ActionDialect::kOf13);
  EXPECT_EQ(render_actions(l.actions), "output:2,LOCAL,IN_PORT,CONTROLLER:100,NORMAL");
  EXPECT_EQ(l.facts.output_ports, (std::vector<uint32_t>{2}));
  EXPECT_TRUE(l.facts.outputs_local && l.facts.outputs_in_port && l.facts.outputs_controller &&
              l.facts.outputs_normal);
  // Raw keeps the OpenFlow 1.4 bytes, not the 1.0 rewrite.
  EXPECT_EQ(l.actions[0].raw, output13(2));
}

TEST(Actions13, SetFieldRendersAsTheOpenFlow10Action) {
  EXPECT_EQ(text13(set_field(B().oxm(11, false, 4).u32(0x0a000001))), "mod_nw_src:10.0.0.1");
  EXPECT_EQ(text13(set_field(B().oxm(4, false, 6).raw({0xfa, 0x16, 0x3e, 0, 0, 1}))),
            "mod_dl_src:fa:16:3e:00:00:01");
  EXPECT_EQ(text13(set_field(B().oxm(8, false, 1).u8(2))), "mod_nw_tos:8");   // ip_dscp
  EXPECT_EQ(text13(set_field(B().oxm(13, false, 2).u16(80))), "mod_tp_src:80");  // tcp_src
  EXPECT_EQ(text13(set_field(B().oxm(16, false, 2).u16(99))), "mod_tp_dst:99");  // udp_dst
  EXPECT_EQ(text13(set_field(B().oxm(7, false, 1).u8(5))), "mod_vlan_pcp:5");
  // Fields without an OpenFlow 1.0 action become register loads.
  EXPECT_EQ(text13(set_field(B().nxm(1, 5, false, 4).u32(5))), "load:0x5->NXM_NX_REG5[]");
  EXPECT_EQ(text13(set_field(B().oxm(9, false, 1).u8(3))), "load:0x3->NXM_NX_IP_ECN[]");
  EXPECT_EQ(text13(set_field(B().oxm(38, false, 8).u64(0x1234))), "load:0x1234->NXM_NX_TUN_ID[]");
  EXPECT_EQ(text13(set_field(B().oxm(2, false, 8).u64(0xab))), "load:0xab->OXM_OF_METADATA[]");
  EXPECT_EQ(text13(set_field(B().nxm(0x8001, 3, false, 8).u64(1))), "load:0x1->OXM_OF_PKT_REG3[]");
  EXPECT_EQ(text13(set_field(B().oxm(34, false, 4).u32(10))), "load:0xa->OXM_OF_MPLS_LABEL[]");
  EXPECT_EQ(text13(set_field(B().nxm(1, 104, false, 2).u16(1))), "load:0x1->NXM_NX_TUN_FLAGS[]");
  EXPECT_EQ(text13(set_field(B().oxm(18, false, 2).u16(99))), "load:0x63->OXM_OF_SCTP_DST[]");
  // 128-bit fields load in 64-bit halves, low half first, as OVS splits them.
  EXPECT_EQ(text13(set_field(B().oxm(26, false, 16).u64(0xfe80000000000000ull).u64(1))),
            "load:0x1->NXM_NX_IPV6_SRC[0..63],load:0xfe80000000000000->NXM_NX_IPV6_SRC[64..127]");
}

TEST(Actions13, VlanForms) {
  // mod_vlan_vid:5 arrives as push_vlan + set_field vlan_vid|PRESENT; OpenFlow
  // 1.0 has no push_vlan, so only mod_vlan_vid shows.
  Bytes push = B().u16(17).u16(8).u16(0x8100).u16(0);
  auto l = decode_actions(B().raw(push).raw(set_field(B().oxm(6, false, 2).u16(0x1005)))
                              .raw(output13(2)),
                          ActionDialect::kOf13);
  EXPECT_TRUE(l.ok()) << l.error;
  EXPECT_EQ(render_actions(l.actions), "mod_vlan_vid:5,output:2");
  ASSERT_EQ(l.actions.size(), 3u);
  EXPECT_EQ(l.actions[0].text, "push_vlan:0x8100");
  EXPECT_FALSE(l.actions[0].canonical);
  EXPECT_TRUE(l.facts.pushes_vlan);
  EXPECT_EQ(l.facts.vlan_vids_set, (std::vector<uint16_t>{5}));
  // A lone push_vlan is invisible in OpenFlow 1.0: "output:2".
  EXPECT_EQ(text13(B().u16(17).u16(8).u16(0x88a8).u16(0).raw(output13(2))), "output:2");
  EXPECT_EQ(text13(B().u16(18).u16(8).u32(0)), "strip_vlan");  // pop_vlan
  // vlan_tci with CFI: vid and pcp; without: strip.
  EXPECT_EQ(text13(set_field(B().nxm(0, 4, false, 2).u16(0x7005))), "mod_vlan_vid:5,mod_vlan_pcp:3");
  EXPECT_EQ(text13(set_field(B().nxm(0, 4, false, 2).u16(0))), "strip_vlan");
}

TEST(Actions13, QueuesGroupsTtlAndMpls) {
  Bytes set_queue3 = B().u16(21).u16(8).u32(3);
  Bytes pop_queue = B().nx(16, 5).zeros(6);
  // enqueue:2:3 is set_queue:3, output:2 (max_len 0xffff), pop_queue.
  auto l = decode_actions(B().raw(set_queue3).raw(output13(2, 0xffff)).raw(pop_queue)
                              .raw(set_queue3).raw(output13(5)).raw(pop_queue),
                          ActionDialect::kOf13);
  EXPECT_EQ(render_actions(l.actions), "enqueue:2:3,set_queue:3,output:5,pop_queue");
  EXPECT_EQ(l.facts.output_ports, (std::vector<uint32_t>{2, 5}));
  EXPECT_EQ(text13(B().u16(22).u16(8).u32(4)), "group:4");
  EXPECT_EQ(text13(B().u16(24).u16(8).u32(0)), "dec_ttl");
  EXPECT_EQ(text13(B().u16(23).u16(8).u8(9).zeros(3)), "load:0x9->NXM_NX_IP_TTL[]");
  EXPECT_EQ(text13(B().u16(19).u16(8).u16(0x8847).u16(0).u16(15).u16(8).u8(4).zeros(3)
                       .u16(16).u16(8).u32(0).u16(20).u16(8).u16(0x0800).u16(0)),
            "push_mpls:0x8847,set_mpls_ttl(4),dec_mpls_ttl,pop_mpls:0x0800");
}

TEST(Actions13, NestedListsUseTheSameDialect) {
  // ct(commit,zone=5,exec(set_field:1->ct_mark)) with an OpenFlow 1.4 Set-Field inside.
  Bytes mark = set_field(B().nxm(1, 107, false, 4).u32(1));
  Bytes ct = B().nx(static_cast<uint16_t>(24 + mark.size()), 35).u16(1).u32(0).u16(5).u8(0xff)
                 .zeros(3).u16(0).raw(mark);
  EXPECT_EQ(text13(ct), "ct(commit,zone=5,exec(load:0x1->NXM_NX_CT_MARK[]))");
}

TEST(Instructions, OrderAndWhatOpenFlow10Shows) {
  Bytes meter = B().u16(6).u16(8).u32(1);
  Bytes clear = B().u16(5).u16(8).u32(0);
  Bytes write = B().instruction(3, output13(5));
  Bytes metadata = B().u16(2).u16(24).u32(0).u64(5).u64(0xff);
  Bytes goto3 = B().u16(1).u16(8).u8(3).zeros(3);
  auto l = decode_instructions(B().raw(meter).raw(apply(output13(2))).raw(clear).raw(write)
                                   .raw(metadata).raw(goto3));
  EXPECT_TRUE(l.ok()) << l.error;
  // meter, clear_actions and write_actions have no OpenFlow 1.0 form.
  EXPECT_EQ(render_actions(l.actions), "output:2,write_metadata:0x5/0xff,resubmit(,3)");
  ASSERT_EQ(l.actions.size(), 6u);
  EXPECT_EQ(l.actions[0].text, "meter:1");
  EXPECT_EQ(l.actions[2].text, "clear_actions");
  EXPECT_EQ(l.actions[3].text, "write_actions(output:5)");
  EXPECT_EQ(l.actions[3].kind, ActionKind::kWriteActions);
  EXPECT_EQ(l.actions[5].kind, ActionKind::kGotoTable);
  EXPECT_EQ(l.actions[5].raw, goto3);
  // The action set still outputs at the end of the pipeline.
  EXPECT_EQ(l.facts.output_ports, (std::vector<uint32_t>{2, 5}));
  EXPECT_EQ(l.facts.resubmit_tables, (std::vector<uint8_t>{3}));
  EXPECT_FALSE(l.facts.is_drop);
}

TEST(Instructions, DropForms) {
  EXPECT_TRUE(decode_instructions({}).facts.is_drop);
  auto meter_only = decode_instructions(B().u16(6).u16(8).u32(1));
  EXPECT_EQ(render_actions(meter_only.actions), "drop");
  EXPECT_TRUE(meter_only.facts.is_drop);
  auto write_only = decode_instructions(B().instruction(3, output13(5)));
  EXPECT_EQ(render_actions(write_only.actions), "drop");  // as dump-flows over OpenFlow 1.0
  EXPECT_FALSE(write_only.facts.is_drop);
  EXPECT_EQ(render_actions(decode_instructions(apply({})).actions), "drop");
}

TEST(Instructions, MalformedAndUnknownStayRaw) {
  // Instruction length 12 is not a multiple of 8: raw tail, error, no crash.
  auto bad = decode_instructions(B().raw(apply(output13(1))).u16(1).u16(12).zeros(8));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error, "instruction at offset 24 has bad length 12");
  EXPECT_EQ(render_actions(bad.actions), "output:1,raw:0001000c0000000000000000");
  // An apply_actions whose action overruns it.
  auto overrun = decode_instructions(B().u16(4).u16(16).u32(0).u16(0).u16(16).u32(1));
  EXPECT_EQ(overrun.error, "action at offset 0 has bad length 16");
  EXPECT_EQ(render_actions(overrun.actions), "raw:0000001000000001");
  // Unknown instruction and action types, a Set-Field of an unknown field,
  // a truncated Set-Field: raw, visible, counted as unknown.
  auto unk = decode_instructions(B().u16(0x77).u16(8).u32(0));
  EXPECT_EQ(render_actions(unk.actions), "raw:0077000800000000");
  EXPECT_EQ(unk.error, "undecodable instruction raw:0077000800000000");
  EXPECT_TRUE(unk.facts.has_unknown);
  auto copy_ttl = decode_actions(B().u16(11).u16(8).u32(0), ActionDialect::kOf13);
  EXPECT_EQ(render_actions(copy_ttl.actions), "raw:000b000800000000");
  EXPECT_FALSE(copy_ttl.ok());
  EXPECT_EQ(render_actions(decode_actions(set_field(B().nxm(0x1234, 1, false, 2).u16(1)),
                                          ActionDialect::kOf13).actions),
            "raw:0019001012340202" "0001000000000000");
  auto trunc = decode_actions(B().u16(25).u16(8).nxm(1, 5, false, 4), ActionDialect::kOf13);
  EXPECT_EQ(render_actions(trunc.actions), "raw:0019000800010a04");
  EXPECT_FALSE(trunc.ok());
  // Short output (8 bytes where OpenFlow 1.1+ needs 16).
  EXPECT_EQ(render_actions(decode_actions(B().u16(0).u16(8).u32(1), ActionDialect::kOf13).actions),
            "raw:0000000800000001");
}

// OpenFlow 1.5 as OVS 3.1 sends it: move: as copy_field, meter as an action.
TEST(Actions15, CopyFieldAndMeterAction) {
  // copy_field n_bits 16, src_offset 0, dst_offset 8, reg5 -> reg6, padded to 24.
  Bytes copy = B().u16(28).u16(24).u16(16).u16(0).u16(8).u16(0).nxm(1, 5, false, 4)
                   .nxm(1, 6, false, 4).zeros(4);
  Bytes meter = B().u16(29).u16(8).u32(2);
  auto l = decode_instructions(apply(B().raw(meter).raw(copy).raw(output13(3))));
  ASSERT_TRUE(l.ok()) << l.error;
  ASSERT_EQ(l.actions.size(), 3u);
  EXPECT_EQ(l.actions[0].kind, ActionKind::kMeter);
  EXPECT_EQ(l.actions[0].text, "meter:2");
  EXPECT_FALSE(l.actions[0].canonical);  // OpenFlow 1.0 has no meter: dump-flows omits it
  EXPECT_EQ(l.actions[1].kind, ActionKind::kMove);
  EXPECT_EQ(l.actions[1].raw, copy);
  EXPECT_EQ(render_actions(l.actions), "move:NXM_NX_REG5[0..15]->NXM_NX_REG6[8..23],output:3");

  // Malformed: too short for its headers, a field overrun, an unknown field
  // header: raw, counted as errors, never a crash.
  auto short_copy = decode_actions(B().u16(28).u16(16).u16(16).zeros(6).nxm(1, 5, false, 4),
                                   ActionDialect::kOf13);
  EXPECT_EQ(render_actions(short_copy.actions), "raw:001c001000100000" "0000000000010a04");
  EXPECT_EQ(short_copy.error, "undecodable action raw:001c001000100000" "0000000000010a04");
  auto overrun = decode_actions(B().u16(28).u16(24).u16(40).u16(0).u16(0).u16(0)
                                    .nxm(1, 5, false, 4).nxm(1, 6, false, 4).zeros(4),
                                ActionDialect::kOf13);
  EXPECT_FALSE(overrun.ok());
  EXPECT_EQ(overrun.actions.at(0).kind, ActionKind::kUnknown);
  auto unknown = decode_actions(B().u16(28).u16(24).u16(8).u16(0).u16(0).u16(0)
                                    .nxm(0x1234, 1, false, 4).nxm(1, 6, false, 4).zeros(4),
                                ActionDialect::kOf13);
  EXPECT_FALSE(unknown.ok());
  EXPECT_TRUE(unknown.facts.has_unknown);
}

TEST(Actions13, EnqueueTripleFoldsOnlyWhenAsked) {
  Bytes triple = B().u16(21).u16(8).u32(4).raw(output13(3, 0xffff)).nx(16, 5).zeros(6);
  EXPECT_EQ(render_actions(decode_instructions(apply(triple)).actions), "enqueue:3:4");
  auto plain = decode_instructions(apply(triple), /*fold_enqueue=*/false);
  EXPECT_TRUE(plain.ok());
  EXPECT_EQ(render_actions(plain.actions), "set_queue:4,output:3,pop_queue");
  EXPECT_EQ(plain.facts.output_ports, (std::vector<uint32_t>{3}));
}

}  // namespace
}  // namespace hvtel::ovs
