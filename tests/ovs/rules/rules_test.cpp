#include "ovs/rules/rules.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flow_text.h"
#include "ovs/ovsdb/db.h"
#include "ovs/rules/rules_gate.h"
#include "ovs/rules/rules_match.h"
#include "ovsdb_fixtures.h"

namespace hvtel::ovsdb {
namespace {

using testing::at;
using testing::flow;

// ---- fixtures ----

const char* kPorts = R"({
  "Bridge":{"b1":{"initial":{"name":"br-int","fail_mode":"secure",
      "ports":["set",[["uuid","p0"],["uuid","p1"],["uuid","p2"],["uuid","p3"]]]}}},
  "Port":{
    "p0":{"initial":{"name":"br-int","interfaces":["uuid","i0"]}},
    "p1":{"initial":{"name":"tap1","tag":1,"interfaces":["uuid","i1"]}},
    "p2":{"initial":{"name":"tap2","tag":1,"interfaces":["uuid","i2"]}},
    "p3":{"initial":{"name":"patch-tun","interfaces":["uuid","i3"]}}},
  "Interface":{
    "i0":{"initial":{"name":"br-int","type":"internal","ofport":65534}},
    "i1":{"initial":{"name":"tap1","ofport":1,"external_ids":["map",[["iface-id","port-1"],
          ["attached-mac","fa:16:3e:00:00:01"],["vm-uuid","vm-1"]]]}},
    "i2":{"initial":{"name":"tap2","ofport":2,"external_ids":["map",[["iface-id","port-2"],
          ["attached-mac","fa:16:3e:00:00:02"],["vm-uuid","vm-2"]]]}},
    "i3":{"initial":{"name":"patch-tun","type":"patch","ofport":3}}}})";

// A clean Neutron br-int (OVS firewall, one network on local VLAN 1).
const std::vector<std::string> kBaseline = {
    "table=0, priority=65535, cookie=0xabc, dl_vlan=4095 actions=drop",
    "table=0, priority=10, cookie=0xabc, arp,in_port=1 actions=resubmit(,24)",
    "table=0, priority=10, cookie=0xabc, arp,in_port=2 actions=resubmit(,24)",
    "table=0, priority=9, cookie=0xabc, in_port=1 actions=resubmit(,25)",
    "table=0, priority=9, cookie=0xabc, in_port=2 actions=resubmit(,25)",
    "table=0, priority=3, cookie=0xabc, in_port=3,dl_vlan=100 actions=set_field:4097->vlan_vid,resubmit(,60)",
    "table=0, priority=0, cookie=0xabc,  actions=resubmit(,60)",
    "table=23, priority=0, cookie=0xabc,  actions=drop",
    "table=24, priority=2, cookie=0xabc, arp,in_port=1,arp_spa=10.0.0.1 actions=resubmit(,25)",
    "table=24, priority=2, cookie=0xabc, arp,in_port=2,arp_spa=10.0.0.2 actions=resubmit(,25)",
    "table=24, priority=0, cookie=0xabc,  actions=drop",
    "table=25, priority=2, cookie=0xabc, in_port=1,dl_src=fa:16:3e:00:00:01 actions=resubmit(,60)",
    "table=25, priority=2, cookie=0xabc, in_port=2,dl_src=fa:16:3e:00:00:02 actions=resubmit(,60)",
    "table=60, priority=100, cookie=0xabc, in_port=1 actions=set_field:1->reg5,set_field:1->reg6,resubmit(,71)",
    "table=60, priority=100, cookie=0xabc, in_port=2 actions=set_field:2->reg5,set_field:1->reg6,resubmit(,71)",
    "table=60, priority=90, cookie=0xabc, dl_vlan=1,dl_dst=fa:16:3e:00:00:01 actions=set_field:1->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)",
    "table=60, priority=90, cookie=0xabc, dl_vlan=1,dl_dst=fa:16:3e:00:00:02 actions=set_field:2->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)",
    "table=60, priority=3, cookie=0xabc,  actions=NORMAL",
    "table=61, priority=12, cookie=0xabc, dl_dst=fa:16:3e:00:00:01,dl_vlan=1 actions=strip_vlan,output:1",
    "table=71, priority=95, cookie=0xabc, icmp6,reg5=1,in_port=1,icmp_type=136 actions=resubmit(,94)",
    "table=71, priority=95, cookie=0xabc, icmp6,reg5=2,in_port=2,icmp_type=136 actions=resubmit(,94)",
    "table=71, priority=65, cookie=0xabc, ct_state=-trk,ip,reg5=1 actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
    "table=71, priority=65, cookie=0xabc, ct_state=-trk,ip,reg5=2 actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
    "table=72, priority=70, cookie=0xabc, ct_state=+est-rel-rpl,ip,reg5=1 actions=resubmit(,73)",
    "table=72, priority=70, cookie=0xabc, ct_state=+new-est,ip,reg5=1 actions=resubmit(,73)",
    "table=72, priority=70, cookie=0xabc, ct_state=+est-rel-rpl,ip,reg5=2 actions=resubmit(,73)",
    "table=81, priority=90, cookie=0xabc, ct_state=-trk,ip,reg5=1 actions=ct(table=82,zone=NXM_NX_REG6[0..15])",
    "table=81, priority=90, cookie=0xabc, ct_state=-trk,ip,reg5=2 actions=ct(table=82,zone=NXM_NX_REG6[0..15])",
    "table=82, priority=71, cookie=0xabc, ct_state=+est-rel-rpl,ip,reg6=1,nw_src=10.0.0.0/24 actions=conjunction(10,1/2)",
    "table=82, priority=71, cookie=0xabc, ct_state=+est-rel-rpl,ip,reg5=1 actions=conjunction(10,2/2)",
    "table=82, priority=71, cookie=0xabc, ct_state=+est-rel-rpl,ip,reg5=2 actions=conjunction(10,2/2)",
    "table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:01 actions=output:1",
    "table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:02 actions=output:2",
    "table=94, priority=1, cookie=0xabc,  actions=NORMAL",
};

