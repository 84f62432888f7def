#include "ovs/ovsdb/session.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ovs/ovsdb/client.h"
#include "ovsdb_fixtures.h"

namespace hvtel::ovsdb {
namespace {

using nlohmann::json;
using testing::at;
using testing::initial_reply;
using testing::update2;

json parse_one(const std::string& out) {
  auto j = json::parse(out);
  return j;
}

TEST(Session, SendsMonitorCondForAllColumns) {
  Session s;
  s.on_connect(at(0));
  json req = parse_one(s.take_output());
  EXPECT_EQ(req["method"], "monitor_cond");
  EXPECT_EQ(req["id"], 1);
  EXPECT_EQ(req["params"][0], "Open_vSwitch");
  EXPECT_EQ(req["params"][1], "hvtel");
  EXPECT_EQ(req["params"][2]["Interface"][0]["columns"],
            json({"name", "type", "ofport", "error", "external_ids", "options", "link_state",
                  "admin_state", "mac_in_use"}));
  EXPECT_EQ(req["params"][2]["Bridge"][0]["columns"],
            json({"name", "fail_mode", "protocols", "datapath_type", "ports", "external_ids"}));
  EXPECT_EQ(req["params"][2].size(), 4u);
}

TEST(Session, AnswersEchoWithSameParamsAndId) {
  Session s;
  s.on_connect(at(0));
  s.take_output();
  ASSERT_TRUE(s.on_bytes(R"({"method":"echo","params":["x",1],"id":"echo"})", at(1)));
  json reply = parse_one(s.take_output());
  EXPECT_EQ(reply, json::parse(R"({"id":"echo","result":["x",1],"error":null})"));
  EXPECT_EQ(s.stats().echo_replies, 1u);
}

TEST(Session, FallsBackToMonitorWhenMonitorCondIsUnknown) {
  Session s;
  s.on_connect(at(0));
  s.take_output();
  ASSERT_TRUE(s.on_bytes(R"({"id":1,"result":null,"error":"unknown method"})", at(1)));
  json req = parse_one(s.take_output());
  EXPECT_EQ(req["method"], "monitor");
  EXPECT_EQ(req["id"], 2);
  EXPECT_EQ(req["params"][2]["Port"]["columns"][0], "name");  // object, not array, per RFC 7047
  ASSERT_TRUE(s.on_bytes(R"({"id":2,"error":null,"result":{
      "Port":{"p1":{"new":{"name":"tap1","tag":["set",[]]}}}}})", at(2)));
  EXPECT_TRUE(s.synced());
  EXPECT_FALSE(s.using_monitor_cond());
  ASSERT_TRUE(s.on_bytes(R"({"id":null,"method":"update","params":["hvtel",
      {"Port":{"p1":{"new":{"name":"tap1","tag":9},"old":{"tag":["set",[]]}}}}]})", at(3)));
  EXPECT_EQ(s.db().at("Port").at("p1").at("tag").integer(), 9);
  EXPECT_EQ(s.stats().updates, 1u);
}

TEST(Session, AppliesInitialThenUpdate2) {
  Session s;
  s.on_connect(at(0));
  s.take_output();
  // Delivered in two pieces split mid-string.
  std::string reply = initial_reply();
  ASSERT_TRUE(s.on_bytes(reply.substr(0, 100), at(1)));
  EXPECT_FALSE(s.synced());
  ASSERT_TRUE(s.on_bytes(reply.substr(100), at(1)));
  EXPECT_TRUE(s.synced());
  EXPECT_TRUE(s.take_changed());
  EXPECT_FALSE(s.take_changed());
  EXPECT_EQ(s.db().at("Interface").size(), 3u);
  ASSERT_TRUE(s.on_bytes(update2(R"({"Interface":{"i2":{"modify":{"ofport":2,"error":["set",[]]}}}})"),
                         at(2)));
  EXPECT_TRUE(s.take_changed());
  EXPECT_EQ(s.db().at("Interface").at("i2").at("ofport").integer(), 2);
  EXPECT_TRUE(s.db().at("Interface").at("i2").at("error").empty());
  // Updates for another monitor id are not ours.
  ASSERT_TRUE(s.on_bytes(R"({"id":null,"method":"update2","params":["other",{"Interface":{"i2":{"delete":null}}}]})",
                         at(3)));
  EXPECT_EQ(s.db().at("Interface").count("i2"), 1u);
}

