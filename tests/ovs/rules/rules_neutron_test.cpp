// Rules R4-R12 and R14 (the Neutron OVS agent's flow shapes) on a Neutron-like
// br-int (OVS firewall) + br-tun fixture: each fires on its planted case with the
// exact subject and detail, and stays silent on the baseline and near-misses.
#include <gtest/gtest.h>

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "flow_text.h"
#include "ovs/ovsdb/db.h"
#include "ovs/rules/rules.h"
#include "ovs/rules/rules_gate.h"
#include "ovs/rules/rules_match.h"
#include "ovsdb_fixtures.h"

namespace hvtel::ovsdb {
namespace {

using testing::at;
using testing::flow;

// br-int: tap1/tap2 (ofport 1/2) bound on local VLAN 1 for network net-a
// (VXLAN segment 100), patch-tun (3) to br-tun. br-tun: patch-int (1), one
// VXLAN tunnel (2).
const char* kPorts = R"({
  "Bridge":{
    "b1":{"initial":{"name":"br-int","fail_mode":"secure",
      "ports":["set",[["uuid","p0"],["uuid","p1"],["uuid","p2"],["uuid","p3"]]]}},
    "b2":{"initial":{"name":"br-tun","fail_mode":"secure",
      "ports":["set",[["uuid","q1"],["uuid","q2"]]]}}},
  "Port":{
    "p0":{"initial":{"name":"br-int","interfaces":["uuid","i0"]}},
    "p1":{"initial":{"name":"tap1","tag":1,"interfaces":["uuid","i1"],
          "other_config":["map",[["network_type","vxlan"],["segmentation_id","100"],
                                 ["net_uuid","net-a"],["tag","1"]]]}},
    "p2":{"initial":{"name":"tap2","tag":1,"interfaces":["uuid","i2"],
          "other_config":["map",[["network_type","vxlan"],["segmentation_id","100"],
                                 ["net_uuid","net-a"],["tag","1"]]]}},
    "p3":{"initial":{"name":"patch-tun","interfaces":["uuid","i3"]}},
    "q1":{"initial":{"name":"patch-int","interfaces":["uuid","j1"]}},
    "q2":{"initial":{"name":"vxlan-0a000002","interfaces":["uuid","j2"]}}},
  "Interface":{
    "i0":{"initial":{"name":"br-int","type":"internal","ofport":65534}},
    "i1":{"initial":{"name":"tap1","ofport":1,"external_ids":["map",[["iface-id","port-1"],
          ["attached-mac","fa:16:3e:00:00:01"],["vm-uuid","vm-1"]]]}},
    "i2":{"initial":{"name":"tap2","ofport":2,"external_ids":["map",[["iface-id","port-2"],
          ["attached-mac","fa:16:3e:00:00:02"],["vm-uuid","vm-2"]]]}},
    "i3":{"initial":{"name":"patch-tun","type":"patch","ofport":3,
          "options":["map",[["peer","patch-int"]]]}},
    "j1":{"initial":{"name":"patch-int","type":"patch","ofport":1,
          "options":["map",[["peer","patch-tun"]]]}},
    "j2":{"initial":{"name":"vxlan-0a000002","type":"vxlan","ofport":2,
          "options":["map",[["remote_ip","10.0.0.2"],["key","flow"]]]}}}})";

const std::vector<std::string> kBrInt = {
    "table=0, priority=65535, cookie=0xabc, dl_vlan=4095 actions=drop",
    "table=0, priority=10, cookie=0xabc, arp,in_port=1 actions=resubmit(,24)",
    "table=0, priority=10, cookie=0xabc, arp,in_port=2 actions=resubmit(,24)",
    "table=0, priority=9, cookie=0xabc, in_port=1 actions=resubmit(,25)",
    "table=0, priority=9, cookie=0xabc, in_port=2 actions=resubmit(,25)",
    "table=0, priority=0, cookie=0xabc,  actions=resubmit(,60)",
    "table=23, priority=0, cookie=0xabc,  actions=drop",
    "table=24, priority=2, cookie=0xabc, arp,in_port=1,arp_spa=10.0.0.1 actions=resubmit(,25)",
    "table=24, priority=2, cookie=0xabc, arp,in_port=2,arp_spa=10.0.0.2 actions=resubmit(,25)",
    "table=24, priority=0, cookie=0xabc,  actions=drop",
    "table=25, priority=2, cookie=0xabc, in_port=1,dl_src=fa:16:3e:00:00:01 actions=resubmit(,60)",
    "table=25, priority=2, cookie=0xabc, in_port=2,dl_src=fa:16:3e:00:00:02 actions=resubmit(,60)",
    "table=60, priority=100, cookie=0xabc, in_port=1 "
    "actions=set_field:1->reg5,set_field:1->reg6,resubmit(,71)",
    "table=60, priority=100, cookie=0xabc, in_port=2 "
    "actions=set_field:2->reg5,set_field:1->reg6,resubmit(,71)",
    "table=60, priority=90, cookie=0xabc, dl_vlan=1,dl_dst=fa:16:3e:00:00:01 "
    "actions=set_field:1->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)",
    "table=60, priority=90, cookie=0xabc, dl_vlan=1,dl_dst=fa:16:3e:00:00:02 "
    "actions=set_field:2->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)",
    "table=60, priority=3, cookie=0xabc,  actions=NORMAL",
    "table=71, priority=95, cookie=0xabc, icmp6,reg5=1,in_port=1,icmp_type=136 actions=resubmit(,94)",
    "table=71, priority=95, cookie=0xabc, icmp6,reg5=2,in_port=2,icmp_type=136 actions=resubmit(,94)",
    "table=71, priority=65, cookie=0xabc, ct_state=-trk,ip,reg5=1 "
    "actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
    "table=71, priority=65, cookie=0xabc, ct_state=-trk,ip,reg5=2 "
    "actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
    "table=81, priority=90, cookie=0xabc, ct_state=-trk,ip,reg5=1 "
    "actions=ct(table=82,zone=NXM_NX_REG6[0..15])",
    "table=81, priority=90, cookie=0xabc, ct_state=-trk,ip,reg5=2 "
    "actions=ct(table=82,zone=NXM_NX_REG6[0..15])",
    "table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:01 actions=output:1",
    "table=94, priority=12, cookie=0xabc, reg6=1,dl_dst=fa:16:3e:00:00:02 actions=output:2",
    "table=94, priority=1, cookie=0xabc,  actions=NORMAL",
};