PortModel ports_model(const char* json_text = kPorts, TimePoint t = at(1000)) {
  Database db;
  auto st = apply_table_updates2(db, nlohmann::json::parse(json_text), true);
  EXPECT_TRUE(st) << (st ? "" : st.error().message);
  return build_port_model(db, nullptr, t, 1, true);
}

BridgeFlows bridge_flows(const std::vector<std::string>& extra = {},
                         const std::vector<std::string>& base = kBaseline) {
  BridgeFlows b;
  b.bridge = "br-int";
  b.view_complete = true;
  b.last_change = at(1000);
  for (const auto& t : base) b.flows.push_back(flow(t));
  for (const auto& t : extra) b.flows.push_back(flow(t));
  return b;
}

LibvirtView libvirt(std::vector<DomainView> extra = {}) {
  LibvirtView v;
  v.available = true;
  v.domains.push_back({"vm-1", true, {{"tap1", "fa:16:3e:00:00:01", "port-1"}}, at(1000)});
  v.domains.push_back({"vm-2", true, {{"tap2", "fa:16:3e:00:00:02", "port-2"}}, at(1000)});
  for (auto& d : extra) v.domains.push_back(std::move(d));
  return v;
}

struct RuleRun {
  RuleReport report;
  uint64_t count(const std::string& rule, const std::string& bridge = "br-int") const {
    auto it = report.counts.find({bridge, rule});
    return it == report.counts.end() ? UINT64_MAX : it->second;  // MAX: not evaluated
  }
  // Every rule but `rule` evaluated to 0 on br-int, and `rule` to `n`.
  void expect_only(const std::string& rule, uint64_t n) const {
    for (const auto& r : rule_names()) {
      EXPECT_EQ(count(r), r == rule ? n : 0) << "rule " << r;
    }
    size_t examples = 0;
    for (const auto& v : report.violations) {
      EXPECT_EQ(v.rule, rule) << v.subject << ": " << v.detail;
      ++examples;
    }
    EXPECT_EQ(examples, n);
  }
};

// Runs with the gate warmed up long ago: every window has passed at t=2000.
RuleRun run(const BridgeFlows& f, const PortModel& p, const LibvirtView* l, RuleConfig cfg = {},
        TimePoint now = at(2000)) {
  RuleGate gate(cfg);
  gate.observe(f, at(1000));
  std::vector<BridgeFlows> flows{f};
  return RuleRun{evaluate_rules({&flows, &p, l}, gate, now)};
}

