// OvsService end to end: a private ovsdb-server + ovs-vswitchd (tests/ovs
// sandbox) with a Neutron-like br-int (netdev datapath, two VIF-like internal
// ports, a clean OVS-firewall flow baseline under one agent cookie). The
// service runs with short gating; everything is asserted through its
// collectors' exposition and its rule reports.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "ovs_sandbox.h"
#include "ovs/service/ovs_service.h"
#include "support/exposition.h"
#include "support/test_env.h"

namespace hvtel::ovs_service {
namespace {

using hvtel::testing::OvsSandbox;
using hvtel::testing::Scrape;
using namespace std::chrono_literals;

constexpr const char* kBridge = "br-int";

constexpr const char* kTunBridge = "br-tun";
constexpr uint64_t kMinorCookie = 0x77;

// Neutron OVS-firewall br-int, tapA = ofport 1, tapB = ofport 2, one network on local VLAN 1.
const std::vector<std::string> kBaseline = {
    "table=0,priority=65535,cookie=0xabc,dl_vlan=4095,actions=drop",
    "table=0,priority=10,cookie=0xabc,arp,in_port=1,actions=resubmit(,24)",
    "table=0,priority=10,cookie=0xabc,arp,in_port=2,actions=resubmit(,24)",
    "table=0,priority=9,cookie=0xabc,in_port=1,actions=resubmit(,25)",
    "table=0,priority=9,cookie=0xabc,in_port=2,actions=resubmit(,25)",
    "table=0,priority=0,cookie=0xabc,actions=resubmit(,60)",
    "table=23,priority=0,cookie=0xabc,actions=drop",
    "table=24,priority=2,cookie=0xabc,arp,in_port=1,arp_spa=10.0.0.1,actions=resubmit(,25)",
    "table=24,priority=2,cookie=0xabc,arp,in_port=2,arp_spa=10.0.0.2,actions=resubmit(,25)",
    "table=24,priority=0,cookie=0xabc,actions=drop",
    "table=25,priority=2,cookie=0xabc,in_port=1,dl_src=fa:16:3e:00:00:01,actions=resubmit(,60)",
    "table=25,priority=2,cookie=0xabc,in_port=2,dl_src=fa:16:3e:00:00:02,actions=resubmit(,60)",
    "table=60,priority=100,cookie=0xabc,in_port=1,actions=set_field:1->reg5,set_field:1->reg6,resubmit(,71)",
    "table=60,priority=100,cookie=0xabc,in_port=2,actions=set_field:2->reg5,set_field:1->reg6,resubmit(,71)",
    "table=60,priority=90,cookie=0xabc,dl_vlan=1,dl_dst=fa:16:3e:00:00:01,actions=set_field:1->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)",
    "table=60,priority=90,cookie=0xabc,dl_vlan=1,dl_dst=fa:16:3e:00:00:02,actions=set_field:2->reg5,set_field:1->reg6,strip_vlan,resubmit(,81)",
    "table=60,priority=3,cookie=0xabc,actions=NORMAL",
    "table=61,priority=12,cookie=0xabc,dl_dst=fa:16:3e:00:00:01,dl_vlan=1,actions=strip_vlan,output:1",
    "table=71,priority=95,cookie=0xabc,icmp6,reg5=1,in_port=1,icmp_type=136,actions=resubmit(,94)",
    "table=71,priority=95,cookie=0xabc,icmp6,reg5=2,in_port=2,icmp_type=136,actions=resubmit(,94)",
    "table=71,priority=65,cookie=0xabc,ct_state=-trk,ip,reg5=1,actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
    "table=71,priority=65,cookie=0xabc,ct_state=-trk,ip,reg5=2,actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
    "table=72,priority=70,cookie=0xabc,ct_state=+est-rel-rpl,ip,reg5=1,actions=resubmit(,73)",
    "table=72,priority=70,cookie=0xabc,ct_state=+new-est,ip,reg5=1,actions=resubmit(,73)",
    "table=72,priority=70,cookie=0xabc,ct_state=+est-rel-rpl,ip,reg5=2,actions=resubmit(,73)",
    "table=81,priority=90,cookie=0xabc,ct_state=-trk,ip,reg5=1,actions=ct(table=82,zone=NXM_NX_REG6[0..15])",
    "table=81,priority=90,cookie=0xabc,ct_state=-trk,ip,reg5=2,actions=ct(table=82,zone=NXM_NX_REG6[0..15])",
    "table=82,priority=71,cookie=0xabc,ct_state=+est-rel-rpl,ip,reg6=1,nw_src=10.0.0.0/24,actions=conjunction(10,1/2)",
    "table=82,priority=71,cookie=0xabc,ct_state=+est-rel-rpl,ip,reg5=1,actions=conjunction(10,2/2)",
    "table=82,priority=71,cookie=0xabc,ct_state=+est-rel-rpl,ip,reg5=2,actions=conjunction(10,2/2)",
    "table=94,priority=12,cookie=0xabc,reg6=1,dl_dst=fa:16:3e:00:00:01,actions=output:1",
    "table=94,priority=12,cookie=0xabc,reg6=1,dl_dst=fa:16:3e:00:00:02,actions=output:2",
    "table=94,priority=1,cookie=0xabc,actions=NORMAL",
};

// br-tun: patch-int = ofport 1, one VXLAN tunnel = ofport 2 (segment 0x64 -> local VLAN 1).
const std::vector<std::string> kTunBaseline = {
    "table=0,priority=1,cookie=0xdef,in_port=1,actions=resubmit(,2)",
    "table=0,priority=1,cookie=0xdef,in_port=2,actions=resubmit(,4)",
    "table=0,priority=0,cookie=0xdef,actions=drop",
    "table=4,priority=1,cookie=0xdef,tun_id=0x64,actions=mod_vlan_vid:1,resubmit(,10)",
    "table=10,priority=1,cookie=0xdef,actions=output:1",
    "table=22,priority=1,cookie=0xdef,dl_vlan=1,actions=strip_vlan,set_tunnel:0x64,output:2",
};

model::Instance instance(const std::string& id, const std::string& dev, const std::string& mac,
                         const std::string& port) {
  model::Instance i;
  i.instance_id = id;
  i.source = model::Source::kLibvirt;
  i.pid = 4242;  // running
  i.interfaces.push_back({dev, mac, port});
  return i;
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

class OvsServiceLive : public ::testing::Test {
 protected:
  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(OvsSandbox::available(), "needs openvswitch-switch (ovsdb-server, ovs-vswitchd)");
    ASSERT_TRUE(sb_.start());
    ASSERT_TRUE(sb_.add_bridge(kBridge));
    vsctl({"set-fail-mode", kBridge, "secure"});
    add_port("tapA", 1, "port-a", "fa:16:3e:00:00:01", "vm-a", 1);
    add_port("tapB", 2, "port-b", "fa:16:3e:00:00:02", "vm-b", 1);
    // br-tun as the agent sets it up: secure, patched to br-int, one tunnel.
    ASSERT_TRUE(sb_.add_bridge(kTunBridge));
    vsctl({"set-fail-mode", kTunBridge, "secure"});
    vsctl({"add-port", kBridge, "patch-tun", "--", "set", "Interface", "patch-tun", "type=patch",
           "options:peer=patch-int", "ofport_request=10"});
    vsctl({"add-port", kTunBridge, "patch-int", "--", "set", "Interface", "patch-int", "type=patch",
           "options:peer=patch-tun", "ofport_request=1"});
    vsctl({"add-port", kTunBridge, "vxlan-c0000202", "--", "set", "Interface", "vxlan-c0000202", "type=vxlan",
           "options:remote_ip=192.0.2.2", "options:key=flow", "ofport_request=2"});
    add_flows(kBaseline);
    add_flows(kTunBaseline, kTunBridge);
  }

  void TearDown() override {
    if (svc_) svc_->stop();
    svc_.reset();
    sb_.stop();
  }

  void vsctl(std::vector<std::string> args) {
    std::vector<std::string> argv{"ovs-vsctl", "--db=unix:" + sb_.dir() + "/db.sock", "--timeout=20"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = sb_.ovs_ok(argv);
    ASSERT_TRUE(r) << r.error().message;
  }
  void ofctl(std::vector<std::string> args) {
    std::vector<std::string> argv{"ovs-ofctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = sb_.ovs_ok(argv);
    ASSERT_TRUE(r) << r.error().message;
  }
  // `tag` > 0: bound by the agent to network net-1 (VXLAN segment 100) on that local VLAN.
  void add_port(const std::string& name, int ofport, const std::string& iface_id, const std::string& mac,
                const std::string& vm, int tag = 0) {
    std::vector<std::string> args{"add-port", kBridge, name};
    if (tag > 0) args.push_back("tag=" + std::to_string(tag));
    for (const auto& a : {"--", "set", "Interface"}) args.emplace_back(a);
    for (const auto& a : {name, std::string("type=internal"), "ofport_request=" + std::to_string(ofport),
                          "external_ids:iface-id=" + iface_id, "external_ids:attached-mac=" + mac,
                          "external_ids:vm-uuid=" + vm}) {
      args.push_back(a);
    }
    if (tag > 0) {
      for (const auto& a :
           {std::string("--"), std::string("set"), std::string("Port"), name,
            std::string("other_config:net_uuid=net-1"), std::string("other_config:network_type=vxlan"),
            std::string("other_config:segmentation_id=100"), "other_config:tag=" + std::to_string(tag)}) {
        args.push_back(a);
      }
    }
    vsctl(args);
  }
  void add_flows(const std::vector<std::string>& flows, const std::string& bridge = kBridge) {
    std::string path = sb_.dir() + "/flows.txt";
    std::ofstream f(path, std::ios::trunc);
    for (const auto& l : flows) f << l << "\n";
    f.close();
    ofctl({"add-flows", bridge, path});
  }

  void start_service() {
    OvsServiceOptions o;
    o.rundir = sb_.dir();
    o.rules.quiet = 1s;
    o.rules.port_grace = 1s;
    o.rules.restart_window = 1s;
    o.evaluate_interval = 250ms;
    o.ovsdb_backoff_min = 50ms;
    o.ovsdb_backoff_max = 500ms;
    o.monitor.min_backoff = 50ms;
    o.monitor.max_backoff = 500ms;
    o.rules.flow_loss_window = 30s;
    o.rules.flow_loss_hold = loss_hold_;
    o.rules.cookie_allow["*"] = {kMinorCookie};  // an agent extension's cookie (R13 allows it, R14 follows it)
    svc_ = std::make_unique<OvsService>(o);
    svc_->set_libvirt_source([this] {
      std::lock_guard lock(mu_);
      return instances_;
    });
    svc_->set_evaluation_observer([this](const ovsdb::RuleReport& r) {
      std::lock_guard lock(mu_);
      ++observed_;
      bool all = r.held.count(kBridge) == 0 && r.held.count(kTunBridge) == 0;
      for (const auto& rule : ovsdb::rule_names()) {
        all = all && r.counts.count({kBridge, rule}) && r.counts.count({kTunBridge, rule});
      }
      if (all) ++unheld_;
      for (const auto& [key, n] : r.counts) {
        if (key.first == kBridge || key.first == kTunBridge) {
          auto& m = max_seen_[key.first + " " + key.second];
          m = std::max(m, n);
        }
      }
      for (const auto& v : r.violations) seen_violations_.push_back(v.rule + ": " + v.subject);
    });
    ASSERT_TRUE(svc_->start());
  }

  std::string exposition() const {
    std::vector<prometheus::MetricFamily> all;
    for (const auto& c : svc_->collectables()) {
      auto f = c->Collect();
      all.insert(all.end(), f.begin(), f.end());
    }
    return prometheus::TextSerializer().Serialize(all);
  }
  double dirty(const std::string& rule) const {
    return Scrape(exposition()).value("hvtel_ovs_dirty_flows", {{"bridge", kBridge}, {"rule", rule}})
        .value_or(-1);
  }

  // Every rule was evaluated on br-int and br-tun in the last report and equals
  // `want` on br-int and `want_tun` on br-tun (0 for rules not listed).
  bool report_is(const std::map<std::string, uint64_t>& want,
                 const std::map<std::string, uint64_t>& want_tun = {}) const {
    auto rep = svc_->last_report();
    for (const auto& [bridge, w] : {std::pair{kBridge, &want}, std::pair{kTunBridge, &want_tun}}) {
      if (rep.held.count(bridge)) return false;
      for (const auto& rule : ovsdb::rule_names()) {
        auto it = rep.counts.find({bridge, rule});
        if (it == rep.counts.end()) return false;
        if (it->second != (w->count(rule) ? w->at(rule) : 0)) return false;
      }
    }
    return true;
  }
  std::string describe_report() const {
    auto rep = svc_->last_report();
    std::string s;
    for (const auto& [key, n] : rep.counts) s += key.first + "/" + key.second + "=" + std::to_string(n) + " ";
    for (const auto& [b, why] : rep.held) s += "held " + b + ": " + why + " ";
    for (const auto& v : rep.violations) s += "\n  " + v.rule + ": " + v.subject + " (" + v.detail + ")";
    return s;
  }
  // The gauge as exported, for every rule.
  void expect_gauge(const std::map<std::string, uint64_t>& want,
                    const std::map<std::string, uint64_t>& want_tun) const {
    Scrape s(exposition());
    for (const auto& [bridge, w] : {std::pair{kBridge, &want}, std::pair{kTunBridge, &want_tun}}) {
      for (const auto& rule : ovsdb::rule_names()) {
        auto n = w->count(rule) ? w->at(rule) : 0;
        EXPECT_EQ(s.value("hvtel_ovs_dirty_flows", {{"bridge", bridge}, {"rule", rule}}),
                  static_cast<double>(n))
            << "rule " << rule << " on " << bridge;
      }
      EXPECT_EQ(s.value("hvtel_ovs_dirty_flow_rules_held", {{"bridge", bridge}}), 0.0);
    }
  }
  // Waits for the report to settle on `want` and checks it holds one more evaluation.
  void expect_settles_on(const std::map<std::string, uint64_t>& want, const std::string& what,
                         const std::map<std::string, uint64_t>& want_tun = {}) {
    ASSERT_TRUE(wait_for([&] { return report_is(want, want_tun); }, 10s))
        << what << ": " << describe_report();
    auto n = svc_->evaluations();
    ASSERT_TRUE(wait_for([&] { return svc_->evaluations() >= n + 2; }, 5s));
    EXPECT_TRUE(report_is(want, want_tun)) << what << " (next evaluation): " << describe_report();
    expect_gauge(want, want_tun);
  }
  size_t dirty_events(const std::string& rule) const {
    size_t n = 0;
    for (const auto& e : svc_->events_since(0)) {
      if (e.kind == OvsEvent::Kind::kDirty && e.rule == rule) ++n;
    }
    return n;
  }

  OvsSandbox sb_;
  std::unique_ptr<OvsService> svc_;
  mutable std::mutex mu_;
  std::vector<model::Instance> instances_ = {
      instance("vm-a", "tapA", "fa:16:3e:00:00:01", "port-a"),
      instance("vm-b", "tapB", "fa:16:3e:00:00:02", "port-b")};
  uint64_t observed_ = 0;
  uint64_t unheld_ = 0;  // evaluations that ran every rule on br-int
  std::map<std::string, uint64_t> max_seen_;
  std::vector<std::string> seen_violations_;
  std::chrono::seconds loss_hold_ = 60s;  // R14's T
};

TEST_F(OvsServiceLive, CleanBaselineThenOnePlantedRuleAtATime) {
  loss_hold_ = 2s;  // R14 fires 2 s after the loss instead of 60 s
  start_service();
  ASSERT_TRUE(wait_for([&] {
    return Scrape(exposition()).value("hvtel_ovs_monitor_up", {{"bridge", kBridge}}) == 1.0;
  }, 10s));
  {
    Scrape s(exposition());
    EXPECT_EQ(s.value("hvtel_ovsdb_up"), 1.0);
    EXPECT_EQ(s.sum("hvtel_ovs_flows", {{"bridge", kBridge}}), static_cast<double>(kBaseline.size()));
    EXPECT_EQ(s.sum("hvtel_ovs_flows", {{"bridge", kTunBridge}}), static_cast<double>(kTunBaseline.size()));
  }
  expect_settles_on({}, "clean baseline");
  EXPECT_EQ(svc_->instance_of_interface("tapA"), "vm-a");
  EXPECT_EQ(svc_->instance_of_interface("tapB"), "vm-b");
  EXPECT_EQ(svc_->instance_of_interface("br-int"), "");

  struct Plant {
    const char* rule;
    std::string flow;    // add-flow text
    std::string strict;  // del-flows --strict text
  };
  const std::vector<Plant> plants = {
      {ovsdb::kOutputToMissingOfport,
       "table=94,priority=12,cookie=0xabc,reg6=1,dl_dst=fa:16:3e:00:00:09,actions=output:7",
       "table=94,priority=12,reg6=1,dl_dst=fa:16:3e:00:00:09"},
      {ovsdb::kMatchOnMissingOfport, "table=0,priority=9,cookie=0xabc,in_port=9,actions=resubmit(,25)",
       "table=0,priority=9,in_port=9"},
      {ovsdb::kOfportMacMismatch,
       "table=25,priority=2,cookie=0xabc,in_port=1,dl_src=fa:16:3e:00:00:99,actions=resubmit(,60)",
       "table=25,priority=2,in_port=1,dl_src=fa:16:3e:00:00:99"},
      {ovsdb::kForeignCookieFlows, "table=0,priority=4,cookie=0xbad,dl_type=0x88cc,actions=drop",
       "table=0,priority=4,dl_type=0x88cc"},
      {ovsdb::kSamePriorityOverlap, "table=60,priority=100,cookie=0xabc,ip,in_port=1,actions=drop",
       "table=60,priority=100,ip,in_port=1"},
  };
  for (const auto& p : plants) {
    SCOPED_TRACE(p.rule);
    ofctl({"add-flow", kBridge, p.flow});
    expect_settles_on({{p.rule, 1}}, std::string("planted ") + p.rule);
    EXPECT_EQ(dirty_events(p.rule), 1u);  // logged once, however many evaluations saw it
    EXPECT_EQ(Scrape(exposition()).value("hvtel_ovs_dirty_flow_events_total",
                                         {{"bridge", kBridge}, {"rule", p.rule}}),
              1.0);
    ofctl({"--strict", "del-flows", kBridge, p.strict});
    expect_settles_on({}, std::string("removed ") + p.rule);
  }

  // R4-R12: the Neutron agent's flow shapes and OVSDB settings, each broken
  // and repaired the way the incidents did it.
  auto add = [&](const std::string& bridge, const std::string& flow) { ofctl({"add-flow", bridge, flow}); };
  auto del = [&](const std::string& bridge, const std::string& strict) {
    ofctl({"--strict", "del-flows", bridge, strict});
  };
  struct Step {
    const char* rule;
    const char* bridge;
    std::function<void()> plant, undo;
  };
  const std::vector<Step> steps = {
      {ovsdb::kBoundPortMissingFlows, kBridge,
       [&] {
         ofctl({"del-flows", kBridge, "table=71,reg5=1"});
       },  // both of tapA's table 71 flows
       [&] {
         add(kBridge, kBaseline[18]);
         add(kBridge, kBaseline[20]);
       }},
      {ovsdb::kAntiSpoofIncomplete, kBridge,
       [&] { del(kBridge, "table=24,priority=2,arp,in_port=1,arp_spa=10.0.0.1"); },
       [&] { add(kBridge, kBaseline[7]); }},
      {ovsdb::kDeadVlanDropInvalid, kBridge,
       [&] {  // LP #1930414's shape
         del(kBridge, "table=0,priority=65535,dl_vlan=4095");
         add(kBridge, "table=0,priority=65535,cookie=0xabc,vlan_tci=0x0fff/0x1fff,actions=drop");
       },
       [&] {
         del(kBridge, "table=0,priority=65535,vlan_tci=0x0fff/0x1fff");
         add(kBridge, kBaseline[0]);
       }},
      {ovsdb::kCanaryMissing, kBridge, [&] { del(kBridge, "table=23,priority=0"); },
       [&] { add(kBridge, kBaseline[6]); }},
      // A physical bridge patched to br-int but never set secure. (Changing an
      // existing bridge's fail_mode makes vswitchd flush its flows, which
      // R14 and the shape rules would rightly report too.)
      {ovsdb::kFailModeNotSecure, "br-ex",
       [&] {
         ASSERT_TRUE(sb_.add_bridge("br-ex"));
         vsctl({"add-port", kBridge, "int-br-ex", "--", "set", "Interface", "int-br-ex", "type=patch",
                "options:peer=phy-br-ex", "ofport_request=11"});
         vsctl({"add-port", "br-ex", "phy-br-ex", "--", "set", "Interface", "phy-br-ex", "type=patch",
                "options:peer=int-br-ex"});
       },
       [&] {
         vsctl({"set-fail-mode", "br-ex", "secure"});
       }},
      {ovsdb::kPortStuckDeadVlan, kBridge,
       [&] {
         vsctl({"set", "Port", "tapA", "tag=4095"});
       },
       [&] {
         vsctl({"set", "Port", "tapA", "tag=1"});
       }},
      {ovsdb::kStalePortBlockFlow, kBridge,
       [&] { add(kBridge, "table=0,priority=2,cookie=0xabc,in_port=1,actions=drop"); },
       [&] { del(kBridge, "table=0,priority=2,in_port=1"); }},
      {ovsdb::kLocalVlanInconsistent, kBridge,
       [&] {
         vsctl({"set", "Port", "tapB", "other_config:tag=2"});
       },
       [&] {
         vsctl({"set", "Port", "tapB", "other_config:tag=1"});
       }},
      // (e): br-tun no longer maps segment 100 to local VLAN 1.
      {ovsdb::kLocalVlanInconsistent, kBridge, [&] { del(kTunBridge, "table=4,priority=1,tun_id=0x64"); },
       [&] { add(kTunBridge, kTunBaseline[3]); }},
      {ovsdb::kTunnelFlowStale, kTunBridge, [&] { del(kTunBridge, "table=0,priority=1,in_port=2"); },
       [&] { add(kTunBridge, kTunBaseline[1]); }},
  };
  ASSERT_EQ(kBaseline[18],
            "table=71,priority=95,cookie=0xabc,icmp6,reg5=1,in_port=1,icmp_type=136,actions=resubmit(,94)");
  ASSERT_EQ(kBaseline[20],
            "table=71,priority=65,cookie=0xabc,ct_state=-trk,ip,reg5=1,actions=ct(table=72,zone=NXM_NX_REG6["
            "0..15])");
  ASSERT_EQ(kBaseline[7],
            "table=24,priority=2,cookie=0xabc,arp,in_port=1,arp_spa=10.0.0.1,actions=resubmit(,25)");
  ASSERT_EQ(kTunBaseline[3],
            "table=4,priority=1,cookie=0xdef,tun_id=0x64,actions=mod_vlan_vid:1,resubmit(,10)");
  for (const auto& st : steps) {
    SCOPED_TRACE(st.rule);
    // Events of the rule so far: R11 has two steps, (a) and (e).
    const auto earlier = static_cast<size_t>(
        std::count_if(steps.data(), &st, [&](const Step& s) { return std::string(s.rule) == st.rule; }));
    const bool tun = std::string(st.bridge) == kTunBridge;
    const bool other = !tun && std::string(st.bridge) != kBridge;
    const std::map<std::string, uint64_t> one{{st.rule, 1}};
    st.plant();
    expect_settles_on(tun || other ? std::map<std::string, uint64_t>{} : one,
                      std::string("planted ") + st.rule, tun ? one : std::map<std::string, uint64_t>{});
    if (other) {
      EXPECT_TRUE(wait_for(
          [&] {
            auto c = svc_->last_report().counts;
            auto it = c.find({st.bridge, st.rule});
            return it != c.end() && it->second == 1;
          },
          10s))
          << describe_report();
      EXPECT_EQ(
          Scrape(exposition()).value("hvtel_ovs_dirty_flows", {{"bridge", st.bridge}, {"rule", st.rule}}),
          1.0);
    }
    EXPECT_EQ(dirty_events(st.rule), earlier + 1);
    EXPECT_EQ(Scrape(exposition())
                  .value("hvtel_ovs_dirty_flow_events_total", {{"bridge", st.bridge}, {"rule", st.rule}}),
              static_cast<double>(earlier + 1));
    st.undo();
    expect_settles_on({}, std::string("repaired ") + st.rule);
    if (other) {
      EXPECT_TRUE(wait_for(
          [&] {
            auto c = svc_->last_report().counts;
            auto it = c.find({st.bridge, st.rule});
            return it != c.end() && it->second == 0;
          },
          10s))
          << describe_report();
    }
  }

  // R14: 40 of br-int's 73 flows vanish and stay gone for T (2 s here).
  {
    SCOPED_TRACE(ovsdb::kMassFlowLoss);
    std::vector<std::string> extra;
    for (int i = 0; i < 40; ++i) {
      char mac[32];
      std::snprintf(mac, sizeof mac, "fa:16:3e:00:01:%02x", i);
      extra.push_back(std::string("table=30,priority=5,cookie=0xabc,dl_src=") + mac + ",actions=drop");
    }
    const double all = static_cast<double>(kBaseline.size() + extra.size());
    // The mirror holds n flows and the rules have seen it (the report before
    // that may still be the previous, unheld one).
    auto mirrored = [&](double n) {
      if (!wait_for(
              [&] {
                return Scrape(exposition()).sum("hvtel_ovs_flows", {{"bridge", kBridge}}) == n;
              },
              5s)) {
        return false;
      }
      auto evals = svc_->evaluations();
      return wait_for([&] { return svc_->evaluations() >= evals + 2; }, 5s);
    };
    add_flows(extra);
    ASSERT_TRUE(mirrored(all));
    expect_settles_on({}, "40 more flows");
    ofctl({"del-flows", kBridge, "table=30"});
    ASSERT_TRUE(mirrored(static_cast<double>(kBaseline.size())));
    expect_settles_on({{ovsdb::kMassFlowLoss, 1}}, "40 of 73 flows deleted");
    EXPECT_EQ(svc_->last_report().violations.at(0).detail,
              "40 of 73 flows gone within 30s and not back for 2s (now 33)");
    add_flows(extra);  // the agent re-installs them
    ASSERT_TRUE(mirrored(all));
    expect_settles_on({}, "flows back");

    // R14's other half: the 3 flows of the agent's minor cookie vanish (4 % of 76: no mass loss).
    std::vector<std::string> minor;
    for (int i = 0; i < 3; ++i)
      minor.push_back(fmt::format("table=30,priority=6,cookie={:#x},dl_src=fa:16:3e:00:02:{:02x},actions=drop",
                                  kMinorCookie, i));
    add_flows(minor);
    ASSERT_TRUE(mirrored(all + 3));
    expect_settles_on({}, "3 flows of the minor cookie");
    ofctl({"del-flows", kBridge, fmt::format("cookie={:#x}/-1", kMinorCookie)});
    ASSERT_TRUE(mirrored(all));
    expect_settles_on({{ovsdb::kMassFlowLoss, 1}}, "all of the minor cookie deleted");
    EXPECT_EQ(svc_->last_report().violations.at(0).detail,
              "all flows of an agent cookie gone within 30s and not back for 2s: 3 of cookie 0x77 (now 73 flows on "
              "the bridge)");
    add_flows(minor);
    ASSERT_TRUE(mirrored(all + 3));
    expect_settles_on({}, "minor cookie back");
  }

  // R16: an interface whose vm-uuid names an instance libvirt does not run.
  {
    SCOPED_TRACE(ovsdb::kVifBindingMismatch);
    add_port("tapC", 3, "port-c", "fa:16:3e:00:00:03", "vm-gone");
    expect_settles_on({{ovsdb::kVifBindingMismatch, 1}}, "orphan tapC");
    EXPECT_EQ(svc_->instance_of_interface("tapC"), "vm-gone");
    vsctl({"del-port", kBridge, "tapC"});
    expect_settles_on({}, "tapC removed");
  }
  // A domain for an interface libvirt knows about makes it no orphan: bind
  // tapC to a running instance and nothing fires.
  {
    std::lock_guard lock(mu_);
    instances_.push_back(instance("vm-c", "tapC", "fa:16:3e:00:00:03", "port-c"));
  }
  add_port("tapC", 3, "port-c", "fa:16:3e:00:00:03", "vm-c");
  expect_settles_on({}, "tapC bound to vm-c");

  // Events: one dirty and one clean event per plant, in order.
  std::vector<std::string> dirty_clean;
  for (const auto& e : svc_->events_since(0)) {
    if (e.kind != OvsEvent::Kind::kFlowChange) dirty_clean.push_back(std::string(event_kind_name(e.kind)) + " " + e.rule);
  }
  std::vector<std::string> want;
  for (const auto& p : plants) {
    want.push_back(std::string("dirty ") + p.rule);
    want.push_back(std::string("clean ") + p.rule);
  }
  for (const auto& st : steps) {
    want.push_back(std::string("dirty ") + st.rule);
    want.push_back(std::string("clean ") + st.rule);
  }
  want.push_back(std::string("dirty ") + ovsdb::kMassFlowLoss);
  want.push_back(std::string("clean ") + ovsdb::kMassFlowLoss);
  want.push_back(std::string("dirty ") + ovsdb::kMassFlowLoss);
  want.push_back(std::string("clean ") + ovsdb::kMassFlowLoss);
  want.push_back(std::string("dirty ") + ovsdb::kVifBindingMismatch);
  want.push_back(std::string("clean ") + ovsdb::kVifBindingMismatch);
  EXPECT_EQ(dirty_clean, want);

  // Mirror changes are forwarded too: the R1 plant's add and delete.
  std::vector<std::string> r1_changes;
  for (const auto& e : svc_->events_since(0)) {
    if (e.kind == OvsEvent::Kind::kFlowChange && e.subject.find("fa:16:3e:00:00:09") != std::string::npos) {
      r1_changes.push_back(std::string(ovs::change_kind_name(e.change)) + " t" + std::to_string(e.table) +
                           " " + e.reason);
    }
  }
  EXPECT_EQ(r1_changes, (std::vector<std::string>{"add t94 ", "delete t94 delete"}));
}

TEST_F(OvsServiceLive, VswitchdRestartsCauseNoFalsePositive) {
  start_service();
  expect_settles_on({}, "clean baseline");
  {
    std::lock_guard lock(mu_);
    max_seen_.clear();
    seen_violations_.clear();
    unheld_ = 0;
  }
  auto monitor_up = [&] {
    return Scrape(exposition()).value("hvtel_ovs_monitor_up", {{"bridge", kBridge}}).value_or(-1);
  };
  // Waits for an evaluation after now that ran every rule on br-int (not held).
  auto wait_evaluated = [&] {
    uint64_t n = 0;
    {
      std::lock_guard lock(mu_);
      n = unheld_;
    }
    return wait_for([&] {
      std::lock_guard lock(mu_);
      return unheld_ > n;
    }, 10s);
  };
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("restart " + std::to_string(i + 1));
    ASSERT_TRUE(sb_.stop_vswitchd(/*hard=*/true));
    ASSERT_TRUE(wait_for([&] { return monitor_up() == 0.0; }, 5s));
    ASSERT_TRUE(sb_.start_vswitchd());
    ASSERT_TRUE(wait_for([&] { return monitor_up() == 1.0; }, 10s));
    // A restarted vswitchd has no flows. Every other time the rules get to
    // run on that empty bridge before the agent re-installs its flows.
    if (i % 2 == 1) {
      ASSERT_TRUE(wait_evaluated());
      EXPECT_EQ(Scrape(exposition()).sum("hvtel_ovs_flows", {{"bridge", kBridge}}), 0.0);
      EXPECT_EQ(Scrape(exposition()).sum("hvtel_ovs_flows", {{"bridge", kTunBridge}}), 0.0);
    }
    // The agent notices the restart (canary table 23) and re-installs its flows.
    add_flows(kBaseline);
    add_flows(kTunBaseline, kTunBridge);
    ASSERT_TRUE(wait_for(
        [&] {
          Scrape s(exposition());
          return s.sum("hvtel_ovs_flows", {{"bridge", kBridge}}) == static_cast<double>(kBaseline.size()) &&
                 s.sum("hvtel_ovs_flows", {{"bridge", kTunBridge}}) ==
                     static_cast<double>(kTunBaseline.size());
        },
        5s));
    ASSERT_TRUE(wait_evaluated());
  }
  expect_settles_on({}, "after 5 restarts");
  {
    Scrape s(exposition());
    EXPECT_EQ(s.value("hvtel_ovs_monitor_resyncs_total", {{"bridge", kBridge}}), 6.0);
    EXPECT_EQ(s.value("hvtel_ovs_monitor_resyncs_total", {{"bridge", kTunBridge}}), 6.0);
    EXPECT_EQ(s.value("hvtel_ovs_monitor_up", {{"bridge", kBridge}}), 1.0);
  }
  std::lock_guard lock(mu_);
  // Every evaluation during the restarts: no rule ever counted anything, on
  // either bridge (R14 included: the flows were back well within T = 60 s).
  for (const auto& [rule, n] : max_seen_) EXPECT_EQ(n, 0u) << "rule " << rule;
  EXPECT_EQ(max_seen_.size(), 2 * ovsdb::rule_names().size());
  EXPECT_TRUE(seen_violations_.empty()) << seen_violations_.front();
  // The rules really ran during the restarts: after each re-install, and on
  // the empty bridge in restarts 2 and 4.
  EXPECT_GE(unheld_, 7u);
}

TEST_F(OvsServiceLive, PromtoolAcceptsTheCombinedExposition) {
  HV_REQUIRE(std::system("command -v promtool >/dev/null 2>&1") == 0, "needs promtool");
  start_service();
  // One rule firing, so every family has samples.
  ofctl({"add-flow", kBridge,
         "table=94,priority=12,cookie=0xabc,reg6=1,dl_dst=fa:16:3e:00:00:09,actions=output:7"});
  expect_settles_on({{ovsdb::kOutputToMissingOfport, 1}}, "planted R1");
  std::string text = exposition();
  for (const char* family :
       {"hvtel_ovs_flows", "hvtel_ovs_flow_changes_total", "hvtel_ovs_monitor_up",
        "hvtel_ovs_monitor_info", "hvtel_ovs_monitor_version_mismatches_total",
        "hvtel_ovsdb_up", "hvtel_ovs_interface_info", "hvtel_ovs_dirty_flows",
        "hvtel_ovs_dirty_flow_rules_held", "hvtel_ovs_rule_evaluations_total",
        "hvtel_ovs_dirty_flow_events_total"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  }
  // The sandbox bridge allows every OpenFlow version: the monitor speaks 1.5.
  EXPECT_EQ(Scrape(text).value("hvtel_ovs_monitor_info",
                               {{"bridge", kBridge}, {"protocol", "openflow15"}}),
            1.0);
  EXPECT_EQ(Scrape(text).value("hvtel_ovs_monitor_version_mismatches_total", {{"bridge", kBridge}}),
            0.0);
  std::string path = sb_.dir() + "/metrics.prom";
  std::ofstream(path) << text;
  std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << text;
}

}  // namespace
}  // namespace hvtel::ovs_service