const std::vector<std::string> kBrTun = {
    "table=0, priority=1, cookie=0xdef, in_port=1 actions=resubmit(,2)",
    "table=0, priority=1, cookie=0xdef, in_port=2 actions=resubmit(,4)",
    "table=0, priority=0, cookie=0xdef,  actions=drop",
    "table=4, priority=1, cookie=0xdef, tun_id=0x64 actions=mod_vlan_vid:1,resubmit(,10)",
    "table=20, priority=2, cookie=0xdef, dl_vlan=1,dl_dst=fa:16:3e:00:00:09 actions=strip_vlan,output:2",
    "table=22, priority=1, cookie=0xdef, dl_vlan=1 actions=strip_vlan,output:2",
};

PortModel ports_model(const std::string& json_text = kPorts, TimePoint t = at(1000)) {
  Database db;
  auto st = apply_table_updates2(db, nlohmann::json::parse(json_text), true);
  EXPECT_TRUE(st) << (st ? "" : st.error().message);
  return build_port_model(db, nullptr, t, 1, true);
}

// kPorts with `from` replaced by `to` (once).
std::string edit(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

BridgeFlows bridge(const std::string& name, const std::vector<std::string>& texts) {
  BridgeFlows b;
  b.bridge = name;
  b.view_complete = true;
  b.last_change = at(1000);
  for (const auto& t : texts) b.flows.push_back(flow(t));
  return b;
}

// `base` without the flows that contain every one of `parts`, plus `extra`.
std::vector<std::string> without(const std::vector<std::string>& base, const std::vector<std::string>& parts,
                                 const std::vector<std::string>& extra = {}) {
  std::vector<std::string> out;
  for (const auto& f : base) {
    bool all = !parts.empty();
    for (const auto& p : parts) all = all && f.find(p) != std::string::npos;
    if (!all) out.push_back(f);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

LibvirtView libvirt() {
  LibvirtView v;
  v.available = true;
  v.domains.push_back({"vm-1", true, {{"tap1", "fa:16:3e:00:00:01", "port-1"}}, at(1000)});
  v.domains.push_back({"vm-2", true, {{"tap2", "fa:16:3e:00:00:02", "port-2"}}, at(1000)});
  return v;
}

struct NRun {
  RuleReport report;
  uint64_t count(const std::string& rule, const std::string& bridge = "br-int") const {
    auto it = report.counts.find({bridge, rule});
    return it == report.counts.end() ? UINT64_MAX : it->second;
  }
  // On both bridges every rule was evaluated; `rule` counts n on `on`, all else 0.
  void expect_only(const std::string& rule, uint64_t n, const std::string& on = "br-int") const {
    for (const char* b : {"br-int", "br-tun"}) {
      for (const auto& r : rule_names()) {
        EXPECT_EQ(count(r, b), r == rule && on == b ? n : 0) << "rule " << r << " on " << b;
      }
    }
    EXPECT_TRUE(report.held.empty());
    EXPECT_EQ(report.violations.size(), n);
    for (const auto& v : report.violations) {
      EXPECT_EQ(v.rule, rule) << v.subject << ": " << v.detail;
      EXPECT_EQ(v.bridge, on);
    }
  }
  const Violation& only() const { return report.violations.at(0); }
};

// Gate warmed long ago: every window has passed at t=2000.
NRun run(const std::vector<std::string>& br_int, const PortModel& p, const LibvirtView* l,
         const std::vector<std::string>& br_tun = kBrTun, RuleConfig cfg = {}) {
  RuleGate gate(cfg);
  std::vector<BridgeFlows> flows{bridge("br-int", br_int), bridge("br-tun", br_tun)};
  for (const auto& f : flows) gate.observe(f, at(1000));
  return NRun{evaluate_rules({&flows, &p, l}, gate, at(2000))};
}

TEST(NeutronRules, CleanBaselineFiresNothingOnEitherBridge) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  run(kBrInt, p, &l).expect_only("", 0);
  // Without libvirt nothing is known bound: R4 and R9 report 0, not "held".
  run(kBrInt, p, nullptr).expect_only("", 0);
}

// ---- R4 bound_port_missing_flows

TEST(NeutronRules, R4BoundPortLacksFirewallFlows) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r = run(without(kBrInt, {"table=71", "reg5=1"}), p, &l);
  r.expect_only(kBoundPortMissingFlows, 1);
  EXPECT_EQ(r.only().subject, "tap1");
  EXPECT_EQ(r.only().detail, "bound port port-1 (ofport 1, tag 1) has no firewall flow: table=71 reg5=1");

  r = run(without(kBrInt, {"table=60, priority=90", "fa:16:3e:00:00:02"}), p, &l);
  r.expect_only(kBoundPortMissingFlows, 1);
  EXPECT_EQ(r.only().detail,
            "bound port port-2 (ofport 2, tag 1) has no firewall flow: table=60 priority=90 "
            "dl_vlan=1,dl_dst=fa:16:3e:00:00:02");
}

TEST(NeutronRules, R4NearMissesUnboundOrNotRunningPorts) {
  LibvirtView l;  // vm-1 not running: tap1 is not bound to a live guest
  l.available = true;
  l.domains.push_back({"vm-1", false, {{"tap1", "fa:16:3e:00:00:01", "port-1"}}, at(1000)});
  l.domains.push_back({"vm-2", true, {{"tap2", "fa:16:3e:00:00:02", "port-2"}}, at(1000)});
  auto flows = without(kBrInt, {"table=81", "reg5=1"});
  PortModel p = ports_model();
  EXPECT_EQ(run(flows, p, &l).count(kBoundPortMissingFlows), 0u);
  // No tag: not bound yet.
  PortModel untagged = ports_model(edit(kPorts, R"("name":"tap1","tag":1,)", R"("name":"tap1",)"));
  LibvirtView all = libvirt();
  EXPECT_EQ(run(flows, untagged, &all).count(kBoundPortMissingFlows), 0u);
  // Young port (G = 60 s): the agent is still installing.
  PortModel young = ports_model(kPorts, at(1990));
  EXPECT_EQ(run(flows, young, &all).count(kBoundPortMissingFlows), 0u);
}

TEST(NeutronRules, R4HybridPortNeedsItsTable0Flow) {
  // No firewall tables: hybrid/noop driver, where table 0 in_port=P is the port's entry.
  auto hybrid = without(without(kBrInt, {"table=71"}), {"table=81"});
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  run(hybrid, p, &l).expect_only("", 0);
  NRun r = run(without(hybrid, {"table=0", "in_port=2 "}), p, &l);
  EXPECT_EQ(r.count(kBoundPortMissingFlows), 1u);
  EXPECT_EQ(r.only().detail,
            "bound port port-2 (ofport 2, tag 1) has no table 0 flow: table=0 in_port=2 resubmit");
}

// ---- R5 anti_spoof_incomplete

TEST(NeutronRules, R5Table0SendsToEmptyAntiSpoofTable) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r = run(without(kBrInt, {"table=24", "arp_spa=10.0.0.1"}), p, &l);
  r.expect_only(kAntiSpoofIncomplete, 1);
  EXPECT_EQ(r.only().subject, "table=0, priority=10, cookie=0xabc, arp,in_port=1 actions=resubmit(,24)");
  EXPECT_EQ(r.only().detail, "table 24 has no arp,in_port=1,arp_spa=... flow (spoofed traffic is dropped)");

  r = run(without(kBrInt, {"table=25", "in_port=2"}), p, &l);
  r.expect_only(kAntiSpoofIncomplete, 1);
  EXPECT_EQ(r.only().detail, "table 25 has no in_port=2,dl_src=... flow (spoofed traffic is dropped)");
}