// ---- baseline ----

TEST(Rules, CleanBaselineFiresNothing) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleRun r = run(bridge_flows(), p, &l);
  r.expect_only("", 0);
  EXPECT_TRUE(r.report.held.empty());
}

// ---- one planted case per rule ----

TEST(Rules, R1OutputToMissingOfport) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleRun r = run(bridge_flows({"table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:09 "
                            "actions=output:7"}),
              p, &l);
  r.expect_only(kOutputToMissingOfport, 1);
  EXPECT_EQ(r.report.violations[0].table, 94);
  EXPECT_EQ(r.report.violations[0].priority, 12);
  EXPECT_EQ(r.report.violations[0].subject,
            "table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:09 actions=output:7");
  EXPECT_EQ(r.report.violations[0].detail, "outputs to ofport 7 which no interface on br-int has");
}

TEST(Rules, R1IgnoresReservedAndSpecialPorts) {
  PortModel p = ports_model();
  FlowView f = flow("table=94, priority=13, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:09 actions=output:65534");
  f.actions.output_ports.push_back(0xfffffffd);  // OF1.3 CONTROLLER as a number
  BridgeFlows b = bridge_flows();
  b.flows.push_back(f);
  RuleRun r = run(b, p, nullptr);
  EXPECT_EQ(r.count(kOutputToMissingOfport), 0u);
}

TEST(Rules, R2MatchOnMissingOfportInPort) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleRun r = run(bridge_flows({"table=0, priority=9, cookie=0xabc, in_port=9 actions=resubmit(,25)"}), p, &l);
  r.expect_only(kMatchOnMissingOfport, 1);
  EXPECT_EQ(r.report.violations[0].detail, "matches in_port=9, not a live ofport on br-int");
}

TEST(Rules, R2MatchOnMissingOfportReg5OnlyInFirewallTables) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleRun r = run(bridge_flows({
                  "table=71, priority=95, cookie=0xabc, icmp6,reg5=8,icmp_type=136 actions=resubmit(,94)",
                  "table=82, priority=50, cookie=0xabc, ip,reg5=8 actions=resubmit(,94)",
                  // reg5 outside the firewall tables is not an ofport
                  "table=20, priority=2, cookie=0xabc, reg5=8 actions=resubmit(,22)",
              }),
              p, &l);
  r.expect_only(kMatchOnMissingOfport, 2);
}

TEST(Rules, R3OfportMacMismatchTable25And60And61) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleRun r = run(bridge_flows({
                  "table=25, priority=2, cookie=0xabc, in_port=1,dl_src=fa:16:3e:00:00:99 actions=resubmit(,60)",
                  "table=60, priority=90, cookie=0xabc, dl_vlan=1,dl_dst=fa:16:3e:00:00:98 actions=set_field:2->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)",
                  "table=61, priority=12, cookie=0xabc, dl_dst=fa:16:3e:00:00:97,dl_vlan=1 actions=strip_vlan,output:2",
                  // broadcast and masked MACs are not pins
                  "table=61, priority=12, cookie=0xabc, dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=1 actions=strip_vlan,output:2",
              }),
              p, &l);
  r.expect_only(kOfportMacMismatch, 3);
  EXPECT_EQ(r.report.violations[0].detail,
            "dl_src=fa:16:3e:00:00:99 but ofport 1 is tap1 with attached-mac fa:16:3e:00:00:01 "
            "(ofport reused?)");
}

TEST(Rules, R13ForeignCookieLearned) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleRun r = run(bridge_flows({"table=0, priority=1, cookie=0x0, dl_src=fa:16:3e:00:00:55 actions=drop",
                            "table=23, priority=5, cookie=0x1234, dl_src=fa:16:3e:00:00:55 actions=drop"}),
              p, &l);
  r.expect_only(kForeignCookieFlows, 2);
  EXPECT_EQ(r.report.violations[0].detail, "cookie 0x0 is not the agent cookie 0xabc");
}

