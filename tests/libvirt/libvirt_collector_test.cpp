#include "libvirt/libvirt_collector.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace hvtel::libvirt {
namespace {

class FakeSource : public SnapshotSource {
 public:
  SnapshotPtr snapshot() const override { return snap; }
  bool up() const override { return is_up; }
  ClientCounters counters() const override { return c; }

  std::shared_ptr<Snapshot> snap = std::make_shared<Snapshot>();
  bool is_up = true;
  ClientCounters c;
};

std::string expose(const prometheus::Collectable& col) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, col.Collect());
  return out.str();
}

model::Instance nova_instance() {
  model::Instance i;
  i.instance_id = "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10";
  i.instance_name = "billing \"db\"\\02\nsecond line";
  i.domain = "instance-0001c3f2";
  i.source = model::Source::kLibvirt;
  i.vcpus = 4;
  model::NovaInfo n;
  n.flavor_name = "c4.m16.pinned";
  n.project_id = "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5";
  n.project_name = "O'Brien \"prod\"";
  n.user_id = "5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d";
  n.user_name = "svc\\billing";
  i.nova = n;
  return i;
}

TEST(LibvirtCollector, ExpositionWithEscapedLabels) {
  FakeSource src;
  src.snap->instances.push_back(nova_instance());
  model::Instance plain;
  plain.instance_id = "0e2a6c1a-4b6f-4c8e-9a0d-6a7b8c9d0e1f";
  plain.instance_name = plain.domain = "plain-vm";
  plain.vcpus = 1;
  src.snap->instances.push_back(plain);
  src.c.parse_errors = 3;
  src.c.metadata_errors = 1;
  src.c.connect_failures = 2;
  src.c.events_lifecycle = 7;
  src.c.events_tunable = 1;
  src.c.events_metadata = 2;
  src.c.reconnects = 5;
  src.c.resyncs = 6;

  LibvirtCollector col(src);
  const std::string text = expose(col);
  const std::string want =
      "# HELP hvtel_instance_info Instance identity (libvirt and Nova metadata, else the VMM's "
      "command line); join on instance_id.\n"
      "# TYPE hvtel_instance_info gauge\n"
      "hvtel_instance_info{instance_id=\"3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10\","
      "instance_name=\"billing \\\"db\\\"\\\\02\\nsecond line\",domain=\"instance-0001c3f2\","
      "flavor=\"c4.m16.pinned\",project_id=\"0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5\","
      "project_name=\"O'Brien \\\"prod\\\"\",user_id=\"5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d\","
      "user_name=\"svc\\\\billing\"} 1\n"
      "hvtel_instance_info{instance_id=\"0e2a6c1a-4b6f-4c8e-9a0d-6a7b8c9d0e1f\","
      "instance_name=\"plain-vm\",domain=\"plain-vm\",flavor=\"\",project_id=\"\","
      "project_name=\"\",user_id=\"\",user_name=\"\"} 1\n"
      "# HELP hvtel_instance_vcpus Online vCPUs configured for the instance.\n"
      "# TYPE hvtel_instance_vcpus gauge\n"
      "hvtel_instance_vcpus{instance_id=\"3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10\"} 4\n"
      "hvtel_instance_vcpus{instance_id=\"0e2a6c1a-4b6f-4c8e-9a0d-6a7b8c9d0e1f\"} 1\n"
      "# HELP hvtel_libvirt_up 1 while the read-only libvirt connection is open.\n"
      "# TYPE hvtel_libvirt_up gauge\n"
      "hvtel_libvirt_up 1\n"
      "# HELP hvtel_libvirt_errors_total libvirt inventory problems by kind (parse, metadata, "
      "thread_map, rpc, connect).\n"
      "# TYPE hvtel_libvirt_errors_total counter\n"
      "hvtel_libvirt_errors_total{kind=\"parse\"} 3\n"
      "hvtel_libvirt_errors_total{kind=\"metadata\"} 1\n"
      "hvtel_libvirt_errors_total{kind=\"thread_map\"} 0\n"
      "hvtel_libvirt_errors_total{kind=\"rpc\"} 0\n"
      "hvtel_libvirt_errors_total{kind=\"connect\"} 2\n"
      "# HELP hvtel_libvirt_events_total libvirt domain events received, by type.\n"
      "# TYPE hvtel_libvirt_events_total counter\n"
      "hvtel_libvirt_events_total{type=\"lifecycle\"} 7\n"
      "hvtel_libvirt_events_total{type=\"tunable\"} 1\n"
      "hvtel_libvirt_events_total{type=\"metadata_change\"} 2\n"
      "# HELP hvtel_libvirt_reconnects_total Successful reconnections after the libvirt "
      "connection was lost.\n"
      "# TYPE hvtel_libvirt_reconnects_total counter\n"
      "hvtel_libvirt_reconnects_total 5\n"
      "# HELP hvtel_libvirt_resyncs_total Full libvirt inventories.\n"
      "# TYPE hvtel_libvirt_resyncs_total counter\n"
      "hvtel_libvirt_resyncs_total 6\n";
  EXPECT_EQ(text, want);
}