TEST(NeutronRules, R5NearMissMissingPortIsR2s) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r =
      run(without(kBrInt, {}, {"table=0, priority=10, cookie=0xabc, arp,in_port=9 actions=resubmit(,24)"}), p,
          &l);
  r.expect_only(kMatchOnMissingOfport, 1);
}

// ---- R6 dead_vlan_drop_invalid

TEST(NeutronRules, R6DeadVlanDropWithTheWrongMask) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r = run(without(kBrInt, {"dl_vlan=4095"},
                       {"table=0, priority=65535, cookie=0xabc, vlan_tci=0x0fff/0x1fff actions=drop"}),
               p, &l);
  r.expect_only(kDeadVlanDropInvalid, 1);
  EXPECT_EQ(r.only().table, 0);
  EXPECT_EQ(r.only().priority, 65535);
  EXPECT_EQ(r.only().detail,
            "dead VLAN drop matches vlan_tci=0x0fff/0x1fff, which no tagged packet has (want dl_vlan=4095)");
}

TEST(NeutronRules, R6DeadVlanDropMissing) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r = run(without(kBrInt, {"dl_vlan=4095"}), p, &l);
  r.expect_only(kDeadVlanDropInvalid, 1);
  EXPECT_EQ(r.only().subject, "br-int");
  // The OXM spelling (vlan_vid with OFPVID_PRESENT) is the valid flow too.
  r = run(without(kBrInt, {"dl_vlan=4095"},
                  {"table=0, priority=65535, cookie=0xabc, vlan_vid=0x1fff actions=drop"}),
          p, &l);
  r.expect_only("", 0);
  // At another priority it is not the dead-VLAN drop.
  r = run(
      without(kBrInt, {"dl_vlan=4095"}, {"table=0, priority=200, cookie=0xabc, dl_vlan=4095 actions=drop"}),
      p, &l);
  EXPECT_EQ(r.count(kDeadVlanDropInvalid), 1u);
}

// ---- R7 canary_missing

TEST(NeutronRules, R7CanaryMissing) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r = run(without(kBrInt, {"table=23"}), p, &l);
  r.expect_only(kCanaryMissing, 1);
  EXPECT_EQ(r.only().table, 23);
  EXPECT_EQ(r.only().detail, "no table=23 drop flow (canary): the agent cannot detect a flow loss");
  // A canary that forwards is no canary.
  r = run(without(kBrInt, {"table=23"}, {"table=23, priority=0, cookie=0xabc,  actions=NORMAL"}), p, &l);
  EXPECT_EQ(r.count(kCanaryMissing), 1u);
}