TEST(Rules, R13AllowListReplacesLearning) {
  PortModel p = ports_model();
  RuleConfig cfg;
  cfg.cookie_allow["br-int"] = {0xabc, 0x0};
  cfg.cookie_allow["*"] = {0x77};
  RuleRun r = run(bridge_flows({"table=0, priority=1, cookie=0x0, dl_src=fa:16:3e:00:00:55 actions=drop",
                            "table=23, priority=5, cookie=0x77, dl_src=fa:16:3e:00:00:55 actions=drop",
                            "table=23, priority=6, cookie=0xdef, dl_src=fa:16:3e:00:00:55 actions=drop"}),
              p, nullptr, cfg);
  EXPECT_EQ(r.count(kForeignCookieFlows), 1u);
  EXPECT_EQ(r.report.violations.at(0).detail, "cookie 0xdef not in the allow-list");
}

TEST(Rules, R13BridgeWithoutAgentCookieIsNotJudged) {
  PortModel p = ports_model();
  BridgeFlows b = bridge_flows({}, {"table=0, priority=0, cookie=0x0,  actions=NORMAL"});
  RuleRun r = run(b, p, nullptr);
  EXPECT_EQ(r.count(kForeignCookieFlows), 0u);
}

TEST(Rules, R15SamePriorityOverlap) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleRun r = run(bridge_flows({
                  // intersects "in_port=1 actions=set_field:1->reg5,..." at table 60 priority 100
                  "table=60, priority=100, cookie=0xabc, ip,in_port=1 actions=drop",
                  // disjoint from everything at its priority (different in_port / nw_proto)
                  "table=0, priority=10, cookie=0xabc, tcp,in_port=1 actions=drop",
              }),
              p, &l);
  // The tcp flow intersects "arp,in_port=1"? No: dl_type differs. Only the first overlaps.
  r.expect_only(kSamePriorityOverlap, 1);
  EXPECT_EQ(r.report.violations[0].detail,
            "overlaps with: table=60, priority=100, cookie=0xabc, ip,in_port=1 actions=drop");
}

TEST(Rules, R15WildcardFlowOverlapsBucketedFlows) {
  PortModel p = ports_model();
  RuleRun r = run(bridge_flows({"table=94, priority=12, cookie=0xabc, reg6=1 actions=NORMAL"}), p, nullptr);
  // reg6=1 (no dl_dst) intersects both dl_dst flows at table 94 priority 12.
  EXPECT_EQ(r.count(kSamePriorityOverlap), 2u);
}

TEST(Rules, R16LibvirtInterfaceMissingFromOvsdb) {
  PortModel p = ports_model();
  LibvirtView l = libvirt({{"vm-3", true, {{"tap3", "fa:16:3e:00:00:03", "port-3"}}, at(1000)}});
  RuleRun r = run(bridge_flows(), p, &l);
  r.expect_only(kVifBindingMismatch, 1);
  EXPECT_EQ(r.report.violations[0].subject, "tap3");
  EXPECT_EQ(r.report.violations[0].detail,
            "instance vm-3 interface tap3 (port port-3) is not in OVSDB");
}

TEST(Rules, R16IfaceIdAndMacMismatch) {
  PortModel p = ports_model();
  LibvirtView l;
  l.available = true;
  l.domains.push_back({"vm-1", true, {{"tap1", "fa:16:3e:00:00:01", "port-X"}}, at(1000)});
  l.domains.push_back({"vm-2", true, {{"tap2", "fa:16:3e:00:00:22", "port-2"}}, at(1000)});
  RuleRun r = run(bridge_flows(), p, &l);
  r.expect_only(kVifBindingMismatch, 2);
  EXPECT_EQ(r.report.violations[0].detail, "iface-id port-1 but libvirt interfaceid port-X (instance vm-1)");
  EXPECT_EQ(r.report.violations[1].detail,
            "attached-mac fa:16:3e:00:00:02 but libvirt mac fa:16:3e:00:00:22 (instance vm-2)");
}

