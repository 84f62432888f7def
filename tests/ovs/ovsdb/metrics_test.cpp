#include "ovs/ovsdb/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "ovs/ovsdb/client.h"
#include "ovs/rules/rules_metrics.h"
#include "ovsdb_fixtures.h"

namespace hvtel::ovsdb {
namespace {

using testing::at;

std::string render(const std::vector<prometheus::MetricFamily>& f) {
  return prometheus::TextSerializer().Serialize(f);
}

TEST(OvsdbMetrics, ExposesModelAndHealth) {
  auto store = std::make_shared<ModelStore>();
  Replica r(store);
  OvsdbCollector c(store);
  std::string before = render(c.Collect());
  EXPECT_NE(before.find("hvtel_ovsdb_up 0"), std::string::npos) << before;

  r.on_connect(at(0));
  ASSERT_TRUE(r.on_bytes(testing::initial_reply(), at(1)));
  std::string text = render(c.Collect());
  EXPECT_NE(text.find("hvtel_ovsdb_up 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hvtel_ovs_interfaces{bridge=\"br-int\"} 3\n"), std::string::npos) << text;
  // Only VIFs (iface-id or vm-uuid) get an info series: tap1 and tap2, not br-int.
  EXPECT_NE(text.find("hvtel_ovs_interface_info{bridge=\"br-int\",interface=\"tap1\",ofport=\"1\","
                      "instance_id=\"vm-1\",port_id=\"port-1\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("hvtel_ovs_interface_info{bridge=\"br-int\",interface=\"tap2\",ofport=\"-1\","
                      "instance_id=\"vm-2\",port_id=\"port-2\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(text.find("interface=\"br-int\""), std::string::npos);
  EXPECT_NE(text.find("# TYPE hvtel_ovsdb_connects_total counter\nhvtel_ovsdb_connects_total 1\n"),
            std::string::npos)
      << text;

  // A malformed message is counted and the connection is dropped.
  ASSERT_TRUE(r.on_bytes("{\"id\":", at(2)));  // incomplete: buffered
  EXPECT_FALSE(r.on_bytes("]}", at(2)));
  r.on_disconnect(at(2));
  text = render(c.Collect());
  EXPECT_NE(text.find("hvtel_ovsdb_parse_errors_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hvtel_ovsdb_disconnects_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hvtel_ovsdb_up 0\n"), std::string::npos);
  // The last known ports stay exported while reconnecting.
  EXPECT_NE(text.find("hvtel_ovs_interfaces{bridge=\"br-int\"} 3\n"), std::string::npos);
}

TEST(DirtyFlowGauge, HoldsGatedValuesAndDropsGoneBridges) {
  DirtyFlowGauge g;
  RuleReport r1;
  r1.counts[{"br-int", kOutputToMissingOfport}] = 2;
  r1.counts[{"br-tun", kOutputToMissingOfport}] = 0;
  g.update(r1, {"br-int", "br-tun"});
  EXPECT_EQ(g.value("br-int", kOutputToMissingOfport), 2u);

  RuleReport r2;  // br-int held by gating: keeps 2
  r2.held["br-int"] = "bridge not quiet for 10s";
  r2.counts[{"br-tun", kOutputToMissingOfport}] = 1;
  g.update(r2, {"br-int", "br-tun"});
  EXPECT_EQ(g.value("br-int", kOutputToMissingOfport), 2u);
  EXPECT_EQ(g.value("br-tun", kOutputToMissingOfport), 1u);
  std::string text = render(g.Collect());
  EXPECT_NE(text.find("hvtel_ovs_dirty_flows{bridge=\"br-int\",rule=\"output_to_missing_ofport\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("hvtel_ovs_dirty_flow_rules_held{bridge=\"br-int\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("hvtel_ovs_dirty_flow_rules_held{bridge=\"br-tun\"} 0\n"), std::string::npos);

  g.update(RuleReport{}, {"br-tun"});  // br-int deleted
  text = render(g.Collect());
  EXPECT_EQ(text.find("br-int"), std::string::npos) << text;
  EXPECT_EQ(g.value("br-tun", kOutputToMissingOfport), 1u);
}

}  // namespace
}  // namespace hvtel::ovsdb