TEST(NeutronRules, EmptyBridgeAfterVswitchdRestartIsNotJudgedByShape) {
  // vswitchd restarted: br-int and br-tun have no flows until the agent re-installs.
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleGate gate;
  std::vector<BridgeFlows> flows{bridge("br-int", kBrInt), bridge("br-tun", kBrTun)};
  for (const auto& f : flows) gate.observe(f, at(1000));
  ASSERT_TRUE(evaluate_rules({&flows, &p, &l}, gate, at(1500)).violations.empty());
  flows = {bridge("br-int", {}), bridge("br-tun", {})};
  flows[0].last_change = flows[1].last_change = at(1510);
  NRun r{evaluate_rules({&flows, &p, &l}, gate, at(1530))};
  r.expect_only("", 0);
}

// ---- R8 fail_mode_not_secure

TEST(NeutronRules, R8FailModeNotSecureOnNeutronBridges) {
  LibvirtView l = libvirt();
  PortModel p = ports_model(edit(kPorts, R"("name":"br-tun","fail_mode":"secure")", R"("name":"br-tun")"));
  NRun r = run(kBrInt, p, &l);
  r.expect_only(kFailModeNotSecure, 1, "br-tun");
  EXPECT_EQ(r.only().detail,
            "fail_mode is unset (standalone), not secure: without the agent's flows the bridge "
            "switches NORMAL");
  // A physical bridge is found through its patch port to br-int.
  std::string phys = edit(kPorts, R"("name":"patch-tun","interfaces")", R"("name":"patch-tun","interfaces")");
  phys = edit(phys, R"("options":["map",[["peer","patch-int"]]]}},
    "j1")",
              R"("options":["map",[["peer","phy-br-ex"]]]}},
    "j1")");
  phys = edit(phys, R"("b2":{)", R"("b3":{"initial":{"name":"br-ex","fail_mode":"standalone",
      "ports":["uuid","x1"]}},"b2":{)");
  phys =
      edit(phys, R"("q1":{)", R"("x1":{"initial":{"name":"phy-br-ex","interfaces":["uuid","k1"]}},"q1":{)");
  phys = edit(phys, R"("j1":{)", R"("k1":{"initial":{"name":"phy-br-ex","type":"patch","ofport":1,
          "options":["map",[["peer","patch-tun"]]]}},"j1":{)");
  PortModel pp = ports_model(phys);
  r = run(kBrInt, pp, &l);
  EXPECT_EQ(r.count(kFailModeNotSecure, "br-ex"), 1u);
  EXPECT_EQ(r.count(kFailModeNotSecure, "br-int"), 0u);
  // A bridge Neutron does not own may run standalone.
  std::string other =
      edit(kPorts, R"("b2":{)", R"("b9":{"initial":{"name":"br-other","fail_mode":"standalone"}},"b2":{)");
  EXPECT_EQ(run(kBrInt, ports_model(other), &l).count(kFailModeNotSecure, "br-other"), 0u);
}

// ---- R9 port_stuck_dead_vlan

TEST(NeutronRules, R9RunningGuestOnDeadVlan) {
  LibvirtView l = libvirt();
  PortModel p = ports_model(edit(kPorts, R"("name":"tap2","tag":1,)", R"("name":"tap2","tag":4095,)"));
  // tap2's flows are gone with its binding; tap1 keeps lvid 1.
  auto flows = without(without(without(kBrInt, {"reg5=2"}), {"in_port=2"}), {"fa:16:3e:00:00:02"});
  NRun r = run(flows, p, &l);
  r.expect_only(kPortStuckDeadVlan, 1);
  EXPECT_EQ(r.only().subject, "tap2");
  EXPECT_EQ(r.only().detail,
            "port port-2 of a running instance is on dead VLAN 4095 (never bound by the agent)");
  // Trunk [4095] without a tag is the same.
  PortModel trunk = ports_model(edit(kPorts, R"("name":"tap2","tag":1,)", R"("name":"tap2","trunks":4095,)"));
  EXPECT_EQ(run(flows, trunk, &l).count(kPortStuckDeadVlan), 1u);
  // Near-misses: the guest is not running, or the port is younger than G.
  LibvirtView stopped = l;
  stopped.domains[1].running = false;
  EXPECT_EQ(run(flows, p, &stopped).count(kPortStuckDeadVlan), 0u);
  PortModel young =
      ports_model(edit(kPorts, R"("name":"tap2","tag":1,)", R"("name":"tap2","tag":4095,)"), at(1990));
  EXPECT_EQ(run(flows, young, &l).count(kPortStuckDeadVlan), 0u);
}

// ---- R10 stale_port_block_flow

TEST(NeutronRules, R10BlockFlowLeftOnBoundPort) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r = run(without(kBrInt, {}, {"table=0, priority=2, cookie=0xabc, in_port=1 actions=drop"}), p, &l);
  r.expect_only(kStalePortBlockFlow, 1);
  EXPECT_EQ(r.only().subject, "table=0, priority=2, cookie=0xabc, in_port=1 actions=drop");
  EXPECT_EQ(r.only().detail, "drops everything from tap1 (ofport 1) although it is bound on local VLAN 1");
  // On a port that is (still) on the dead VLAN the block is right.
  PortModel dead = ports_model(edit(kPorts, R"("name":"tap1","tag":1,)", R"("name":"tap1","tag":4095,)"));
  auto flows = without(without(without(kBrInt, {"reg5=1"}), {"in_port=1"}), {"fa:16:3e:00:00:01"});
  flows.push_back("table=0, priority=2, cookie=0xabc, in_port=1 actions=drop");
  EXPECT_EQ(run(flows, dead, &l).count(kStalePortBlockFlow), 0u);
}