TEST(Rules, R16OrphanAndInterfaceError) {
  PortModel p = ports_model();
  LibvirtView l;  // vm-2 has no domain: tap2 is an orphan
  l.available = true;
  l.domains.push_back({"vm-1", true, {{"tap1", "fa:16:3e:00:00:01", "port-1"}}, at(1000)});
  RuleRun r = run(bridge_flows(), p, &l);
  r.expect_only(kVifBindingMismatch, 1);
  EXPECT_EQ(r.report.violations[0].detail,
            "iface-id port-2 names instance vm-2 which has no running domain (orphan)");

  // Interface.error needs no libvirt.
  std::string with_error = kPorts;
  with_error.replace(with_error.find(R"("name":"patch-tun","type":"patch")"), 0,
                     R"("error":"could not add network device patch-tun",)");
  PortModel pe = ports_model(with_error.c_str());
  RuleRun re = run(bridge_flows(), pe, nullptr);
  re.expect_only(kVifBindingMismatch, 1);
  EXPECT_EQ(re.report.violations[0].detail, "Interface.error: could not add network device patch-tun");
}

TEST(Rules, R17FlowMonitorGap) {
  PortModel p = ports_model();
  BridgeFlows b = bridge_flows();
  b.view_complete = false;
  b.incomplete_since = at(1900);
  std::vector<BridgeFlows> flows{b};
  RuleGate gate;
  auto rep = evaluate_rules({&flows, &p, nullptr}, gate, at(1929));
  EXPECT_EQ(rep.counts.at({"br-int", kFlowMonitorGap}), 0u);
  EXPECT_EQ(rep.held.at("br-int"), "flow view incomplete");
  EXPECT_EQ(rep.counts.count({"br-int", kOutputToMissingOfport}), 0u);  // held, not zero
  rep = evaluate_rules({&flows, &p, nullptr}, gate, at(1931));
  EXPECT_EQ(rep.counts.at({"br-int", kFlowMonitorGap}), 1u);
  EXPECT_EQ(rep.violations.at(0).detail, "flow view incomplete for 31s (limit 30s)");

  BridgeFlows c = bridge_flows();
  c.resync_diff = 3;
  RuleRun r = run(c, p, nullptr);
  r.expect_only(kFlowMonitorGap, 1);
  EXPECT_EQ(r.report.violations[0].detail, "last resync found 3 flows differing from the mirror");
}

// ---- gating ----

TEST(RuleGate, BridgeMustBeQuiet) {
  PortModel p = ports_model();
  BridgeFlows b = bridge_flows({"table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:09 actions=output:7"});
  b.last_change = at(1995);
  RuleRun r = run(b, p, nullptr, {}, at(2000));
  EXPECT_EQ(r.report.held.at("br-int"), "bridge not quiet for 10s");
  EXPECT_EQ(r.count(kOutputToMissingOfport), UINT64_MAX);
  r = run(b, p, nullptr, {}, at(2005));
  EXPECT_TRUE(r.report.held.empty());
  EXPECT_EQ(r.count(kOutputToMissingOfport), 1u);
}

TEST(RuleGate, YoungPortsAreSkipped) {
  PortModel p = ports_model(kPorts, at(1970));  // tap1 appeared 30 s before "now"
  BridgeFlows b = bridge_flows({"table=25, priority=2, cookie=0xabc, in_port=1,dl_src=fa:16:3e:00:00:99 actions=resubmit(,60)"});
  EXPECT_EQ(run(b, p, nullptr, {}, at(2000)).count(kOfportMacMismatch), 0u);
  EXPECT_EQ(run(b, p, nullptr, {}, at(2030)).count(kOfportMacMismatch), 1u);
  RuleConfig cfg;
  cfg.port_grace = std::chrono::seconds(10);
  EXPECT_EQ(run(b, p, nullptr, cfg, at(2000)).count(kOfportMacMismatch), 1u);
}

TEST(RuleGate, RecentlyReleasedOfportGetsGrace) {
  // tap7 (ofport 7) existed, then was deleted at t=1980: its flows have G to go.
  std::string with7 = kPorts;
  with7.replace(with7.find(R"(["uuid","p3"]]]}}})"), 0, R"(["uuid","p7"],)");
  with7.replace(with7.find(R"("p3":{)"), 0,
                R"("p7":{"initial":{"name":"tap7","interfaces":["uuid","i7"]}},)");
  with7.replace(with7.find(R"("i3":{)"), 0, R"("i7":{"initial":{"name":"tap7","ofport":7}},)");
  PortModel before = ports_model(with7.c_str(), at(1000));
  Database db;
  ASSERT_TRUE(apply_table_updates2(db, nlohmann::json::parse(kPorts), true));
  PortModel after = build_port_model(db, &before, at(1980), 2, true);
  ASSERT_EQ(after.bridges[0].released_ofports.count(7), 1u);

  BridgeFlows b = bridge_flows({"table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:07 actions=output:7",
                                "table=0, priority=9, cookie=0xabc, in_port=7 actions=resubmit(,25)"});
  RuleRun r = run(b, after, nullptr, {}, at(2000));
  EXPECT_EQ(r.count(kOutputToMissingOfport), 0u);
  EXPECT_EQ(r.count(kMatchOnMissingOfport), 0u);
  r = run(b, after, nullptr, {}, at(2040));
  EXPECT_EQ(r.count(kOutputToMissingOfport), 1u);
  EXPECT_EQ(r.count(kMatchOnMissingOfport), 1u);
}

