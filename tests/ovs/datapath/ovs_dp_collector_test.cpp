// Golden exposition of the OVS datapath collector over a fake reader and a
// fake system directory.
#include "ovs/datapath/ovs_dp_collector.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "fakes.h"
#include "support/exposition.h"

using hvtel::ovs_dp::DatapathRef;
using hvtel::ovs_dp::NameCache;
using hvtel::ovs_dp::OvsDpCollector;
using namespace hvtel::ovs_dp::testing;

namespace {

struct OvsDpCollectorTest : ::testing::Test {
  std::shared_ptr<FakeReader> reader = std::make_shared<FakeReader>();
  FakeDirectory* dir = nullptr;
  std::shared_ptr<NameCache> names;
  bool loaded = true;

  void SetUp() override {
    auto d = std::make_unique<FakeDirectory>();
    d->interfaces = {{5, "ovs-system"}};
    d->datapaths[5] = {{0, "ovs-system"}, {2, "tap1"}, {3, "tap2"}};
    dir = d.get();
    names = std::make_shared<NameCache>(std::move(d));
    const DatapathRef sys{kNetns, 5};
    reader->up = {
        {sys, 2, HV_OVS_UPCALL_MISS, 10, 1},
        {sys, 2, HV_OVS_UPCALL_ACTION, 4, 0},
        {sys, 3, HV_OVS_UPCALL_MISS, 7, 0},
        {sys, 9, HV_OVS_UPCALL_MISS, 2, 2},  // port not in the dump
    };
    reader->flows = {
        {sys, HV_OVS_OP_NEW, true, 20},
        {sys, HV_OVS_OP_NEW, false, 3},
        {sys, HV_OVS_OP_DEL, true, 18},
    };
    reader->cnt[HV_OVS_CNT_UPCALL_MAP_FULL] = 6;
  }

  std::string text() {
    OvsDpCollector c(
        [this]() -> std::shared_ptr<const hvtel::ovs_dp::OvsDpReader> {
          return loaded ? reader : nullptr;
        },
        names, [](const std::string& iface) { return iface == "tap1" ? "inst-1" : ""; });
    return prometheus::TextSerializer().Serialize(c.Collect());
  }
};

}  // namespace

TEST_F(OvsDpCollectorTest, Golden) {
  const std::string sys = "datapath=\"ovs-system\"";
  std::string golden =
      "# HELP hvtel_ovs_upcalls_total Upcalls from the Open vSwitch kernel datapath to "
      "ovs-vswitchd, by input port and cmd (miss: no megaflow matched, action: userspace() "
      "action). miss summed over a datapath is its n_missed.\n"
      "# TYPE hvtel_ovs_upcalls_total counter\n"
      "hvtel_ovs_upcalls_total{" + sys + ",port=\"9\",instance_id=\"\",cmd=\"miss\"} 2\n"
      "hvtel_ovs_upcalls_total{" + sys + ",port=\"tap1\",instance_id=\"inst-1\",cmd=\"action\"} 4\n"
      "hvtel_ovs_upcalls_total{" + sys + ",port=\"tap1\",instance_id=\"inst-1\",cmd=\"miss\"} 10\n"
      "hvtel_ovs_upcalls_total{" + sys + ",port=\"tap2\",instance_id=\"\",cmd=\"miss\"} 7\n"
      "# HELP hvtel_ovs_upcall_failures_total Upcalls the kernel datapath could not queue to "
      "userspace (no listener, socket queue full), by input port; summed over a datapath this is "
      "its n_lost.\n"
      "# TYPE hvtel_ovs_upcall_failures_total counter\n"
      "hvtel_ovs_upcall_failures_total{" + sys + ",port=\"9\",instance_id=\"\"} 2\n"
      "hvtel_ovs_upcall_failures_total{" + sys + ",port=\"tap1\",instance_id=\"inst-1\"} 1\n"
      "hvtel_ovs_upcall_failures_total{" + sys + ",port=\"tap2\",instance_id=\"\"} 0\n"
      "# HELP hvtel_ovs_datapath_flow_changes_total Successful datapath flow-table commands "
      "(megaflow installs, action updates, deletes and flushes), by op: new, set, del.\n"
      "# TYPE hvtel_ovs_datapath_flow_changes_total counter\n"
      "hvtel_ovs_datapath_flow_changes_total{" + sys + ",op=\"del\"} 18\n"
      "hvtel_ovs_datapath_flow_changes_total{" + sys + ",op=\"new\"} 20\n"
      "hvtel_ovs_datapath_flow_changes_total{" + sys + ",op=\"set\"} 0\n"
      "# HELP hvtel_ovs_datapath_flow_change_errors_total Datapath flow-table commands that "
      "returned an error, by op: new, set, del.\n"
      "# TYPE hvtel_ovs_datapath_flow_change_errors_total counter\n"
      "hvtel_ovs_datapath_flow_change_errors_total{" + sys + ",op=\"del\"} 0\n"
      "hvtel_ovs_datapath_flow_change_errors_total{" + sys + ",op=\"new\"} 3\n"
      "hvtel_ovs_datapath_flow_change_errors_total{" + sys + ",op=\"set\"} 0\n"
      "# HELP hvtel_ovs_datapath_lost_events_total Datapath events hvtel could not count or "
      "attribute, by reason: upcall_map_full, flow_map_full, unattributed_failure.\n"
      "# TYPE hvtel_ovs_datapath_lost_events_total counter\n"
      "hvtel_ovs_datapath_lost_events_total{reason=\"upcall_map_full\"} 6\n"
      "hvtel_ovs_datapath_lost_events_total{reason=\"flow_map_full\"} 0\n"
      "hvtel_ovs_datapath_lost_events_total{reason=\"unattributed_failure\"} 0\n";
  EXPECT_EQ(text(), golden);
}