// ---- R11 local_vlan_inconsistent

TEST(NeutronRules, R11LocalVlanMap) {
  LibvirtView l = libvirt();
  // (a) the tag column and the agent's other_config:tag disagree.
  PortModel a = ports_model(edit(kPorts, R"(["net_uuid","net-a"],["tag","1"]]]}},
    "p2")",
                                 R"(["net_uuid","net-a"],["tag","3"]]]}},
    "p2")"));
  NRun r = run(kBrInt, a, &l);
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().subject, "tap1");
  EXPECT_EQ(r.only().detail, "(a) tag 1 but other_config:tag 3");
  // (c) two networks share lvid 1.
  PortModel c = ports_model(edit(kPorts, R"(["net_uuid","net-a"],["tag","1"]]]}},
    "p3")",
                                 R"(["net_uuid","net-b"],["tag","1"]]]}},
    "p3")"));
  r = run(kBrInt, c, &l);
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().detail, "(c) local VLAN 1 is shared by networks net-a,net-b");
  // (d) a flow uses lvid 7, which no port has.
  PortModel p = ports_model();
  r = run(without(kBrInt, {},
                  {"table=61, priority=12, cookie=0xabc, dl_dst=fa:16:3e:00:00:01,dl_vlan=7 "
                   "actions=strip_vlan,output:1"}),
          p, &l);
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().detail, "(d) uses local VLAN 7 which no port on br-int has");
  // Near-miss: the segment side of a translation flow (dl_vlan=100 -> lvid 1).
  run(without(kBrInt, {},
              {"table=0, priority=3, cookie=0xabc, in_port=3,dl_vlan=100 "
               "actions=set_field:4097->vlan_vid,resubmit(,60)"}),
      p, &l)
      .expect_only("", 0);
}

TEST(NeutronRules, R11OneNetworkOnTwoLocalVlans) {
  LibvirtView l = libvirt();
  std::string two = edit(kPorts, R"("name":"tap2","tag":1,)", R"("name":"tap2","tag":2,)");
  two = edit(two, R"(["net_uuid","net-a"],["tag","1"]]]}},
    "p3")",
             R"(["net_uuid","net-a"],["tag","2"]]]}},
    "p3")");
  auto flows = without(kBrInt, {"dl_vlan=1,dl_dst=fa:16:3e:00:00:02"},
                       {"table=60, priority=90, cookie=0xabc, dl_vlan=2,dl_dst=fa:16:3e:00:00:02 "
                        "actions=set_field:2->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)"});
  NRun r = run(flows, ports_model(two), &l);
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().subject, "net-a");
  EXPECT_EQ(r.only().detail, "(b) network net-a is on local VLANs 1,2");
}

// (e): br-tun maps segment 100 to local VLAN 1 (table 4).
TEST(NeutronRules, R11eTunnelNetworkWithoutTranslationFlows) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  run(kBrInt, p, &l).expect_only("", 0);
  NRun r = run(kBrInt, p, &l, without(kBrTun, {"table=4"}));
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().subject, "1");
  EXPECT_EQ(r.only().detail,
            "(e) local VLAN 1 (vxlan segment 100) has no br-tun table 4 tun_id=0x64 -> mod_vlan_vid:1 flow");
  // The segment's flow sets another local VLAN.
  r = run(kBrInt, p, &l,
          without(kBrTun, {"table=4"},
                  {"table=4, priority=1, cookie=0xdef, tun_id=0x64 actions=mod_vlan_vid:2,resubmit(,10)"}));
  r.expect_only(kLocalVlanInconsistent, 1);
  // Table 22's flood flow is not required: with l2population it exists only while another host has a
  // port on the network.
  run(kBrInt, p, &l, without(kBrTun, {"table=22"})).expect_only("", 0);
  // A GRE network's segment is translated in table 3.
  std::string gre = edit(kPorts, R"(["network_type","vxlan"])", R"(["network_type","gre"])");
  gre = edit(gre, R"(["network_type","vxlan"])", R"(["network_type","gre"])");
  run(kBrInt, ports_model(gre), &l,
      without(kBrTun, {"table=4"},
              {"table=3, priority=1, cookie=0xdef, tun_id=0x64 actions=mod_vlan_vid:1,resubmit(,10)"}))
      .expect_only("", 0);
  r = run(kBrInt, ports_model(gre), &l);
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().detail,
            "(e) local VLAN 1 (gre segment 100) has no br-tun table 3 tun_id=0x64 -> mod_vlan_vid:1 flow");
  // A `local` network has no translation flows to miss.
  std::string local = edit(kPorts, R"(["network_type","vxlan"])", R"(["network_type","local"])");
  local = edit(local, R"(["network_type","vxlan"])", R"(["network_type","local"])");
  run(kBrInt, ports_model(local), &l, without(kBrTun, {"table=4"})).expect_only("", 0);
  // Ports of one tag that disagree on the segment are not judged.
  std::string split = edit(kPorts, R"(["segmentation_id","100"])", R"(["segmentation_id","101"])");
  run(kBrInt, ports_model(split), &l, without(kBrTun, {"table=4"})).expect_only("", 0);
}