TEST(RuleGate, NewDominantCookieHoldsPortAndCookieRules) {
  PortModel p = ports_model();
  RuleGate gate;
  BridgeFlows old_gen = bridge_flows({"table=0, priority=9, cookie=0xabc, in_port=9 actions=resubmit(,25)"});
  std::vector<BridgeFlows> flows{old_gen};
  auto rep = evaluate_rules({&flows, &p, nullptr}, gate, at(1100));  // first sight: window starts
  EXPECT_EQ(gate.dominant_cookie("br-int"), 0xabcu);
  EXPECT_TRUE(gate.in_restart_window("br-int", at(1100)));
  EXPECT_EQ(rep.counts.count({"br-int", kMatchOnMissingOfport}), 0u);
  EXPECT_EQ(rep.counts.count({"br-int", kForeignCookieFlows}), 0u);
  EXPECT_EQ(rep.counts.at({"br-int", kSamePriorityOverlap}), 0u);  // not port-scoped

  rep = evaluate_rules({&flows, &p, nullptr}, gate, at(1400));
  EXPECT_EQ(rep.counts.at({"br-int", kMatchOnMissingOfport}), 1u);

  // Agent restart: every flow re-added with a new cookie, one stale flow keeps the old.
  BridgeFlows new_gen = old_gen;
  for (auto& f : new_gen.flows) f.cookie = 0xdef;
  new_gen.flows.back().cookie = 0xabc;
  new_gen.last_change = at(1500);
  flows = {new_gen};
  rep = evaluate_rules({&flows, &p, nullptr}, gate, at(1520));
  EXPECT_EQ(gate.dominant_cookie("br-int"), 0xdefu);
  EXPECT_EQ(rep.counts.count({"br-int", kForeignCookieFlows}), 0u);
  rep = evaluate_rules({&flows, &p, nullptr}, gate, at(1521 + 300));
  EXPECT_EQ(rep.counts.at({"br-int", kForeignCookieFlows}), 1u);
  EXPECT_EQ(rep.counts.at({"br-int", kMatchOnMissingOfport}), 1u);
}

TEST(RuleGate, CookieTieKeepsPreviousDominant) {
  RuleGate gate;
  BridgeFlows b;
  b.bridge = "br-int";
  b.view_complete = true;
  b.flows = {flow("table=0, priority=1, cookie=0x1,  actions=drop"),
             flow("table=0, priority=2, cookie=0x1,  actions=drop"),
             flow("table=0, priority=3, cookie=0x2,  actions=drop")};
  gate.observe(b, at(0));
  EXPECT_EQ(gate.dominant_cookie("br-int"), 1u);
  b.flows.push_back(flow("table=0, priority=4, cookie=0x2,  actions=drop"));
  gate.observe(b, at(10));
  EXPECT_EQ(gate.dominant_cookie("br-int"), 1u);
  EXPECT_FALSE(gate.in_restart_window("br-int", at(300)));
  b.view_complete = false;  // partial views never elect
  b.flows.push_back(flow("table=0, priority=5, cookie=0x2,  actions=drop"));
  gate.observe(b, at(20));
  EXPECT_EQ(gate.dominant_cookie("br-int"), 1u);
}

TEST(Rules, OvsdbNotSyncedSkipsPortRules) {
  PortModel p = ports_model();
  p.synced = false;
  RuleRun r = run(bridge_flows({"table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:09 actions=output:7"}),
              p, nullptr);
  EXPECT_EQ(r.count(kOutputToMissingOfport), UINT64_MAX);
  EXPECT_EQ(r.count(kVifBindingMismatch), UINT64_MAX);
  EXPECT_EQ(r.count(kSamePriorityOverlap), 0u);
}

