#include <fmt/core.h>
#include <gtest/gtest.h>

#include <prometheus/metric_family.h>

#include "ovs/openflow/flow_mirror.h"
#include "ovs/openflow/ovs_collector.h"
#include "match_builders.h"

namespace hvtel::ovs {
namespace {

FlowUpdate upd(FlowEvent e, uint8_t table, uint16_t prio, uint16_t in_port, uint64_t cookie,
               bool initial = false) {
  FlowUpdate u;
  u.event = e;
  u.table = table;
  u.priority = prio;
  u.cookie = cookie;
  u.initial = initial;
  u.reason = 2;
  match_set(u.match, FieldId::kInPort, in_port);
  u.has_actions = e != FlowEvent::kDeleted;
  return u;
}

struct Fixture : ::testing::Test {
  std::chrono::system_clock::time_point now{std::chrono::seconds(1000)};
  FlowMirror mirror{"br-int", [this] { return now; }};
  std::vector<std::string> changes;
  void SetUp() override {
    mirror.set_change_callback([this](const FlowChange& c) {
      changes.push_back(fmt::format("{} {} t{} {}{}", c.bridge, change_kind_name(c.kind), c.table,
                                    c.text, c.reason ? " (" + *c.reason + ")" : ""));
    });
  }
  void baseline() {
    mirror.on_resync_start();
    mirror.on_flow(upd(FlowEvent::kAdded, 0, 10, 1, 0x1, true));
    mirror.on_flow(upd(FlowEvent::kAdded, 0, 10, 2, 0x1, true));
    mirror.on_resync_complete();
  }
};

TEST_F(Fixture, BaselineReportsNothingThenLiveChangesCount) {
  EXPECT_FALSE(mirror.view_complete());
  baseline();
  EXPECT_TRUE(mirror.view_complete());
  EXPECT_TRUE(changes.empty());
  now += std::chrono::seconds(5);
  mirror.on_flow(upd(FlowEvent::kAdded, 1, 5, 3, 0x2));
  mirror.on_flow(upd(FlowEvent::kModified, 0, 10, 1, 0x9));
  mirror.on_flow(upd(FlowEvent::kDeleted, 0, 10, 2, 0x1));
  mirror.on_flow(upd(FlowEvent::kDeleted, 0, 99, 2, 0x1));  // unknown: ignored
  EXPECT_EQ(changes, (std::vector<std::string>{
                         "br-int add t1 table=1, priority=5, cookie=0x2, in_port=3 actions=drop",
                         "br-int modify t0 table=0, priority=10, cookie=0x9, in_port=1 actions=drop",
                         "br-int delete t0 table=0, priority=10, cookie=0x1, in_port=2 actions=drop (delete)",
                     }));
  auto s = mirror.snapshot();
  EXPECT_EQ(s.tables.at(0).flows, 1u);
  EXPECT_EQ(s.tables.at(1).flows, 1u);
  EXPECT_EQ(s.total_changes(ChangeKind::kAdd), 1u);
  EXPECT_EQ(s.total_changes(ChangeKind::kModify), 1u);
  EXPECT_EQ(s.total_changes(ChangeKind::kDelete), 1u);
  auto f = mirror.find(FlowKey{0, 10, "in_port=1"});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->first_seen, std::chrono::system_clock::time_point(std::chrono::seconds(1000)));
  EXPECT_EQ(f->last_change, std::chrono::system_clock::time_point(std::chrono::seconds(1005)));
}

TEST_F(Fixture, PausedMakesViewIncompleteUntilResumed) {
  baseline();
  mirror.on_paused();
  EXPECT_FALSE(mirror.view_complete());
  EXPECT_EQ(mirror.snapshot().pauses, 1u);
  mirror.on_resumed();
  EXPECT_TRUE(mirror.view_complete());
}

TEST_F(Fixture, ResyncReportsMissedChangesAndKeepsFirstSeen) {
  baseline();
  mirror.on_disconnect("connection closed");
  auto s = mirror.snapshot();
  EXPECT_FALSE(s.monitor_up);
  EXPECT_FALSE(s.view_complete);
  now += std::chrono::seconds(30);
  mirror.on_resync_start();
  mirror.on_flow(upd(FlowEvent::kAdded, 0, 10, 1, 0x1, true));  // unchanged
  mirror.on_flow(upd(FlowEvent::kAdded, 2, 10, 5, 0x1, true));  // new while away
  EXPECT_TRUE(changes.empty());  // nothing reported mid-snapshot
  mirror.on_resync_complete();
  EXPECT_EQ(changes, (std::vector<std::string>{
                         "br-int delete t0 table=0, priority=10, cookie=0x1, in_port=2 actions=drop (resync)",
                         "br-int add t2 table=2, priority=10, cookie=0x1, in_port=5 actions=drop",
                     }));
  s = mirror.snapshot();
  EXPECT_EQ(s.resyncs, 2u);
  EXPECT_TRUE(s.view_complete);
  EXPECT_EQ(s.total_flows(), 2u);
  EXPECT_EQ(s.tables.at(0).flows, 1u);
  auto kept = mirror.find(FlowKey{0, 10, "in_port=1"});
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->first_seen, std::chrono::system_clock::time_point(std::chrono::seconds(1000)));
}

Action action(ActionKind kind, std::string text, bool canonical = true) {
  Action a;
  a.kind = kind;
  a.text = std::move(text);
  a.canonical = canonical;
  a.raw = {0xde, 0xad};
  return a;
}