TEST(NeutronRules, R11eWaitsForAJudgeableTunnelBridge) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  // br-tun without the agent's flows (vswitchd restarted it empty): R14's case, not (e)'s.
  run(kBrInt, p, &l, {}).expect_only("", 0);
  // br-tun's view incomplete: (e) cannot judge, so the count is held, not zeroed.
  RuleGate gate;
  std::vector<BridgeFlows> flows{bridge("br-int", kBrInt), bridge("br-tun", without(kBrTun, {"table=4"}))};
  for (const auto& f : flows) gate.observe(f, at(1000));
  flows[1].view_complete = false;
  flows[1].incomplete_since = at(1995);
  NRun r{evaluate_rules({&flows, &p, &l}, gate, at(2000))};
  EXPECT_EQ(r.count(kLocalVlanInconsistent), UINT64_MAX);
  EXPECT_EQ(r.count(kSamePriorityOverlap), 0u);
  EXPECT_EQ(r.report.held.at("br-tun"), "flow view incomplete");
  EXPECT_TRUE(r.report.violations.empty());
  // br-tun in its restart window (a new agent cookie at 1900): held until R has passed.
  RuleGate g2;
  g2.observe(flows[0], at(1000));
  flows[1].view_complete = true;
  g2.observe(flows[1], at(1900));
  r = NRun{evaluate_rules({&flows, &p, &l}, g2, at(2000))};
  EXPECT_EQ(r.count(kLocalVlanInconsistent), UINT64_MAX);
  EXPECT_TRUE(r.report.violations.empty());
  r = NRun{evaluate_rules({&flows, &p, &l}, g2, at(2200))};
  r.expect_only(kLocalVlanInconsistent, 1);
}

// br-int patched to br-ex (int-br-ex, ofport 4 <-> phy-br-ex, ofport 1); net-a is VLAN 200 on physnet1.
std::string vlan_ports() {
  std::string s = kPorts;
  for (int i = 0; i < 2; ++i) {
    s = edit(s, R"(["network_type","vxlan"],["segmentation_id","100"])",
             R"(["network_type","vlan"],["physical_network","physnet1"],["segmentation_id","200"])");
  }
  s = edit(s, R"(["uuid","p3"]]])", R"(["uuid","p3"],["uuid","p4"]]])");
  s = edit(s, R"("b2":{)", R"("b3":{"initial":{"name":"br-ex","fail_mode":"secure",
      "ports":["uuid","x1"]}},"b2":{)");
  s = edit(s, R"("q1":{)", R"("p4":{"initial":{"name":"int-br-ex","interfaces":["uuid","i4"]}},
    "x1":{"initial":{"name":"phy-br-ex","interfaces":["uuid","k1"]}},"q1":{)");
  s = edit(s, R"("j1":{)", R"("i4":{"initial":{"name":"int-br-ex","type":"patch","ofport":4,
          "options":["map",[["peer","phy-br-ex"]]]}},
    "k1":{"initial":{"name":"phy-br-ex","type":"patch","ofport":1,
          "options":["map",[["peer","int-br-ex"]]]}},"j1":{)");
  return s;
}

const std::vector<std::string> kBrExTranslation = {
    "table=0, priority=4, cookie=0x123, in_port=1,dl_vlan=1 actions=mod_vlan_vid:200,NORMAL",
    "table=0, priority=2, cookie=0x123, in_port=1 actions=drop",
    "table=0, priority=0, cookie=0x123,  actions=NORMAL",
};
const char* kBrIntTranslation =
    "table=0, priority=3, cookie=0xabc, in_port=4,dl_vlan=200 actions=mod_vlan_vid:1,resubmit(,60)";

NRun run_vlan(const std::vector<std::string>& br_int, const std::vector<std::string>& br_ex) {
  const PortModel p = ports_model(vlan_ports());
  const LibvirtView l = libvirt();
  RuleGate gate;
  std::vector<BridgeFlows> flows{bridge("br-int", br_int), bridge("br-tun", kBrTun), bridge("br-ex", br_ex)};
  for (const auto& f : flows) gate.observe(f, at(1000));
  NRun r{evaluate_rules({&flows, &p, &l}, gate, at(2000))};
  EXPECT_EQ(r.count(kLocalVlanInconsistent, "br-ex"), 0u);
  return r;
}

TEST(NeutronRules, R11eVlanNetworkWithoutTranslationFlows) {
  const auto with_t0 = without(kBrInt, {}, {kBrIntTranslation});
  run_vlan(with_t0, kBrExTranslation).expect_only("", 0);
  NRun r = run_vlan(kBrInt, kBrExTranslation);
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().subject, "1");
  EXPECT_EQ(r.only().detail,
            "(e) local VLAN 1 (vlan segment 200) has no br-int table 0 -> mod_vlan_vid:1 flow");
  r = run_vlan(with_t0, without(kBrExTranslation, {"dl_vlan=1"}));
  r.expect_only(kLocalVlanInconsistent, 1);
  EXPECT_EQ(r.only().detail, "(e) local VLAN 1 (vlan segment 200) has no br-ex dl_vlan=1 flow");
  // br-ex without the agent's flows is not judged; br-int's half still is.
  run_vlan(with_t0, {}).expect_only("", 0);
  EXPECT_EQ(run_vlan(kBrInt, {}).count(kLocalVlanInconsistent), 1u);
}

// ---- R12 tunnel_flow_stale

