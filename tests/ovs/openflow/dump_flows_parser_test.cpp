#include <gtest/gtest.h>

#include "dump_flows_parser.h"

namespace hvtel::ovs {
namespace {

// Captured from ovs-ofctl 3.1 dump-flows --no-names, plus hand-edited variants.
constexpr const char* kDump =
    "NXST_FLOW reply (xid=0x4):\n"
    " cookie=0x0, duration=0.011s, table=0, n_packets=0, n_bytes=0, idle_age=0, "
    "priority=100,in_port=1,dl_src=fa:16:3e:00:00:01 actions=output:2\n"
    " cookie=0x0, duration=10.91s, table=0, n_packets=?, n_bytes=?, idle_age=10, priority=0 "
    "actions=NORMAL\n"
    " cookie=0x1234, duration=3s, table=1, n_packets=5, n_bytes=420, idle_timeout=60, "
    "hard_timeout=120, send_flow_rem check_overlap idle_age=1, hard_age=2, "
    "priority=200,ip,nw_src=10.0.0.0/24 actions=resubmit(,71)\n"
    " cookie=0x0, duration=0.011s, table=4, n_packets=0, n_bytes=0, idle_age=0, "
    "ct_state=-est+trk,ip actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(load:0x1->NXM_NX_CT_MARK[])),output:1\n"
    " cookie=0x0, duration=1.123456789s, table=5, n_packets=0, n_bytes=0, idle_age=1, "
    "actions=drop\n"
    "\n";

TEST(DumpFlowsParser, ParsesIdentityAndStats) {
  auto r = parse_dump_flows(kDump);
  ASSERT_TRUE(r.errors.empty()) << r.errors.front();
  ASSERT_EQ(r.flows.size(), 5u);
  EXPECT_EQ(r.flows[0].id.to_string(),
            "table=0, priority=100, cookie=0x0, in_port=1,dl_src=fa:16:3e:00:00:01 actions=output:2");
  EXPECT_EQ(r.flows[1].id.to_string(), "table=0, priority=0, cookie=0x0, actions=NORMAL");
  EXPECT_FALSE(r.flows[1].n_packets.has_value());
  EXPECT_DOUBLE_EQ(r.flows[1].duration_s, 10.91);
  const auto& f2 = r.flows[2];
  EXPECT_EQ(f2.id.to_string(),
            "table=1, priority=200, cookie=0x1234, ip,nw_src=10.0.0.0/24 actions=resubmit(,71)");
  EXPECT_EQ(f2.idle_timeout, 60);
  EXPECT_EQ(f2.hard_timeout, 120);
  EXPECT_EQ(f2.n_bytes, 420u);
  EXPECT_EQ(f2.hard_age, 2u);
  EXPECT_EQ(f2.flags, (std::vector<std::string>{"send_flow_rem", "check_overlap"}));
  // Default priority when priority= is absent; the match keeps its order.
  EXPECT_EQ(r.flows[3].id.priority, 32768);
  EXPECT_EQ(r.flows[3].id.match, "ct_state=-est+trk,ip");
  // Empty match at default priority: "idle_age=1, actions=drop".
  EXPECT_EQ(r.flows[4].id.to_string(), "table=5, priority=32768, cookie=0x0, actions=drop");
  EXPECT_NEAR(r.flows[4].duration_s, 1.123456789, 1e-9);
}

TEST(DumpFlowsParser, SplitsActionsOnTopLevelCommasOnly) {
  auto parts = split_actions(
      "load:0x1->NXM_NX_REG6[],ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:1->ct_mark)),"
      "resubmit(,71),learn(table=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])");
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[1], "ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:1->ct_mark))");
  EXPECT_EQ(parts[3], "learn(table=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])");
}

TEST(DumpFlowsParser, ReportsMalformedLines) {
  auto r = parse_dump_flows(
      " cookie=0xzz, duration=1s, table=0, n_packets=0, n_bytes=0, actions=drop\n"
      " cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, priority=70000 actions=drop\n"
      " cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, priority=1\n"
      "OFPST_FLOW reply (OF1.3) (xid=0x2):\n");
  EXPECT_EQ(r.flows.size(), 0u);
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0], "line 1: bad cookie '0xzz'");
  EXPECT_EQ(r.errors[1], "line 2: bad priority '70000'");
  EXPECT_EQ(r.errors[2], "line 3: no actions= in flow line");
}

TEST(DumpFlowsParser, RenderFlowBodyMatchesDumpSyntax) {
  EXPECT_EQ(render_flow_body(100, "in_port=1", "output:2"), "priority=100,in_port=1 actions=output:2");
  EXPECT_EQ(render_flow_body(32768, "tcp,tp_dst=80", "drop"), "tcp,tp_dst=80 actions=drop");
  EXPECT_EQ(render_flow_body(0, "", "NORMAL"), "priority=0 actions=NORMAL");
}

}  // namespace
}  // namespace hvtel::ovs