TEST_F(Fixture, EqualActionListsAreSharedAndTheirWireBytesDropped) {
  auto with = [](FlowUpdate u, std::vector<Action> actions) {
    u.actions.actions = std::move(actions);
    u.actions.raw = {1, 2, 3};
    return u;
  };
  const Action out1 = action(ActionKind::kOutput, "output:1");
  mirror.on_resync_start();
  mirror.on_flow(with(upd(FlowEvent::kAdded, 0, 10, 1, 0x1, true), {out1}));
  mirror.on_flow(with(upd(FlowEvent::kAdded, 0, 10, 2, 0x1, true), {out1}));
  // Same text, but a meter OpenFlow 1.0 cannot print: a list of its own.
  mirror.on_flow(with(upd(FlowEvent::kAdded, 0, 10, 3, 0x1, true),
                      {out1, action(ActionKind::kMeter, "meter:1", false)}));
  mirror.on_resync_complete();
  auto flows = mirror.flows();
  ASSERT_EQ(flows.size(), 3u);
  EXPECT_EQ(flows[0].shared_actions, flows[1].shared_actions);
  EXPECT_NE(flows[0].shared_actions, flows[2].shared_actions);
  EXPECT_EQ(flows[2].actions_text(), "output:1");
  ASSERT_EQ(flows[2].actions().actions.size(), 2u);
  EXPECT_EQ(flows[2].actions().actions[1].text, "meter:1");
  EXPECT_TRUE(flows[0].actions().raw.empty());
  EXPECT_TRUE(flows[0].actions().actions[0].raw.empty());
  // A reader's copy outlives the flow it came from.
  mirror.on_flow(upd(FlowEvent::kDeleted, 0, 10, 3, 0x1));
  mirror.on_disconnect("gone");
  mirror.on_resync_start();
  mirror.on_resync_complete();
  EXPECT_TRUE(mirror.flows().empty());
  EXPECT_EQ(flows[2].actions().actions[1].text, "meter:1");
}

struct OneMirror : MirrorSource {
  std::shared_ptr<FlowMirror> m;
  std::vector<std::shared_ptr<const FlowMirror>> mirrors() const override { return {m}; }
};

TEST(OvsFlowCollector, ExportsPerTableCountsAndChanges) {
  auto src = std::make_shared<OneMirror>();
  src->m = std::make_shared<FlowMirror>("br0");
  // Before any connection negotiated a protocol there is no info series.
  OvsFlowCollector before(src);
  auto fresh = before.Collect();
  ASSERT_EQ(fresh.size(), 7u);
  EXPECT_EQ(fresh[5].name, "hvtel_ovs_monitor_info");
  EXPECT_TRUE(fresh[5].metric.empty());
  src->m->on_protocol(MonitorProtocol::kOf14);
  src->m->on_resync_start();
  src->m->on_flow(upd(FlowEvent::kAdded, 3, 1, 1, 0, true));
  src->m->on_resync_complete();
  src->m->on_flow(upd(FlowEvent::kAdded, 3, 2, 1, 0));
  OvsFlowCollector c(src);
  auto fams = c.Collect();
  ASSERT_EQ(fams.size(), 7u);
  EXPECT_EQ(fams[0].name, "hvtel_ovs_flows");
  ASSERT_EQ(fams[0].metric.size(), 1u);
  EXPECT_EQ(fams[0].metric[0].gauge.value, 2.0);
  EXPECT_EQ(fams[0].metric[0].label[1].value, "3");
  EXPECT_EQ(fams[1].name, "hvtel_ovs_flow_changes_total");
  ASSERT_EQ(fams[1].metric.size(), 3u);
  EXPECT_EQ(fams[1].metric[0].label[1].value, "add");
  EXPECT_EQ(fams[1].metric[0].counter.value, 1.0);
  EXPECT_EQ(fams[2].name, "hvtel_ovs_monitor_up");
  EXPECT_EQ(fams[2].metric[0].gauge.value, 1.0);
  ASSERT_EQ(fams[5].metric.size(), 1u);
  const auto& info = fams[5].metric[0];
  ASSERT_EQ(info.label.size(), 2u);
  EXPECT_EQ(info.label[0].name, "bridge");
  EXPECT_EQ(info.label[0].value, "br0");
  EXPECT_EQ(info.label[1].name, "protocol");
  EXPECT_EQ(info.label[1].value, "openflow14");
  EXPECT_EQ(info.gauge.value, 1.0);
  // The last protocol stays while the monitor is down; a reconnect that
  // negotiates another one replaces the label.
  src->m->on_disconnect("gone");
  EXPECT_EQ(c.Collect()[5].metric.at(0).label[1].value, "openflow14");
  src->m->on_protocol(MonitorProtocol::kNxOf10);
  auto again = c.Collect();
  ASSERT_EQ(again[5].metric.size(), 1u);
  EXPECT_EQ(again[5].metric[0].label[1].value, "openflow10_nx");
  src->m->on_protocol(MonitorProtocol::kOnfOf13);
  EXPECT_EQ(c.Collect()[5].metric.at(0).label[1].value, "openflow13_onf");
  src->m->on_protocol(MonitorProtocol::kOf15);
  EXPECT_EQ(c.Collect()[5].metric.at(0).label[1].value, "openflow15");
  // A bridge allowing no version we offer: counted per failed connection.
  EXPECT_EQ(again[6].name, "hvtel_ovs_monitor_version_mismatches_total");
  ASSERT_EQ(again[6].metric.size(), 1u);
  EXPECT_EQ(again[6].metric[0].counter.value, 0.0);
  src->m->on_version_mismatch("no common OpenFlow version");
  src->m->on_version_mismatch("no common OpenFlow version");
  EXPECT_EQ(c.Collect()[6].metric.at(0).counter.value, 2.0);
}

}  // namespace
}  // namespace hvtel::ovs
