// The mirror -> rule-input adapter against hand-built monitor updates.
#include "ovs/service/flow_view.h"

#include <gtest/gtest.h>

#include "flow_text.h"
#include "match_text.h"
#include "ovs/openflow/canonical.h"
#include "ovs/rules/rules_gate.h"
#include "ovs/rules/rules_match.h"
#include "ovs_bytes.h"
#include "match_builders.h"

namespace hvtel::ovs_service {
namespace {

using ovs::Bytes;
using ovs::FieldId;
using ovs::testbytes::B;
using std::chrono::seconds;

// ---- action bytes (OpenFlow 1.0 + Nicira) ----
Bytes output(uint16_t port, uint16_t max_len = 0) { return B().u16(0).u16(8).u16(port).u16(max_len); }
Bytes resubmit(uint8_t table) { return B().nx(16, 14).u16(0xfff8).u8(table).zeros(3); }
Bytes strip_vlan() { return B().u16(3).u16(8).u32(0); }
// set_field:<v>->regN (NXAST_REG_LOAD2 with an NXM_NX_REGn header).
Bytes set_reg(unsigned reg, uint32_t v) {
  return B().nx(24, 33).zeros(6).u32(0x00010004u | (reg << 9)).u32(v);
}
// load:<v>->NXM_NX_REGn[] (NXAST_REG_LOAD, whole register).
Bytes load_reg(unsigned reg, uint32_t v) {
  return B().nx(24, 7).u16(31).u32(0x00010004u | (reg << 9)).u64(v);
}
// load:<v>->NXM_NX_REGn[0..15] (partial: not a whole-register load).
Bytes load_reg16(unsigned reg, uint32_t v) {
  return B().nx(24, 7).u16(15).u32(0x00010004u | (reg << 9)).u64(v);
}
Bytes conjunction(uint32_t id, uint8_t clause, uint8_t n) {
  return B().nx(16, 34).u8(static_cast<uint8_t>(clause - 1)).u8(n).u32(id);
}
Bytes output_reg1_16() { return B().nx(24, 15).u16(15).u32(0x00010204).u16(0).zeros(6); }
Bytes clone(const Bytes& inner) {
  return B().nx(static_cast<uint16_t>(16 + inner.size()), 42).zeros(6).raw(inner);
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes mac(uint8_t last) { return {0xfa, 0x16, 0x3e, 0x00, 0x00, last}; }

ovs::FlowUpdate update(uint8_t table, uint16_t prio, uint64_t cookie, ovs::Match m,
                       const Bytes& actions, bool initial = true) {
  ovs::FlowUpdate u;
  u.event = ovs::FlowEvent::kAdded;
  u.initial = initial;
  u.table = table;
  u.priority = prio;
  u.cookie = cookie;
  u.match = std::move(m);
  u.has_actions = true;
  u.actions = ovs::decode_actions(actions);
  EXPECT_TRUE(u.actions.ok()) << u.actions.error;
  return u;
}

ovs::Match in_port(uint16_t p) {
  ovs::Match m;
  ovs::match_set(m, FieldId::kInPort, p);
  return m;
}

struct Fixture : ::testing::Test {
  std::chrono::system_clock::time_point sys_now{seconds(5000)};
  ovs::FlowMirror mirror{"br-int", [this] { return sys_now; }};
  // The rule engine's steady clock: steady 100 s == system 5000 s.
  ClockPair clocks(int system_s) const {
    return {std::chrono::system_clock::time_point{seconds(system_s)},
            ovsdb::TimePoint{} + seconds(system_s - 4900)};
  }
  ovsdb::TimePoint steady(int system_s) const { return ovsdb::TimePoint{} + seconds(system_s - 4900); }

  ovsdb::FlowView only(const ovs::FlowUpdate& u) {
    mirror.on_resync_start();
    mirror.on_flow(u);
    mirror.on_resync_complete();
    auto flows = mirror.flows();
    EXPECT_EQ(flows.size(), 1u);
    return flow_view_from(flows.at(0), clocks(5000));
  }
};

using ovsdb::testing::match_fields_from_text;
using ovsdb::testing::match_from_text;

std::string show(const std::vector<ovsdb::testing::MatchField>& m) {
  std::string s;
  for (const auto& f : m) {
    s += "[" + f.field + "|" + f.value + (f.mask ? "|" + *f.mask : "") + "]";
  }
  return s;
}

// The adapter and the test-only text helper agree on everything the rules read.
void expect_same_as_text(const ovsdb::FlowView& v, const std::string& text) {
  ovsdb::FlowView t = ovsdb::testing::flow(text);
  EXPECT_EQ(v.canonical_text(), t.canonical_text());
  EXPECT_EQ(v.table, t.table);
  EXPECT_EQ(v.priority, t.priority);
  EXPECT_EQ(v.cookie, t.cookie);
  EXPECT_EQ(v.match_text, t.match_text);
  EXPECT_EQ(v.match, t.match);
  EXPECT_EQ(v.actions.output_ports, t.actions.output_ports);
  EXPECT_EQ(v.actions.resubmit_tables, t.actions.resubmit_tables);
  EXPECT_EQ(v.actions.reg_loads, t.actions.reg_loads);
  EXPECT_EQ(v.actions.is_drop, t.actions.is_drop);
  EXPECT_EQ(v.actions.strips_vlan, t.actions.strips_vlan);
  EXPECT_EQ(v.actions.conjunction_only, t.actions.conjunction_only);
}

// ---- match text ----

TEST(MatchFieldsFromText, SplitsFieldsShorthandsAndMasks) {
  EXPECT_TRUE(match_fields_from_text("").empty());
  EXPECT_EQ(show(match_fields_from_text("ip,in_port=1,nw_src=10.0.0.0/24")),
            "[ip|][in_port|1][nw_src|10.0.0.0|24]");
  EXPECT_EQ(show(match_fields_from_text("ct_state=+est-rel-rpl,ip,reg5=0x2")),
            "[ct_state|+est-rel-rpl][ip|][reg5|0x2]");
  EXPECT_EQ(show(match_fields_from_text("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00")),
            "[dl_dst|01:00:00:00:00:00|01:00:00:00:00:00]");
  EXPECT_EQ(show(match_fields_from_text("vlan_tci=0x1000/0x1fff,tcp_flags=+syn-ack")),
            "[vlan_tci|0x1000|0x1fff][tcp_flags|+syn-ack]");
  EXPECT_EQ(show(match_fields_from_text("ipv6,ipv6_src=fe80::/10")), "[ipv6|][ipv6_src|fe80::|10]");
}

// ---- decoded matches: what the rules read ----

// The decoded match the mirror hands the rules equals what the (test-only)
// text reader makes of the mirror's canonical text, field for field and bit
// for bit: the rules see the same flows as when they parsed that text.
TEST(NormalMatchFrom, EqualsTheTextOfTheCanonicalRendering) {
  auto with = [](std::initializer_list<std::pair<FieldId, std::pair<uint64_t, uint64_t>>> fields) {
    ovs::Match m;
    for (const auto& [id, vm] : fields) ovs::match_set(m, id, vm.first, vm.second);
    return m;
  };
  constexpr uint64_t kAll = ~uint64_t{0};
  const uint64_t mac1 = 0xfa163e000001, mcast = 0x010000000000;
  const std::vector<ovs::Match> corpus = {
      with({{FieldId::kInPort, {5, kAll}}}),
      with({{FieldId::kInPort, {0xfffe, kAll}}}),  // LOCAL
      with({{FieldId::kInPort, {1, kAll}}, {FieldId::kEthSrc, {mac1, kAll}}}),
      with({{FieldId::kReg6, {1, kAll}}, {FieldId::kEthDst, {mac1, kAll}}}),
      with({{FieldId::kEthDst, {mcast, mcast}}}),
      with({{FieldId::kVlanTci, {0x1005, 0x1fff}}}),  // dl_vlan=5
      with({{FieldId::kVlanTci, {0, 0xffff}}}),       // no 802.1Q header
      with({{FieldId::kEthType, {0x0800, kAll}},
            {FieldId::kCtState, {0x22, 0x2e}},
            {FieldId::kReg5, {1, kAll}},
            {FieldId::kIpv4Src, {0x0a000000, 0xffffff00}}}),
      with({{FieldId::kEthType, {0x0800, kAll}}, {FieldId::kIpProto, {6, kAll}},
            {FieldId::kTcpDst, {80, kAll}}}),
      with({{FieldId::kEthType, {0x0800, kAll}}, {FieldId::kIpProto, {17, kAll}},
            {FieldId::kUdpSrc, {68, kAll}}, {FieldId::kUdpDst, {67, kAll}}}),
      with({{FieldId::kEthType, {0x0800, kAll}}, {FieldId::kIpProto, {1, kAll}},
            {FieldId::kIcmpType, {8, kAll}}}),
      with({{FieldId::kEthType, {0x0806, kAll}}, {FieldId::kArpSpa, {0x0a000005, kAll}},
            {FieldId::kInPort, {7, kAll}}}),
      with({{FieldId::kMetadata, {0x10, kAll}}, {FieldId::kTunId, {0x64, kAll}}}),
  };
  for (const auto& m : corpus) {
    const std::string text = ovs::render_match(m);
    const ovsdb::NormalMatch decoded = normal_match_from(ovs::pack_match_fields(m));
    EXPECT_EQ(decoded, match_from_text(text)) << text;
    EXPECT_EQ(decoded.size(), m.fields.size()) << text;  // one entry per decoded field
  }
  ovs::Match ipv6;
  ovs::match_set(ipv6, FieldId::kEthType, 0x86dd);
  ovs::Bytes net(16, 0), prefix(16, 0);
  net[0] = 0xfe;
  net[1] = 0x80;
  prefix[0] = 0xff;
  prefix[1] = 0xc0;  // /10
  ovs::match_set_bytes(ipv6, FieldId::kIpv6Src, net, prefix);
  EXPECT_EQ(ovs::render_match(ipv6), "ipv6,ipv6_src=fe80::/10");
  EXPECT_EQ(normal_match_from(ovs::pack_match_fields(ipv6)), match_from_text("ipv6,ipv6_src=fe80::/10"));
}

TEST(NormalMatchFrom, EmptyAndTruncatedPackedFieldsGiveWhatIsWhole) {
  EXPECT_TRUE(normal_match_from("").empty());
  ovs::Match m;
  ovs::match_set(m, FieldId::kInPort, 5);
  ovs::match_set(m, FieldId::kReg5, 2);
  std::string packed = ovs::pack_match_fields(m);
  packed.pop_back();  // the last field cut short
  const auto v = normal_match_from(packed);
  EXPECT_EQ(v.size(), 1u);
  EXPECT_EQ(ovsdb::exact_u64(v, "in_port"), 5u);
}

// ---- one flow at a time, exact FlowView ----

TEST_F(Fixture, Table25MacSpoofFlow) {
  ovs::Match m = in_port(1);
  ovs::match_set_bytes(m, FieldId::kEthSrc, mac(1));
  auto v = only(update(25, 2, 0xabc, m, resubmit(60)));
  EXPECT_EQ(v.canonical_text(),
            "table=25, priority=2, cookie=0xabc, in_port=1,dl_src=fa:16:3e:00:00:01 actions=resubmit(,60)");
  EXPECT_EQ(v.match_text, "in_port=1,dl_src=fa:16:3e:00:00:01");
  EXPECT_EQ(v.match, match_from_text("in_port=1,dl_src=fa:16:3e:00:00:01"));
  EXPECT_EQ(v.actions.resubmit_tables, (std::vector<uint8_t>{60}));
  EXPECT_TRUE(v.actions.output_ports.empty());
  EXPECT_TRUE(v.actions.special_outputs.empty());
  EXPECT_FALSE(v.actions.is_drop);
  EXPECT_EQ(v.first_seen, steady(5000));
  EXPECT_EQ(v.last_change, steady(5000));
  expect_same_as_text(v, "table=25, priority=2, cookie=0xabc, in_port=1,dl_src=fa:16:3e:00:00:01 actions=resubmit(,60)");
}

TEST_F(Fixture, Table60RegisterLoadsBothEncodings) {
  auto v = only(update(60, 100, 0xabc, in_port(2),
                       cat({set_reg(5, 2), load_reg(6, 1), load_reg16(7, 3), resubmit(71)})));
  EXPECT_EQ(v.actions.text,
            "set_field:0x2->reg5,load:0x1->NXM_NX_REG6[],load:0x3->NXM_NX_REG7[0..15],resubmit(,71)");
  // Whole-register constant loads only; the 16-bit load is not one.
  EXPECT_EQ(v.actions.reg_loads,
            (std::vector<std::pair<std::string, uint64_t>>{{"reg5", 2}, {"reg6", 1}}));
  EXPECT_EQ(v.actions.resubmit_tables, (std::vector<uint8_t>{71}));
  EXPECT_EQ(v.match, match_from_text("in_port=2"));
}

TEST_F(Fixture, Table94OutputWithRegisterMatch) {
  ovs::Match m;
  ovs::match_set(m, FieldId::kReg6, 1);
  ovs::match_set_bytes(m, FieldId::kEthDst, mac(9));
  auto v = only(update(94, 12, 0xabc, m, output(7)));
  EXPECT_EQ(v.canonical_text(),
            "table=94, priority=12, cookie=0xabc, reg6=0x1,dl_dst=fa:16:3e:00:00:09 actions=output:7");
  EXPECT_EQ(v.actions.output_ports, (std::vector<uint32_t>{7}));
  expect_same_as_text(v, "table=94, priority=12, cookie=0xabc, reg6=0x1,dl_dst=fa:16:3e:00:00:09 actions=output:7");
}

TEST_F(Fixture, ConntrackMatchAndStripVlan) {
  ovs::Match m;
  ovs::match_set(m, FieldId::kEthType, 0x0800);
  ovs::match_set(m, FieldId::kCtState, 0x02 | 0x20, 0x02 | 0x04 | 0x08 | 0x20);  // +est-rel-rpl+trk
  ovs::match_set(m, FieldId::kReg5, 1);
  ovs::match_set(m, FieldId::kIpv4Src, 0x0a000000, 0xffffff00);
  auto v = only(update(72, 70, 0xabc, m, cat({strip_vlan(), output(1)})));
  EXPECT_EQ(v.match_text, "ct_state=+est-rel-rpl+trk,ip,reg5=0x1,nw_src=10.0.0.0/24");
  EXPECT_EQ(v.match, match_from_text(v.match_text));
  EXPECT_EQ(ovsdb::exact_u64(v.match, "reg5"), 1u);
  EXPECT_EQ(ovsdb::exact_u64(v.match, "nw_src"), std::nullopt);  // masked
  EXPECT_TRUE(v.actions.strips_vlan);
  EXPECT_EQ(v.actions.output_ports, (std::vector<uint32_t>{1}));
}

TEST_F(Fixture, SpecialOutputsAndNestedOutput) {
  auto v = only(update(0, 5, 0x1, in_port(3),
                       cat({output(0xfffa), output(0xfffe), output(0xfffd, 65535), output(0xfff8),
                            output(0xfffb), output_reg1_16(), clone(output(4))})));
  EXPECT_EQ(v.actions.text,
            "NORMAL,LOCAL,CONTROLLER:65535,IN_PORT,FLOOD,output:NXM_NX_REG1[0..15],clone(output:4)");
  EXPECT_EQ(v.actions.special_outputs,
            (std::vector<std::string>{"NORMAL", "LOCAL", "CONTROLLER", "IN_PORT", "FLOOD",
                                      "NXM_NX_REG1[0..15]"}));
  // The output nested in clone() counts (R1 must see it).
  EXPECT_EQ(v.actions.output_ports, (std::vector<uint32_t>{4}));
  EXPECT_FALSE(v.actions.conjunction_only);
}

TEST_F(Fixture, ConjunctionOnlyAndDrop) {
  ovs::Match m;
  ovs::match_set(m, FieldId::kEthType, 0x0800);
  ovs::match_set(m, FieldId::kReg5, 2);
  auto v = only(update(82, 71, 0xabc, m, cat({conjunction(10, 2, 2), conjunction(11, 1, 2)})));
  EXPECT_TRUE(v.actions.conjunction_only);
  EXPECT_EQ(v.actions.text, "conjunction(10,2/2),conjunction(11,1/2)");
  expect_same_as_text(v, "table=82, priority=71, cookie=0xabc, ip,reg5=0x2 actions=conjunction(10,2/2),conjunction(11,1/2)");

  ovs::FlowMirror empty("br-int");
  auto d = only(update(23, 0, 0xabc, ovs::Match{}, Bytes{}));
  EXPECT_TRUE(d.actions.is_drop);
  EXPECT_FALSE(d.actions.conjunction_only);
  EXPECT_TRUE(d.match.empty());
  EXPECT_EQ(d.canonical_text(), "table=23, priority=0, cookie=0xabc actions=drop");
}

// ---- bridge state over successive reads ----

TEST_F(Fixture, BridgeStateTracksCompletenessAndChanges) {
  BridgeTracker tracker;
  std::vector<std::shared_ptr<const ovs::FlowMirror>> ms{
      std::shared_ptr<const ovs::FlowMirror>(&mirror, [](const ovs::FlowMirror*) {})};

  // t=5000: monitor not connected yet: incomplete since first sight.
  auto r = tracker.read(ms, clocks(5000));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].bridge, "br-int");
  EXPECT_FALSE(r[0].view_complete);
  EXPECT_EQ(r[0].incomplete_since, steady(5000));
  EXPECT_EQ(r[0].last_change, steady(5000));
  EXPECT_EQ(r[0].resync_diff, 0u);