TEST(NeutronRules, R12TunnelFloodsIntoPatchPort) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r =
      run(kBrInt, p, &l,
          without(kBrTun, {"table=22"},
                  {"table=22, priority=1, cookie=0xdef, dl_vlan=1 actions=strip_vlan,output:2,output:1"}));
  r.expect_only(kTunnelFlowStale, 1, "br-tun");
  EXPECT_EQ(r.only().detail, "table 22 outputs to ofport 1 which is not a tunnel");
}

TEST(NeutronRules, R12TunnelWithoutTable0Flow) {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  NRun r = run(kBrInt, p, &l, without(kBrTun, {"in_port=2"}));
  r.expect_only(kTunnelFlowStale, 1, "br-tun");
  EXPECT_EQ(r.only().subject, "vxlan-0a000002");
  EXPECT_EQ(r.only().detail,
            "tunnel vxlan-0a000002 (ofport 2, vxlan) has no table=0 in_port=2 flow: its traffic is dropped");
  // Near-miss: outputs in other tables (10: learn back to patch-int) are fine.
  run(kBrInt, p, &l, without(kBrTun, {}, {"table=10, priority=1, cookie=0xdef,  actions=output:1"}))
      .expect_only("", 0);
}

// ---- R14 mass_flow_loss

struct LossRun {
  PortModel p = ports_model();
  LibvirtView l = libvirt();
  RuleConfig cfg;
  RuleGate gate;
  explicit LossRun(RuleConfig c = {}) : cfg(c), gate(c) {}
  // Evaluates br-int with `n` extra disjoint flows at time `t` (bridge changed at t - 20).
  NRun at_time(int t, size_t n) {
    std::vector<std::string> f = kBrInt;
    for (size_t i = 0; i < n; ++i) {
      f.push_back("table=30, priority=5, cookie=0xabc, dl_src=fa:16:3e:00:01:" +
                  std::string(i < 16 ? "0" : "") + fmt::format("{:x}", i) + " actions=drop");
    }
    std::vector<BridgeFlows> flows{bridge("br-int", f), bridge("br-tun", kBrTun)};
    flows[0].last_change = flows[1].last_change = at(t - 20);
    return NRun{evaluate_rules({&flows, &p, &l}, gate, at(t))};
  }
};

TEST(NeutronRules, R14MassFlowLossAfterHoldUntilWindowPasses) {
  LossRun lr;                                        // X = 30 %, W = 60 s, T = 60 s
  lr.gate.observe(bridge("br-int", kBrInt), at(0));  // agent cookie learned long ago
  lr.gate.observe(bridge("br-tun", kBrTun), at(0));
  EXPECT_EQ(lr.at_time(1000, 40).count(kMassFlowLoss), 0u);  // 66 flows
  EXPECT_EQ(lr.at_time(1100, 40).count(kMassFlowLoss), 0u);
  // 40 of 66 flows (61 %) deleted at 1110.
  EXPECT_EQ(lr.at_time(1110, 0).count(kMassFlowLoss), 0u);
  EXPECT_EQ(lr.at_time(1169, 0).count(kMassFlowLoss), 0u);  // not yet T
  NRun r = lr.at_time(1171, 0);
  r.expect_only(kMassFlowLoss, 1);
  EXPECT_EQ(r.only().subject, "br-int");
  EXPECT_EQ(r.only().detail, "40 of 66 flows gone within 60s and not back for 60s (now 26)");
  EXPECT_EQ(lr.at_time(1229, 0).count(kMassFlowLoss), 1u);
  // W after the loss the smaller table is the new normal.
  EXPECT_EQ(lr.at_time(1232, 0).count(kMassFlowLoss), 0u);
}

TEST(NeutronRules, R14NearMissesSmallLossOrReAddedInTime) {
  LossRun lr;
  lr.gate.observe(bridge("br-int", kBrInt), at(0));
  lr.gate.observe(bridge("br-tun", kBrTun), at(0));
  lr.at_time(1000, 10);  // 36 flows
  lr.at_time(1010, 0);   // 10 of 36 = 28 %: not more than 30 %
  EXPECT_EQ(lr.at_time(1100, 0).count(kMassFlowLoss), 0u);

  LossRun restart;  // vswitchd restart: everything gone, re-installed within T
  restart.at_time(1000, 0);
  std::vector<BridgeFlows> empty{bridge("br-int", {}), bridge("br-tun", kBrTun)};
  evaluate_rules({&empty, &restart.p, &restart.l}, restart.gate, at(1010));
  restart.at_time(1030, 0);
  EXPECT_EQ(restart.at_time(1100, 0).count(kMassFlowLoss), 0u);
  EXPECT_EQ(restart.at_time(1200, 0).count(kMassFlowLoss), 0u);

  // A bridge the agent does not manage (only vswitchd's cookie-0 NORMAL flow)
  // losing its flows is not judged: setting it secure does exactly that.
  LossRun plain;
  std::vector<BridgeFlows> normal{bridge("br-int", kBrInt),
                                  bridge("br-ex", {"table=0, priority=0, cookie=0x0,  actions=NORMAL"})};
  evaluate_rules({&normal, &plain.p, &plain.l}, plain.gate, at(1000));
  normal[1].flows.clear();
  normal[1].last_change = at(1010);
  evaluate_rules({&normal, &plain.p, &plain.l}, plain.gate, at(1030));
  EXPECT_EQ(
      NRun{evaluate_rules({&normal, &plain.p, &plain.l}, plain.gate, at(1100))}.count(kMassFlowLoss, "br-ex"),
      0u);

  // Just started: no history of T yet, nothing to compare.
  LossRun fresh;
  fresh.gate.observe(bridge("br-int", kBrInt), at(0));
  fresh.gate.observe(bridge("br-tun", kBrTun), at(0));
  EXPECT_EQ(fresh.at_time(1000, 0).count(kMassFlowLoss), 0u);
}