TEST(Session, MalformedInputIsAnErrorAndCounted) {
  Session s;
  s.on_connect(at(0));
  auto st = s.on_bytes(R"({"id":1,"result":{"Port":{"p1":{"initial":{"name":}}}}})", at(1));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("malformed JSON-RPC message"), std::string::npos);
  EXPECT_EQ(s.stats().parse_errors, 1u);

  s.on_connect(at(2));  // reconnect: fresh framer, next request id
  ASSERT_TRUE(s.on_bytes(initial_reply(2), at(3)));
  st = s.on_bytes(update2(R"({"Interface":{"nope":{"modify":{"ofport":3}}}})"), at(4));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("modify of an unknown row"), std::string::npos);
  EXPECT_EQ(s.stats().protocol_errors, 1u);

  Session s2;
  s2.on_connect(at(0));
  EXPECT_FALSE(s2.on_bytes(R"("just a string")", at(1)));  // framing: not an object
  Session s3;
  s3.on_connect(at(0));
  EXPECT_FALSE(s3.on_bytes(R"({"method":7})", at(1)));
  EXPECT_FALSE(s3.on_bytes(R"({"result":1})", at(1)));
  Session s4;
  s4.on_connect(at(0));
  EXPECT_FALSE(s4.on_bytes(update2("{}"), at(1)));  // update before the monitor reply
}

TEST(Session, ProbesIdleServerAndGivesUp) {
  Session s(Session::Options{std::chrono::seconds(5)});
  s.on_connect(at(0));
  s.take_output();
  ASSERT_TRUE(s.on_tick(at(4)));
  EXPECT_EQ(s.take_output(), "");
  ASSERT_TRUE(s.on_tick(at(5)));
  EXPECT_EQ(parse_one(s.take_output())["method"], "echo");
  ASSERT_TRUE(s.on_tick(at(9)));
  EXPECT_EQ(s.take_output(), "");  // one probe outstanding at a time
  ASSERT_TRUE(s.on_bytes(R"({"id":"hvtel-echo","result":[],"error":null})", at(9)));
  ASSERT_TRUE(s.on_tick(at(13)));
  ASSERT_TRUE(s.on_tick(at(14)));
  EXPECT_EQ(parse_one(s.take_output())["method"], "echo");
  auto st = s.on_tick(at(19));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("no reply from ovsdb-server"), std::string::npos);
}

// ---- Replica: session + model building + publishing ----

TEST(Replica, BuildsExactModel) {
  auto store = std::make_shared<ModelStore>();
  Replica r(store);
  std::vector<std::vector<std::string>> bridge_sets;
  r.set_bridge_callback([&](const std::vector<std::string>& b) { bridge_sets.push_back(b); });
  r.on_connect(at(0));
  EXPECT_FALSE(store->up());
  ASSERT_TRUE(r.on_bytes(initial_reply(), at(10)));
  EXPECT_TRUE(store->up());
  auto m = store->snapshot();
  ASSERT_TRUE(m->synced);
  EXPECT_EQ(m->generation, 1u);
  EXPECT_FALSE(m->is_ovn());
  ASSERT_EQ(m->bridges.size(), 1u);
  const BridgeInfo& b = m->bridges[0];
  EXPECT_EQ(b.name, "br-int");
  EXPECT_EQ(b.fail_mode, "secure");
  EXPECT_EQ(b.datapath_type, "netdev");
  EXPECT_EQ(b.protocols, (std::vector<std::string>{"OpenFlow10", "OpenFlow13"}));
  ASSERT_EQ(b.ports.size(), 3u);
  EXPECT_EQ(b.interface_count(), 3u);
  const PortInfo& p1 = b.ports[1];
  EXPECT_EQ(p1.name, "tap1");
  EXPECT_EQ(p1.tag, 1);
  EXPECT_EQ(p1.other_config.at("segmentation_id"), "100");
  const PortInfo& p2 = b.ports[2];
  EXPECT_EQ(p2.tag, 4095);
  EXPECT_EQ(p2.vlan_mode, "trunk");
  EXPECT_EQ(p2.trunks, std::vector<int64_t>{4095});

  const InterfaceInfo* i1 = m->interface_by_ofport("br-int", 1);
  ASSERT_NE(i1, nullptr);
  EXPECT_EQ(i1->name, "tap1");
  EXPECT_EQ(i1->iface_id, "port-1");
  EXPECT_EQ(i1->attached_mac, "fa:16:3e:00:00:01");  // lower-cased
  EXPECT_EQ(i1->instance_id, "vm-1");
  EXPECT_EQ(i1->iface_status, "active");
  EXPECT_EQ(i1->link_state, "up");
  EXPECT_EQ(i1->created_at, at(10));
  const InterfaceInfo* i2 = m->interface_by_iface_id("port-2");
  ASSERT_NE(i2, nullptr);
  EXPECT_EQ(i2->ofport, -1);
  EXPECT_EQ(i2->instance_id, "vm-2");  // from vm-id
  EXPECT_EQ(i2->error, "could not open network device tap2 (No such device)");
  EXPECT_EQ(m->instance_of("tap1"), "vm-1");
  EXPECT_EQ(m->instance_of("br-int"), std::nullopt);
  EXPECT_EQ(m->interface_by_ofport("br-int", -1), nullptr);
  EXPECT_EQ(m->interface_by_ofport("br-int", 65534)->name, "br-int");
  EXPECT_EQ(m->interface_by_ofport("br-tun", 1), nullptr);
  EXPECT_EQ(bridge_sets, std::vector<std::vector<std::string>>{{"br-int"}});
}

