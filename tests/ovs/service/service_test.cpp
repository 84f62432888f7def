// OvsService without Open vSwitch, and its event log.
#include "ovs/service/ovs_service.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "support/exposition.h"

namespace hvtel::ovs_service {
namespace {

OvsEvent ev(OvsEvent::Kind k, const std::string& subject) {
  OvsEvent e;
  e.kind = k;
  e.bridge = "br-int";
  e.subject = subject;
  return e;
}

std::string seqs(const std::vector<OvsEvent>& v) {
  std::string s;
  for (const auto& e : v) s += (s.empty() ? "" : ",") + std::to_string(e.seq) + e.subject;
  return s;
}

TEST(EventLog, RingsAreBoundedSeparatelyAndMergedBySeq) {
  EventLog log(3);
  EXPECT_EQ(log.last_seq(), 0u);
  EXPECT_EQ(log.push(ev(OvsEvent::Kind::kDirty, "d1")), 1u);
  for (int i = 1; i <= 5; ++i) log.push(ev(OvsEvent::Kind::kFlowChange, "c" + std::to_string(i)));
  log.push(ev(OvsEvent::Kind::kClean, "d1"));
  EXPECT_EQ(log.last_seq(), 7u);
  // The change ring kept its last 3; the dirty event survived the burst.
  EXPECT_EQ(seqs(log.since(0)), "1d1,4c3,5c4,6c5,7d1");
  EXPECT_EQ(seqs(log.since(4)), "5c4,6c5,7d1");
  EXPECT_EQ(seqs(log.since(4, 2)), "5c4,6c5");
  EXPECT_EQ(seqs(log.since(7)), "");
}

std::string exposition(const OvsService& svc) {
  std::vector<prometheus::MetricFamily> all;
  for (const auto& c : svc.collectables()) {
    auto f = c->Collect();
    all.insert(all.end(), f.begin(), f.end());
  }
  return prometheus::TextSerializer().Serialize(all);
}

TEST(OvsService, WithoutOpenVswitchStaysQuietAndDown) {
  char tmpl[] = "/tmp/hvtel-noovs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  OvsServiceOptions o;
  o.rundir = tmpl;  // no db.sock, no *.mgmt
  o.evaluate_interval = std::chrono::milliseconds(20);
  o.ovsdb_backoff_min = std::chrono::milliseconds(10);
  o.ovsdb_backoff_max = std::chrono::milliseconds(50);
  OvsService svc(o);
  EXPECT_EQ(svc.options().ovsdb_socket, std::string(tmpl) + "/db.sock");
  size_t reports = 0;
  svc.set_evaluation_observer([&](const ovsdb::RuleReport& r) {
    ++reports;
    EXPECT_TRUE(r.counts.empty());
    EXPECT_TRUE(r.violations.empty());
  });
  ASSERT_TRUE(svc.start());
  EXPECT_FALSE(svc.start());  // once
  for (int i = 0; i < 500 && svc.evaluations() < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(svc.evaluations(), 5u);
  hvtel::testing::Scrape s(exposition(svc));
  EXPECT_EQ(s.value("hvtel_ovsdb_up"), 0.0);
  EXPECT_EQ(s.count("hvtel_ovs_dirty_flows"), 0u);
  EXPECT_EQ(s.count("hvtel_ovs_monitor_up"), 0u);
  EXPECT_GE(s.value("hvtel_ovs_rule_evaluations_total").value_or(0), 5.0);
  EXPECT_EQ(svc.instance_of_interface("tap0"), "");
  EXPECT_EQ(svc.last_event_seq(), 0u);
  svc.stop();
  EXPECT_GE(reports, 5u);
  // Collectables stay scrapable after stop.
  hvtel::testing::Scrape after(exposition(svc));
  EXPECT_EQ(after.value("hvtel_ovsdb_up"), 0.0);
  std::filesystem::remove_all(tmpl);
}

TEST(OvsService, InstanceOfInterfaceFallsBackToLibvirt) {
  OvsServiceOptions o;
  o.rundir = "/nonexistent-hvtel-ovs";
  OvsService svc(o);
  model::Instance a;
  a.instance_id = "vm-a";
  a.pid = 100;
  a.interfaces.push_back({"tapa", "fa:16:3e:00:00:0a", "port-a"});
  svc.set_libvirt_source([&] { return std::vector<model::Instance>{a}; });
  // No OVSDB: the evaluation caches libvirt's instances; target dev matches.
  svc.evaluate(ClockPair::now());
  EXPECT_EQ(svc.instance_of_interface("tapa"), "vm-a");
  EXPECT_EQ(svc.instance_of_interface("tapb"), "");
  // R16 needs OVSDB: nothing evaluated, nothing exported.
  EXPECT_TRUE(svc.last_report().counts.empty());
}

}  // namespace
}  // namespace hvtel::ovs_service