// R14's other half: all flows of one of the agent's minor cookies (cookie_allow) gone, the total barely moved.
struct CookieLossRun : LossRun {
  explicit CookieLossRun(RuleConfig c) : LossRun(c) {  // the agent cookies learned long ago
    gate.observe(bridge("br-int", kBrInt), at(0));
    gate.observe(bridge("br-tun", kBrTun), at(0));
  }
  // br-int plus `n` flows of cookie 0x77 and `m` of 0x99 at time t (bridge changed at t - 20).
  NRun at_time(int t, size_t n, size_t m = 0) {
    std::vector<std::string> f = kBrInt;
    for (size_t i = 0; i < n + m; ++i)
      f.push_back(fmt::format("table=30, priority=5, cookie={}, dl_src=fa:16:3e:00:02:{:02x} actions=drop",
                              i < n ? "0x77" : "0x99", i));
    std::vector<BridgeFlows> flows{bridge("br-int", f), bridge("br-tun", kBrTun)};
    flows[0].last_change = flows[1].last_change = at(t - 20);
    return NRun{evaluate_rules({&flows, &p, &l}, gate, at(t))};
  }
};

RuleConfig minor_cookies() {
  RuleConfig c;
  c.cookie_allow["*"] = {0x77};
  c.cookie_allow["br-int"] = {0xabc, 0x99};  // allow-list mode on br-int: 0xabc dominant, 0x99 minor
  return c;
}

TEST(NeutronRules, R14AllFlowsOfAMinorCookieGone) {
  CookieLossRun cr(minor_cookies());  // W = 60 s, T = 60 s
  EXPECT_EQ(cr.at_time(1000, 3, 2).count(kMassFlowLoss), 0u);  // 31 flows
  // 0x77's 3 flows deleted at 1010: 3 of 31 (10 %) is no mass loss, but the whole cookie is gone.
  EXPECT_EQ(cr.at_time(1010, 0, 2).count(kMassFlowLoss), 0u);
  EXPECT_EQ(cr.at_time(1069, 0, 2).count(kMassFlowLoss), 0u);  // not yet T
  NRun r = cr.at_time(1071, 0, 2);
  r.expect_only(kMassFlowLoss, 1);
  EXPECT_EQ(r.only().subject, "br-int");
  EXPECT_EQ(r.only().detail,
            "all flows of an agent cookie gone within 60s and not back for 60s: 3 of cookie 0x77 (now 28 flows on "
            "the bridge)");
  // W after the loss it is forgotten, like the total.
  EXPECT_EQ(cr.at_time(1132, 0, 2).count(kMassFlowLoss), 0u);
}

TEST(NeutronRules, R14CookieNearMisses) {
  // Some of the cookie's flows left: not all of it.
  CookieLossRun part(minor_cookies());
  part.at_time(1000, 3, 2);
  part.at_time(1010, 1, 2);
  EXPECT_EQ(part.at_time(1100, 1, 2).count(kMassFlowLoss), 0u);

  // Re-added within T (the agent re-installed them).
  CookieLossRun back(minor_cookies());
  back.at_time(1000, 3, 2);
  back.at_time(1010, 0, 2);
  back.at_time(1040, 3, 2);
  EXPECT_EQ(back.at_time(1100, 3, 2).count(kMassFlowLoss), 0u);

  // A cookie nobody allowed (R13's foreign flows) removed: a cleanup, not a loss.
  RuleConfig only_dominant;
  only_dominant.cookie_allow["br-int"] = {0xabc};
  CookieLossRun foreign(only_dominant);
  foreign.at_time(1000, 3, 2);
  foreign.at_time(1010, 0, 0);
  EXPECT_EQ(foreign.at_time(1100, 0, 0).count(kMassFlowLoss), 0u);

  // An agent restart (a new dominant cookie) within T + W replaces every cookie: not judged.
  CookieLossRun restart(minor_cookies());
  restart.at_time(1000, 3, 2);
  std::vector<std::string> rotated;
  for (auto f : kBrInt) rotated.push_back(f.replace(f.find("0xabc"), 5, "0xabd"));
  restart.gate.observe(bridge("br-int", rotated), at(1005));
  restart.at_time(1010, 0, 2);
  EXPECT_EQ(restart.at_time(1100, 0, 2).count(kMassFlowLoss), 0u);
}

// ---- helpers

TEST(NeutronRules, VlanBitsFromTciAndVid) {
  auto m = [](const std::string& text) { return flow(text + " actions=drop").match; };
  EXPECT_EQ(exact_vlan(m("dl_vlan=4095")), 4095);
  EXPECT_EQ(exact_vlan(m("vlan_vid=0x1005")), 5);
  EXPECT_EQ(exact_vlan(m("vlan_tci=0x0fff/0x1fff")), std::nullopt);
  EXPECT_EQ(exact_vlan(m("vlan_tci=0x1000/0x1000")), std::nullopt);  // any tag
  auto b = vlan_bits(m("vlan_tci=0x0fff/0x1fff"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->value, 0x0fff);
  EXPECT_EQ(b->mask, 0x1fff);
}

}  // namespace
}  // namespace hvtel::ovsdb
