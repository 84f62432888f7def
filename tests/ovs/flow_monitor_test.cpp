#include <fmt/core.h>
#include <gtest/gtest.h>

#include "ovs/canonical.h"
#include "ovs/flow_monitor.h"
#include "ovs_bytes.h"

namespace hvtel::ovs {
namespace {

using testbytes::B;

// Records everything the session reports.
struct RecordingSink : FlowMonitorSink {
  std::vector<std::string> events;
  void on_resync_start() override { events.push_back("resync_start"); }
  void on_flow(const FlowUpdate& u) override {
    events.push_back(fmt::format("{}{} t{} p{} c{:#x} {} actions={}{}", u.initial ? "initial " : "",
                                 flow_event_name(u.event), u.table, u.priority, u.cookie,
                                 render_match(u.match), render_actions(u.actions.actions),
                                 u.event == FlowEvent::kDeleted
                                     ? std::string(" reason=") + removed_reason_name(u.reason)
                                     : ""));
  }
  void on_resync_complete() override { events.push_back("resync_complete"); }
  void on_paused() override { events.push_back("paused"); }
  void on_resumed() override { events.push_back("resumed"); }
  void on_disconnect(const std::string& why) override { events.push_back("disconnect " + why); }
  void on_decode_error(const std::string& why) override { events.push_back("decode_error " + why); }
};

// nx_flow_update_full: in_port=<port> match, output:<out> action (or none).
Bytes update(uint16_t event, uint16_t reason, uint16_t prio, uint8_t table, uint64_t cookie,
             uint16_t in_port, std::optional<uint16_t> out) {
  B match;
  match.nxm(0, 0, false, 2).u16(in_port);  // 6 bytes -> padded to 8
  uint16_t len = static_cast<uint16_t>(24 + 8 + (out ? 8 : 0));
  B u;
  u.u16(len).u16(event).u16(reason).u16(prio).u16(0).u16(0).u16(6).u8(table).u8(0).u64(cookie);
  u.raw(match.b).pad8();
  if (out) u.u16(0).u16(8).u16(*out).u16(0);
  return u;
}

Bytes stats_reply(uint32_t xid, bool more, const Bytes& body) {
  B m;
  m.u8(1).u8(17).u16(static_cast<uint16_t>(24 + body.size())).u32(xid);
  m.u16(0xffff).u16(more ? 1 : 0).u32(0x2320).u32(2).u32(0).raw(body);
  return m;
}

Bytes nxt(uint32_t subtype) { return B().u8(1).u8(4).u16(16).u32(0).u32(0x2320).u32(subtype); }

TEST(FlowMonitorSession, HandshakeInitialSnapshotAndLiveUpdates) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  EXPECT_EQ(hex_bytes(s.take_output()), "0100001000000000" "0001000800000002");
  // Peer HELLO (OVS advertises 1.0-1.5) -> we send the monitor request.
  ASSERT_TRUE(s.feed(of::encode_hello(6, {1, 2, 3, 4, 5, 6}, 1)));
  Bytes req = s.take_output();
  EXPECT_EQ(hex_bytes(req),
            "0110002868760001" "ffff000000002320" "0000000200000000"
            "00000001001fffff" "0000ff0000000000");
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kAwaitInitial);

  const uint32_t xid = FlowMonitorSession::kMonitorXid;
  Bytes part1 = stats_reply(xid, true, update(0, 0, 100, 0, 0x5, 1, 2));
  Bytes part2 = stats_reply(xid, false, update(0, 0, 0, 3, 0, 7, 0xfffa));
  Bytes live = stats_reply(0, false,
                           B().raw(update(2, 0, 100, 0, 0x6, 1, 3)).raw(update(1, 2, 0, 3, 0, 7, {})));
  Bytes echo = B().u8(1).u8(2).u16(8).u32(0x99);
  Bytes all;
  for (const Bytes* b : {&part1, &part2, &echo, &live}) all.insert(all.end(), b->begin(), b->end());
  // Deliver in 5-byte slices to exercise reassembly.
  for (size_t off = 0; off < all.size(); off += 5) {
    ASSERT_TRUE(s.feed(ByteView(all).subspan(off, std::min<size_t>(5, all.size() - off))));
  }
  EXPECT_EQ(hex_bytes(s.take_output()), "0103000800000099");
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kStreaming);
  EXPECT_EQ(sink.events, (std::vector<std::string>{
                             "resync_start",
                             "initial added t0 p100 c0x5 in_port=1 actions=output:2",
                             "initial added t3 p0 c0x0 in_port=7 actions=NORMAL",
                             "resync_complete",
                             "modified t0 p100 c0x6 in_port=1 actions=output:3",
                             "deleted t3 p0 c0x0 in_port=7 actions=drop reason=delete",
                         }));
  EXPECT_EQ(s.counters().echo_replies, 1u);
}

TEST(FlowMonitorSession, PausedResumedAndAbbrev) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  ASSERT_TRUE(s.feed(of::encode_hello(1, {1}, 1)));
  ASSERT_TRUE(s.feed(stats_reply(FlowMonitorSession::kMonitorXid, false, {})));
  Bytes abbrev = B().u16(8).u16(3).u32(0x42);
  ASSERT_TRUE(s.feed(nxt(22)));
  ASSERT_TRUE(s.feed(stats_reply(0, false, B().raw(abbrev).raw(update(0, 0, 5, 1, 0, 2, 4)))));
  ASSERT_TRUE(s.feed(nxt(23)));
  EXPECT_EQ(sink.events, (std::vector<std::string>{"resync_start", "resync_complete", "paused",
                                                   "added t1 p5 c0x0 in_port=2 actions=output:4",
                                                   "resumed"}));
}

TEST(FlowMonitorSession, VersionMismatchAndRefusalFailTheConnection) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  auto st = s.feed(of::encode_hello(4, {4}, 1));
  ASSERT_FALSE(st);
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kFailed);

  FlowMonitorSession s2(sink);
  s2.start();
  ASSERT_TRUE(s2.feed(of::encode_hello(1, {1}, 1)));
  Bytes err = B().u8(1).u8(1).u16(12).u32(FlowMonitorSession::kMonitorXid).u16(1).u16(2);
  auto st2 = s2.feed(err);
  ASSERT_FALSE(st2);
  EXPECT_EQ(st2.error().message, "flow monitor request refused: OFPET_BAD_REQUEST code 2");
}

TEST(FlowMonitorSession, BrokenUpdateMatchIsSkippedAndCounted) {
  RecordingSink sink;
  // match_len 40 overruns a 32-byte entry.
  Bytes bad = B().u16(32).u16(0).u16(0).u16(1).u16(0).u16(0).u16(40).u8(0).u8(0).u64(0).zeros(8);
  ASSERT_TRUE(decode_flow_updates(B().raw(bad).raw(update(0, 0, 9, 0, 0, 1, 2)), false, sink));
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0], "decode_error match_len 40 overruns update of 32 bytes");
  EXPECT_EQ(sink.events[1], "added t0 p9 c0x0 in_port=1 actions=output:2");
  // An entry length that breaks the framing fails the whole body.
  EXPECT_FALSE(decode_flow_updates(B().u16(12).u16(0).u32(0), false, sink));
}

}  // namespace
}  // namespace hvtel::ovs