  // t=5003: the INITIAL snapshot arrived at 5002.
  sys_now = std::chrono::system_clock::time_point{seconds(5002)};
  mirror.on_resync_start();
  mirror.on_flow(update(0, 9, 0xabc, in_port(1), resubmit(25)));
  mirror.on_flow(update(0, 9, 0xabc, in_port(2), resubmit(25)));
  mirror.on_resync_complete();
  r = tracker.read(ms, clocks(5003));
  EXPECT_TRUE(r[0].view_complete);
  EXPECT_EQ(r[0].flows.size(), 2u);
  EXPECT_EQ(r[0].last_change, steady(5003));  // resyncs moved: detected now
  EXPECT_EQ(r[0].flows[0].first_seen, steady(5002));

  // t=5010: nothing happened.
  r = tracker.read(ms, clocks(5010));
  EXPECT_TRUE(r[0].view_complete);
  EXPECT_EQ(r[0].last_change, steady(5003));

  // t=5020: a live add.
  sys_now = std::chrono::system_clock::time_point{seconds(5019)};
  mirror.on_flow(update(0, 9, 0xabc, in_port(3), resubmit(25), false));
  r = tracker.read(ms, clocks(5020));
  EXPECT_EQ(r[0].flows.size(), 3u);
  EXPECT_EQ(r[0].last_change, steady(5020));
  EXPECT_EQ(r[0].flows[2].last_change, steady(5019));