model::Instance local(const char* id, const char* name) {
  model::Instance i;
  i.instance_id = id;
  i.instance_name = name;
  return i;
}

// A VMM libvirt does not run (procfs discovery) still gets its info series,
// after the libvirt ones; one that libvirt knows is not repeated.
TEST(LibvirtCollector, LocalInstancesJoinTheInfoSeriesOnce) {
  FakeSource src;
  src.snap->instances.push_back(nova_instance());
  LibvirtCollector col(src);
  col.set_local_instances([] {
    return std::vector<model::Instance>{local("3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10", "dup"),
                                        local("pid-4242", "guest-7"),
                                        local("pid-4242", "again")};
  });
  auto fams = col.Collect();
  ASSERT_EQ(fams[0].name, "hvtel_instance_info");
  ASSERT_EQ(fams[0].metric.size(), 2u);
  EXPECT_EQ(fams[0].metric[0].label[1].value, "billing \"db\"\\02\nsecond line");
  const auto& l = fams[0].metric[1].label;
  ASSERT_EQ(l.size(), 8u);
  EXPECT_EQ(l[0].name, "instance_id");
  EXPECT_EQ(l[0].value, "pid-4242");
  EXPECT_EQ(l[1].value, "guest-7");
  for (size_t k = 2; k < l.size(); ++k) EXPECT_EQ(l[k].value, "") << l[k].name;
  // hvtel_instance_vcpus stays libvirt's configured count: one series.
  EXPECT_EQ(fams[1].metric.size(), 1u);
}

TEST(InstanceInfoCollector, WithoutLibvirtOnlyLocalInstances) {
  InstanceInfoCollector col([] { return std::vector<model::Instance>{local("U-1", "web")}; });
  const std::string want =
      "# HELP hvtel_instance_info Instance identity (libvirt and Nova metadata, else the VMM's "
      "command line); join on instance_id.\n"
      "# TYPE hvtel_instance_info gauge\n"
      "hvtel_instance_info{instance_id=\"U-1\",instance_name=\"web\",domain=\"\",flavor=\"\","
      "project_id=\"\",project_name=\"\",user_id=\"\",user_name=\"\"} 1\n";
  EXPECT_EQ(expose(col), want);
}

TEST(LibvirtCollector, DownAndEmpty) {
  FakeSource src;
  src.is_up = false;
  LibvirtCollector col(src);
  auto fams = col.Collect();
  ASSERT_EQ(fams.size(), 7u);
  EXPECT_EQ(fams[0].name, "hvtel_instance_info");
  EXPECT_TRUE(fams[0].metric.empty());
  EXPECT_EQ(fams[2].name, "hvtel_libvirt_up");
  EXPECT_EQ(fams[2].metric.at(0).gauge.value, 0.0);
  // Error and event series exist from the start (at 0), so rate() works.
  EXPECT_EQ(fams[3].metric.size(), 5u);
  EXPECT_EQ(fams[4].metric.size(), 3u);
}

}  // namespace
}  // namespace hvtel::libvirt