TEST_F(OvsDpCollectorTest, NothingWhileNotLoaded) {
  loaded = false;
  EXPECT_EQ(text(), "");
  EXPECT_EQ(dir->dump_calls, 0);
}

TEST_F(OvsDpCollectorTest, ScrapesDoNotDumpPorts) {
  text();
  EXPECT_EQ(dir->dump_calls, 1);  // the first scrape names the ports
  for (int i = 0; i < 5; ++i) text();
  EXPECT_EQ(dir->dump_calls, 1);  // port 9 stays unknown without a dump per scrape
}

TEST_F(OvsDpCollectorTest, KeysWithOneLabelSetAreSummed) {
  // Two datapaths in a netns the agent cannot name, same ifindex: distinct
  // series; the same datapath seen twice (a renumbered port): one series.
  reader->up = {
      {{kNetns + 1, 5}, 1, HV_OVS_UPCALL_MISS, 3, 0},
      {{kNetns + 2, 5}, 1, HV_OVS_UPCALL_MISS, 4, 0},
      {{kNetns, 5}, 2, HV_OVS_UPCALL_MISS, 5, 0},
      {{kNetns, 5}, 2, HV_OVS_UPCALL_MISS, 6, 0},
  };
  reader->flows.clear();
  hvtel::testing::Scrape s(text());
  EXPECT_EQ(s.count("hvtel_ovs_upcalls_total"), 3u);
  EXPECT_EQ(s.value("hvtel_ovs_upcalls_total", {{"datapath", "ifindex:5@netns:4026531841"}}), 3);
  EXPECT_EQ(s.value("hvtel_ovs_upcalls_total", {{"datapath", "ifindex:5@netns:4026531842"}}), 4);
  EXPECT_EQ(s.value("hvtel_ovs_upcalls_total", {{"port", "tap1"}}), 11);
  EXPECT_EQ(s.count("hvtel_ovs_datapath_flow_changes_total"), 0u);
}

TEST_F(OvsDpCollectorTest, UnreadableCountersAreLeftOutNotReportedAsZero) {
  reader->fail_counters = true;
  hvtel::testing::Scrape s(text());
  EXPECT_EQ(s.count("hvtel_ovs_datapath_lost_events_total"), 0u);  // 0 would read as a reset
  EXPECT_EQ(s.count("hvtel_ovs_upcalls_total"), 4u);                 // the rest is still served
}