  // t=5030: vswitchd went away; t=5040 still away.
  mirror.on_disconnect("eof");
  r = tracker.read(ms, clocks(5030));
  EXPECT_FALSE(r[0].view_complete);
  EXPECT_EQ(r[0].incomplete_since, steady(5030));
  EXPECT_EQ(r[0].last_change, steady(5030));
  r = tracker.read(ms, clocks(5040));
  EXPECT_EQ(r[0].incomplete_since, steady(5030));
  EXPECT_EQ(r[0].last_change, steady(5030));

  // The bridge disappears: its state is forgotten and it starts over when back.
  r = tracker.read({}, clocks(5050));
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(tracker.states().empty());
}

TEST(BridgeFlowsFrom, TornReadCountsAsChange) {
  ovs::MirrorSnapshot before, after;
  before.bridge = after.bridge = "br-int";
  before.view_complete = after.view_complete = true;
  before.change_seq = 5;
  after.change_seq = 6;
  BridgeViewState st;
  st.seen = true;
  st.view_complete = true;
  st.change_seq = 6;  // the previous read already saw seq 6
  st.last_change = ovsdb::TimePoint{} + seconds(1);
  ClockPair c{std::chrono::system_clock::time_point{seconds(100)}, ovsdb::TimePoint{} + seconds(50)};
  auto b = bridge_flows_from(before, {}, after, st, c);
  EXPECT_TRUE(b.view_complete);
  EXPECT_EQ(b.last_change, ovsdb::TimePoint{} + seconds(50));

  // A view that completes mid-read is not complete yet.
  before.change_seq = after.change_seq = 6;
  before.view_complete = false;
  b = bridge_flows_from(before, {}, after, st, c);
  EXPECT_FALSE(b.view_complete);
  EXPECT_EQ(b.incomplete_since, ovsdb::TimePoint{} + seconds(50));
}

// ---- adapter output drives the rules like the text fixtures do ----

TEST_F(Fixture, RulesSeeMirrorFlowsAsGatedInput) {
  // R15 pair inside one (table, priority) plus one R1 output, from the mirror.
  mirror.on_resync_start();
  mirror.on_flow(update(60, 100, 0xabc, in_port(1), cat({set_reg(5, 1), resubmit(71)})));
  ovs::Match ipm = in_port(1);
  ovs::match_set(ipm, FieldId::kEthType, 0x0800);
  mirror.on_flow(update(60, 100, 0xabc, ipm, Bytes{}));
  mirror.on_resync_complete();
  BridgeTracker tracker;
  std::vector<std::shared_ptr<const ovs::FlowMirror>> ms{
      std::shared_ptr<const ovs::FlowMirror>(&mirror, [](const ovs::FlowMirror*) {})};
  ovsdb::RuleConfig cfg;
  cfg.quiet = seconds(10);
  ovsdb::RuleGate gate(cfg);

  auto flows = tracker.read(ms, clocks(5000));
  auto rep = ovsdb::evaluate_rules({&flows, nullptr, nullptr}, gate, steady(5005));
  EXPECT_EQ(rep.held.count("br-int"), 1u);  // first sight at 5000: not quiet for Q yet
  EXPECT_EQ(rep.counts.count({"br-int", ovsdb::kSamePriorityOverlap}), 0u);

  flows = tracker.read(ms, clocks(5011));
  rep = ovsdb::evaluate_rules({&flows, nullptr, nullptr}, gate, steady(5011));
  EXPECT_EQ(rep.held.count("br-int"), 0u);
  EXPECT_EQ(rep.counts.at({"br-int", ovsdb::kSamePriorityOverlap}), 1u);
  EXPECT_EQ(rep.counts.at({"br-int", ovsdb::kFlowMonitorGap}), 0u);
}

}  // namespace
}  // namespace hvtel::ovs_service