TEST(Rules, ExamplesAreCappedCountsAreExact) {
  PortModel p = ports_model();
  RuleConfig cfg;
  cfg.max_examples = 2;
  std::vector<std::string> extra;
  for (int i = 0; i < 5; ++i) {
    extra.push_back("table=94, priority=20, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:01:0" +
                    std::to_string(i) + " actions=output:" + std::to_string(40 + i));
  }
  RuleRun r = run(bridge_flows(extra), p, nullptr, cfg);
  EXPECT_EQ(r.count(kOutputToMissingOfport), 5u);
  EXPECT_EQ(r.report.violations.size(), 2u);
}

// ---- match normalization ----

NormalMatch M(const std::string& text) { return flow(text + " actions=drop").match; }

TEST(RulesMatch, Intersections) {
  EXPECT_TRUE(matches_intersect(M("in_port=1"), M("ip,in_port=1")));
  EXPECT_FALSE(matches_intersect(M("in_port=1"), M("in_port=2")));
  EXPECT_FALSE(matches_intersect(M("tcp,tp_dst=80"), M("udp,tp_dst=80")));
  EXPECT_FALSE(matches_intersect(M("tcp,tp_dst=80"), M("tcp,tcp_dst=443")));  // alias
  EXPECT_TRUE(matches_intersect(M("ip,nw_src=10.0.0.0/24"), M("ip,nw_src=10.0.0.7")));
  EXPECT_FALSE(matches_intersect(M("ip,nw_src=10.0.0.0/24"), M("ip,nw_src=10.0.1.7")));
  EXPECT_TRUE(matches_intersect(M("ip,nw_src=10.0.0.0/255.255.0.0"), M("ip,nw_src=10.0.1.7")));
  EXPECT_TRUE(matches_intersect(M("ipv6,ipv6_src=fd00::/64"), M("ipv6,ipv6_src=fd00::5")));
  EXPECT_FALSE(matches_intersect(M("ipv6,ipv6_src=fd00::/64"), M("ipv6,ipv6_src=fd01::5")));
  EXPECT_FALSE(matches_intersect(M("ct_state=+trk+est"), M("ct_state=+trk-est")));
  EXPECT_TRUE(matches_intersect(M("ct_state=+trk"), M("ct_state=+trk-est")));
  EXPECT_TRUE(matches_intersect(M("dl_vlan=5"), M("vlan_tci=0x1005/0x1fff")));
  EXPECT_FALSE(matches_intersect(M("dl_vlan=5"), M("vlan_tci=0x1006/0x1fff")));
  EXPECT_FALSE(matches_intersect(M("dl_vlan=4095"), M("vlan_tci=0x0fff/0x1fff")));  // LP #1930414 shape
  EXPECT_TRUE(matches_intersect(M("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"),
                                M("dl_dst=ff:ff:ff:ff:ff:ff")));
  EXPECT_FALSE(matches_intersect(M("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"),
                                 M("dl_dst=fa:16:3e:00:00:01")));
  EXPECT_TRUE(matches_intersect(M("reg6=0x10/0xf0"), M("reg6=0x1f")));
  EXPECT_FALSE(matches_intersect(M("reg6=0x10/0xf0"), M("reg6=0x2f")));
  EXPECT_TRUE(matches_intersect(M("in_port=LOCAL"), M("in_port=65534")));
  // Unparseable values compare as text.
  EXPECT_TRUE(matches_intersect(M("tun_metadata0=abc"), M("tun_metadata0=abc")));
  EXPECT_FALSE(matches_intersect(M("tun_metadata0=abc"), M("tun_metadata0=abd")));
  EXPECT_EQ(exact_u64(M("reg5=0x10"), "reg5"), 16u);
  EXPECT_EQ(exact_u64(M("reg5=0x10/0xff"), "reg5"), std::nullopt);
  EXPECT_EQ(exact_mac(M("dl_src=FA:16:3E:00:00:0A"), "dl_src"), "fa:16:3e:00:00:0a");
}

}  // namespace
}  // namespace hvtel::ovsdb