TEST(Replica, TimestampsGenerationAndReleasedOfports) {
  auto store = std::make_shared<ModelStore>();
  Replica r(store);
  int callbacks = 0;
  r.set_bridge_callback([&](const std::vector<std::string>&) { ++callbacks; });
  r.on_connect(at(0));
  ASSERT_TRUE(r.on_bytes(initial_reply(), at(10)));

  // ofport change on tap1 at t=20: ofport_changed_at moves, 1 becomes released.
  ASSERT_TRUE(r.on_bytes(update2(R"({"Interface":{"i1":{"modify":{"ofport":5}}}})"), at(20)));
  auto m = store->snapshot();
  EXPECT_EQ(m->generation, 2u);
  const InterfaceInfo* i1 = m->interface_by_name("tap1");
  EXPECT_EQ(i1->ofport, 5);
  EXPECT_EQ(i1->created_at, at(10));
  EXPECT_EQ(i1->ofport_changed_at, at(20));
  EXPECT_EQ(m->bridges[0].changed_at, at(20));
  EXPECT_EQ(m->bridges[0].released_ofports, (std::map<int64_t, TimePoint>{{1, at(20)}}));
  EXPECT_EQ(m->interface_by_name("tap2")->changed_at, at(10));

  // external_ids-only change: changed_at moves, ofport_changed_at stays.
  ASSERT_TRUE(r.on_bytes(
      update2(R"({"Interface":{"i1":{"modify":{"external_ids":["map",[["iface-status","down"]]]}}}})"),
      at(30)));
  m = store->snapshot();
  EXPECT_EQ(m->interface_by_name("tap1")->changed_at, at(30));
  EXPECT_EQ(m->interface_by_name("tap1")->ofport_changed_at, at(20));
  EXPECT_EQ(m->interface_by_name("tap1")->iface_status, "down");

  // New bridge: the bridge-set callback fires again, generation moves on.
  ASSERT_TRUE(r.on_bytes(update2(R"({"Bridge":{"b2":{"insert":{"name":"br-tun"}}}})"), at(40)));
  EXPECT_EQ(callbacks, 2);
  EXPECT_EQ(store->snapshot()->bridge_names(), (std::vector<std::string>{"br-int", "br-tun"}));
  EXPECT_EQ(store->generation(), 4u);
  EXPECT_EQ(store->stats().updates, 3u);

  // Disconnect: model kept but unsynced; resync keeps timestamps of unchanged rows.
  r.on_disconnect(at(50));
  EXPECT_FALSE(store->up());
  EXPECT_FALSE(store->snapshot()->synced);
  EXPECT_EQ(store->snapshot()->bridges.size(), 2u);
  r.on_connect(at(60));
  ASSERT_TRUE(r.on_bytes(initial_reply(2), at(70)));  // server restarted from an older db
  m = store->snapshot();
  EXPECT_TRUE(m->synced);
  EXPECT_EQ(m->synced_at, at(70));
  EXPECT_EQ(m->interface_by_name("tap1")->created_at, at(10));
  EXPECT_EQ(m->interface_by_name("tap1")->ofport, 1);
  EXPECT_EQ(m->interface_by_name("tap1")->ofport_changed_at, at(70));
  EXPECT_EQ(m->interface_by_name("tap2")->changed_at, at(10));
  EXPECT_EQ(m->bridges[0].released_ofports, (std::map<int64_t, TimePoint>{{5, at(70)}}));
  EXPECT_EQ(callbacks, 3);  // br-tun went away
  EXPECT_EQ(store->stats().connects, 2u);
  EXPECT_EQ(store->stats().disconnects, 1u);
}

TEST(Replica, OvnDetectedFromOpenVSwitchRow) {
  auto store = std::make_shared<ModelStore>();
  Replica r(store);
  r.on_connect(at(0));
  ASSERT_TRUE(r.on_bytes(R"({"id":1,"error":null,"result":{"Open_vSwitch":{"o":{"initial":{
      "external_ids":["map",[["ovn-remote","tcp:10.0.0.1:6642"]]]}}}}})", at(1)));
  EXPECT_TRUE(store->snapshot()->is_ovn());
  EXPECT_TRUE(store->snapshot()->bridges.empty());
}

}  // namespace
}  // namespace hvtel::ovsdb
