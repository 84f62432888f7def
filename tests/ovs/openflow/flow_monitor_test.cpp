#include <fmt/core.h>
#include <gtest/gtest.h>

#include "ovs/openflow/canonical.h"
#include "ovs/openflow/flow_monitor.h"
#include "ovs_bytes.h"

namespace hvtel::ovs {
namespace {

using testbytes::B;

// Records everything the session reports.
struct RecordingSink : FlowMonitorSink {
  std::vector<std::string> events;
  void on_protocol(MonitorProtocol p) override {
    events.push_back(std::string("protocol ") + monitor_protocol_name(p));
  }
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
  void on_version_mismatch(const std::string& why) override {
    events.push_back("version_mismatch " + why);
  }
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

// Feeds the concatenated messages in 'slice'-byte pieces to exercise reassembly.
::testing::AssertionResult feed_sliced(FlowMonitorSession& s, const std::vector<Bytes>& msgs,
                                       size_t slice) {
  Bytes all;
  for (const Bytes& b : msgs) all.insert(all.end(), b.begin(), b.end());
  for (size_t off = 0; off < all.size(); off += slice) {
    auto st = s.feed(ByteView(all).subspan(off, std::min(slice, all.size() - off)));
    if (!st) return ::testing::AssertionFailure() << st.error().message;
  }
  return ::testing::AssertionSuccess();
}

TEST(FlowMonitorSession, HandshakeInitialSnapshotAndLiveUpdates) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  // We offer OpenFlow 1.0, 1.3, 1.4 and 1.5 (bitmap bits 1, 4, 5, 6).
  EXPECT_EQ(hex_bytes(s.take_output()), "0600001000000000" "0001000800000072");
  // A bridge with protocols=OpenFlow10 answers a plain 1.0 HELLO: Nicira monitor.
  ASSERT_TRUE(s.feed(B().u8(1).u8(0).u16(8).u32(0x8e)));
  Bytes req = s.take_output();
  EXPECT_EQ(hex_bytes(req),
            "0110002868760001" "ffff000000002320" "0000000200000000"
            "00000001001fffff" "0000ff0000000000");
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kAwaitInitial);
  EXPECT_EQ(s.protocol(), MonitorProtocol::kNxOf10);
  EXPECT_EQ(s.version(), 1);

  const uint32_t xid = FlowMonitorSession::kMonitorXid;
  Bytes part1 = stats_reply(xid, true, update(0, 0, 100, 0, 0x5, 1, 2));
  Bytes part2 = stats_reply(xid, false, update(0, 0, 0, 3, 0, 7, 0xfffa));
  Bytes live = stats_reply(0, false,
                           B().raw(update(2, 0, 100, 0, 0x6, 1, 3)).raw(update(1, 2, 0, 3, 0, 7, {})));
  Bytes echo = B().u8(1).u8(2).u16(8).u32(0x99);
  ASSERT_TRUE(feed_sliced(s, {part1, part2, echo, live}, 5));
  EXPECT_EQ(hex_bytes(s.take_output()), "0103000800000099");
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kStreaming);
  EXPECT_EQ(sink.events, (std::vector<std::string>{
                             "protocol openflow10_nx",
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
  EXPECT_EQ(sink.events, (std::vector<std::string>{"protocol openflow10_nx", "resync_start",
                                                   "resync_complete", "paused",
                                                   "added t1 p5 c0x0 in_port=2 actions=output:4",
                                                   "resumed"}));
}

TEST(FlowMonitorSession, VersionMismatchAndRefusalFailTheConnection) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  (void)s.take_output();
  auto st = s.feed(of::encode_hello(3, {2, 3}, 1));  // protocols=OpenFlow11,OpenFlow12
  ASSERT_FALSE(st);
  const std::string why =
      "no common OpenFlow version: we offer 1.0, 1.3, 1.4, 1.5, the bridge allows 1.1, 1.2 "
      "(hello version 3, bitmap 0xc); add one of ours to the bridge's protocols column";
  EXPECT_EQ(st.error().message, why);
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kFailed);
  EXPECT_TRUE(s.version_mismatch());
  EXPECT_EQ(s.refused_version(), 0);
  // OFPET_HELLO_FAILED / OFPHFC_INCOMPATIBLE in the peer's (lower) version.
  EXPECT_EQ(hex_bytes(s.take_output()), "0301000c00000000" "00000000");
  EXPECT_EQ(sink.events, (std::vector<std::string>{"version_mismatch " + why}));

  sink.events.clear();
  FlowMonitorSession s2(sink);
  s2.start();
  ASSERT_TRUE(s2.feed(of::encode_hello(1, {1}, 1)));
  Bytes err = B().u8(1).u8(1).u16(12).u32(FlowMonitorSession::kMonitorXid).u16(1).u16(2);
  auto st2 = s2.feed(err);
  ASSERT_FALSE(st2);
  EXPECT_EQ(st2.error().message,
            "flow monitor request over openflow10_nx refused: OFPET_BAD_REQUEST code 2");
  EXPECT_FALSE(s2.version_mismatch());
  EXPECT_EQ(s2.refused_version(), 1);
}

// After the switch refused the 1.3 monitor, the client offers the versions
// below; a bridge allowing 1.0 and 1.3 is then monitored over 1.0.
TEST(FlowMonitorSession, OfferedVersionsLeaveOutRefusedOnes) {
  RecordingSink sink;
  FlowMonitorSession s(sink, kMonitorVersions & ~(1u << of::kVersion13));
  s.start();
  EXPECT_EQ(hex_bytes(s.take_output()), "0600001000000000" "0001000800000062");
  ASSERT_TRUE(s.feed(of::encode_hello(4, {1, 4}, 1)));
  EXPECT_EQ(s.protocol(), MonitorProtocol::kNxOf10);
  // Without the restriction the same bridge gets the ONF monitor.
  FlowMonitorSession s2(sink);
  s2.start();
  ASSERT_TRUE(s2.feed(of::encode_hello(4, {1, 4}, 1)));
  EXPECT_EQ(s2.protocol(), MonitorProtocol::kOnfOf13);
  EXPECT_EQ(monitor_protocol_for(of::kVersion15), MonitorProtocol::kOf15);
  EXPECT_EQ(monitor_protocol_for(2), MonitorProtocol::kNone);
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

namespace hvtel::ovs {
namespace {

using testbytes::B;

// OpenFlow 1.4 fixtures, laid out as ovs-vswitchd 3.1 sends them.

// ofp_flow_update_full: in_port=<port> OXM match, apply_actions(output:<out>) or no instructions.
Bytes update14(uint16_t event, uint8_t reason, uint16_t prio, uint8_t table, uint64_t cookie,
               uint32_t in_port, std::optional<uint32_t> out) {
  B match;
  match.u16(1).u16(12).oxm(0, false, 4).u32(in_port).pad8();  // 12 -> 16
  B u;
  u.u16(static_cast<uint16_t>(24 + 16 + (out ? 24 : 0))).u16(event).u8(table).u8(reason);
  u.u16(0).u16(0).u16(prio).zeros(4).u64(cookie).raw(match.b);
  if (out) u.u16(4).u16(24).zeros(4).u16(0).u16(16).u32(*out).u16(0).zeros(6);
  return u;
}

Bytes mp_reply(uint32_t xid, bool more, const Bytes& body) {
  B m;
  m.u8(5).u8(19).u16(static_cast<uint16_t>(16 + body.size())).u32(xid);
  m.u16(16).u16(more ? 1 : 0).u32(0).raw(body);
  return m;
}

Bytes paused14(uint16_t event) { return B().u16(8).u16(event).zeros(4); }

// A session past the OpenFlow 1.4 handshake (a bridge allowing 1.0-1.4 sends
// a plain 1.4 HELLO).
void handshake14(FlowMonitorSession& s) {
  s.start();
  (void)s.take_output();
  ASSERT_TRUE(s.feed(B().u8(5).u8(0).u16(8).u32(0x63)));
}

TEST(FlowMonitorSession14, HandshakeInitialSnapshotAndLiveUpdates) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  EXPECT_EQ(hex_bytes(s.take_output()), "0600001000000000" "0001000800000072");
  // A bridge allowing 1.0-1.4 (contiguous) sends a plain 1.4 HELLO.
  ASSERT_TRUE(s.feed(B().u8(5).u8(0).u16(8).u32(0x63)));
  EXPECT_EQ(s.protocol(), MonitorProtocol::kOf14);
  EXPECT_EQ(s.version(), 5);
  // OFPMP_FLOW_MONITOR request: id 1, out_port ANY, out_group ANY, flags
  // INITIAL|ADD|REMOVED|MODIFY|INSTRUCTIONS, all tables, ADD, empty OXM match.
  EXPECT_EQ(hex_bytes(s.take_output()),
            "0512002868760001" "0010000000000000" "00000001ffffffff"
            "ffffffff001fff00" "0001000400000000");

  const uint32_t xid = FlowMonitorSession::kMonitorXid;
  Bytes part1 = mp_reply(xid, true, update14(0, 0, 100, 0, 0x5, 1, 2));
  Bytes part2 = mp_reply(xid, false, update14(0, 0, 0, 3, 0, 0xfffffffe, 0xfffffffa));
  Bytes echo = B().u8(5).u8(2).u16(8).u32(0x99);
  Bytes live = mp_reply(0, false, B().raw(update14(3, 0, 100, 0, 0x6, 1, 3))
                                      .u16(8).u16(4).u32(0x42)  // ABBREV: skipped
                                      .raw(update14(1, 0, 7, 2, 0x9, 4, {}))
                                      .raw(update14(2, 0, 0, 3, 0, 0xfffffffe, {})));
  Bytes gone = mp_reply(0, false, update14(2, 2, 7, 2, 0x9, 4, {}));
  ASSERT_TRUE(feed_sliced(s, {part1, part2, echo, live, gone}, 7));
  EXPECT_EQ(hex_bytes(s.take_output()), "0503000800000099");
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kStreaming);
  EXPECT_EQ(sink.events, (std::vector<std::string>{
                             "protocol openflow14",
                             "resync_start",
                             "initial added t0 p100 c0x5 in_port=1 actions=output:2",
                             "initial added t3 p0 c0x0 in_port=LOCAL actions=NORMAL",
                             "resync_complete",
                             "modified t0 p100 c0x6 in_port=1 actions=output:3",
                             "added t2 p7 c0x9 in_port=4 actions=drop",
                             "deleted t3 p0 c0x0 in_port=LOCAL actions=drop reason=idle_timeout",
                             "deleted t2 p7 c0x9 in_port=4 actions=drop reason=delete",
                         }));
  EXPECT_EQ(s.counters().update_batches, 4u);
  EXPECT_EQ(s.counters().echo_replies, 1u);
}

TEST(FlowMonitorSession14, PausedAndResumedArriveAsUpdates) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  handshake14(s);
  ASSERT_TRUE(s.feed(mp_reply(FlowMonitorSession::kMonitorXid, false, {})));
  ASSERT_TRUE(s.feed(mp_reply(0, false, paused14(5))));
  // Deletes of flows older than the pause still arrive while paused.
  ASSERT_TRUE(s.feed(mp_reply(0, false, update14(2, 2, 1, 0, 0, 9, {}))));
  // On resume OVS refreshes changed flows as INITIAL (xid 0), then RESUMED.
  ASSERT_TRUE(s.feed(mp_reply(0, false, B().raw(update14(0, 0, 5, 1, 0, 2, 4)).raw(paused14(6)))));
  EXPECT_EQ(sink.events, (std::vector<std::string>{
                             "protocol openflow14", "resync_start", "resync_complete", "paused",
                             "deleted t0 p1 c0x0 in_port=9 actions=drop reason=delete",
                             "added t1 p5 c0x0 in_port=2 actions=output:4", "resumed"}));
}

TEST(FlowMonitorSession14, RefusalAndUnrelatedMessages) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  handshake14(s);
  // A multipart reply of another type and an experimenter message are ignored.
  ASSERT_TRUE(s.feed(B().u8(5).u8(19).u16(16).u32(7).u16(0).u16(0).u32(0)));
  ASSERT_TRUE(s.feed(B().u8(5).u8(4).u16(16).u32(0).u32(0x2320).u32(22)));
  EXPECT_EQ(s.counters().ignored, 2u);
  EXPECT_EQ(sink.events, (std::vector<std::string>{"protocol openflow14", "resync_start"}));
  // OFPET_FLOW_MONITOR_FAILED / OFPMOFC_BAD_FLAGS for our request.
  auto st = s.feed(B().u8(5).u8(1).u16(12).u32(FlowMonitorSession::kMonitorXid).u16(16).u16(6));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message,
            "flow monitor request over openflow14 refused: OFPET_FLOW_MONITOR_FAILED code 6");
  EXPECT_EQ(s.refused_version(), 5);
  // A message in another version after negotiating 1.4.
  FlowMonitorSession s2(sink);
  handshake14(s2);
  auto v = s2.feed(B().u8(1).u8(2).u16(8).u32(1));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message, "message version 1 after negotiating 5");
}

TEST(FlowMonitorSession14, MalformedBodies) {
  RecordingSink sink;
  auto error_of = [&](const Bytes& body) {
    auto st = decode_flow_updates14(body, false, sink);
    return st ? std::string("ok") : st.error().message;
  };
  // Framing errors fail the whole body.
  EXPECT_EQ(error_of(B().u16(12).u16(1).zeros(8)), "flow update at offset 0 has bad length 12");
  EXPECT_EQ(error_of(B().u16(64).u16(1).zeros(12)), "flow update at offset 0 has bad length 64");
  EXPECT_EQ(error_of(B().raw(paused14(5)).u8(0).u8(8).u8(0)), "3 trailing bytes in flow update");
  EXPECT_EQ(error_of(B().u16(16).u16(1).zeros(12)), "full flow update shorter than 24 (16)");
  EXPECT_EQ(sink.events, (std::vector<std::string>{"paused"}));
  sink.events.clear();

  // Broken entries with a sound length are reported and skipped.
  Bytes good = update14(1, 0, 9, 0, 0, 1, 2);
  Bytes std_match = B().u16(32).u16(1).zeros(20).u16(0).u16(4).zeros(4);  // OFPMT_STANDARD
  Bytes overrun = B().u16(32).u16(1).zeros(20).u16(1).u16(40).zeros(4);
  Bytes bad_tlv = B().u16(40).u16(1).zeros(20).u16(1).u16(12).oxm(5, false, 8).u32(0).zeros(4);
  Bytes bad_instr = B().u16(40).u16(1).zeros(20).u16(1).u16(4).zeros(4).u16(4).u16(12).zeros(4);
  Bytes unknown_event = B().u16(8).u16(9).zeros(4);
  EXPECT_EQ(error_of(B().raw(std_match).raw(overrun).raw(bad_tlv).raw(bad_instr)
                         .raw(unknown_event).raw(good)),
            "ok");
  EXPECT_EQ(sink.events, (std::vector<std::string>{
                             "decode_error flow update match: ofp_match type 0 is not OXM",
                             "decode_error flow update match: ofp_match length 40 overruns 8 bytes",
                             "decode_error flow update match: truncated nxm value at offset 0",
                             "decode_error flow update actions: instruction at offset 0 has bad "
                             "length 12",
                             "added t0 p0 c0x0  actions=raw:000400" "0c00000000",
                             "decode_error unknown flow update event 9",
                             "added t0 p9 c0x0 in_port=1 actions=output:2",
                         }));
}

TEST(FlowMonitorSession14, BrokenFramingResyncsTheConnection) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  handshake14(s);
  auto st = s.feed(mp_reply(FlowMonitorSession::kMonitorXid, false, B().u16(12).u16(0).zeros(8)));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message,
            "flow monitor reply: flow update at offset 0 has bad length 12");
  EXPECT_EQ(s.counters().decode_errors, 1u);
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kFailed);
  EXPECT_FALSE(s.feed(mp_reply(0, false, {})));  // stays failed
}

// OpenFlow 1.3 (ONF extension) and 1.5 fixtures: the bodies are what
// ovs-vswitchd 3.1 sent to `ovs-ofctl -O OpenFlow13|15 monitor br watch:` for
// the flows "priority=0 actions=NORMAL" and "table=1,priority=5,ip,
// nw_src=10.0.0.1 actions=set_field:5->reg5,goto_table:3", then for adding,
// modifying and deleting "table=2,priority=7 actions=output:3" (output:4).

Bytes from_hex(std::string_view h) {
  Bytes b;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    b.push_back(static_cast<uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return b;
}

// ONFST_FLOW_MONITOR reply: experimenter multipart, ONF id, exp_type 1870.
Bytes onf_reply(uint32_t xid, bool more, const Bytes& body, uint32_t exp_type = 1870) {
  B m;
  m.u8(4).u8(19).u16(static_cast<uint16_t>(24 + body.size())).u32(xid);
  m.u16(0xffff).u16(more ? 1 : 0).u32(0).u32(0x4f4e4600).u32(exp_type).raw(body);
  return m;
}

Bytes onft(uint32_t exp_type) { return B().u8(4).u8(4).u16(16).u32(0).u32(0x4f4e4600).u32(exp_type); }

const char* kOnfInitial =
    "0038000000000000000000000004000000000000000000000001000400000000"
    "000400180000000000000010fffffffa0000000000000000"
    "0050000000000005000000000012010000000000000000000001001280000a02"
    "0800800016040a00000100000000000000040018000000000019001000010a04"
    "00000005000000000001000803000000";
const char* kOnfAdded =
    "0038000000000007000000000004020000000000000000000001000400000000"
    "000400180000000000000010000000030000000000000000";
const char* kOnfModified =
    "0038000200000007000000000004020000000000000000000001000400000000"
    "000400180000000000000010000000040000000000000000";
const char* kOnfDeleted =
    "0038000100020007000000000004020000000000000000000001000400000000"
    "000400180000000000000010000000040000000000000000";

void handshake_onf(FlowMonitorSession& s) {
  s.start();
  (void)s.take_output();
  ASSERT_TRUE(s.feed(of::encode_hello(4, {4}, 1)));  // protocols=OpenFlow13
}

TEST(FlowMonitorSessionOnf13, HandshakeSnapshotLiveUpdatesPausedResumed) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  (void)s.take_output();
  ASSERT_TRUE(s.feed(of::encode_hello(4, {4}, 1)));
  EXPECT_EQ(s.protocol(), MonitorProtocol::kOnfOf13);
  EXPECT_EQ(s.version(), 4);
  // Experimenter multipart request (ONF, 1870): id 1, flags
  // INITIAL|ADD|DELETE|MODIFY|ACTIONS, match_len 4, out_port ANY, all tables,
  // empty OXM match. ovs-ofctl sends the same but for id, flags (it adds OWN)
  // and xid.
  EXPECT_EQ(hex_bytes(s.take_output()),
            "0412003068760001" "ffff000000000000" "4f4e46000000074e"
            "00000001001f0004" "ffffffffff000000" "0001000400000000");

  const uint32_t xid = FlowMonitorSession::kMonitorXid;
  ASSERT_TRUE(feed_sliced(s,
                          {onf_reply(xid, false, from_hex(kOnfInitial)),
                           onf_reply(0, false, from_hex(kOnfAdded)), onft(1871),
                           onf_reply(0, false, from_hex(kOnfModified)), onft(1872),
                           onf_reply(0, false, from_hex(kOnfDeleted))},
                          11));
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kStreaming);
  EXPECT_EQ(sink.events,
            (std::vector<std::string>{
                "protocol openflow13_onf",
                "resync_start",
                "initial added t0 p0 c0x0  actions=NORMAL",
                "initial added t1 p5 c0x0 ip,nw_src=10.0.0.1 "
                "actions=load:0x5->NXM_NX_REG5[],resubmit(,3)",
                "resync_complete",
                "added t2 p7 c0x0  actions=output:3",
                "paused",
                "modified t2 p7 c0x0  actions=output:4",
                "resumed",
                "deleted t2 p7 c0x0  actions=output:4 reason=delete",
            }));
  EXPECT_EQ(s.counters().update_batches, 4u);
  EXPECT_EQ(s.counters().ignored, 0u);
}

TEST(FlowMonitorSessionOnf13, UnrelatedAndMalformedMessages) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  handshake_onf(s);
  ASSERT_TRUE(s.feed(onf_reply(FlowMonitorSession::kMonitorXid, false, {})));
  sink.events.clear();
  // Ignored: another ONF exp_type, a Nicira experimenter message, an
  // experimenter multipart of another experimenter or type, one too short
  // for its experimenter header, and a standard OFPMP_FLOW_MONITOR reply
  // (not what a 1.3 switch sends).
  ASSERT_TRUE(s.feed(onft(1999)));
  ASSERT_TRUE(s.feed(B().u8(4).u8(4).u16(16).u32(0).u32(0x2320).u32(22)));
  ASSERT_TRUE(s.feed(onf_reply(0, false, from_hex(kOnfAdded), 1871)));
  Bytes other = onf_reply(0, false, from_hex(kOnfAdded));
  other[16] = 0;  // experimenter 0x004e4600
  ASSERT_TRUE(s.feed(other));
  ASSERT_TRUE(s.feed(B().u8(4).u8(19).u16(20).u32(0).u16(0xffff).u16(0).u32(0).u32(0x4f4e4600)));
  ASSERT_TRUE(s.feed(B().u8(4).u8(19).u16(16).u32(0).u16(16).u16(0).u32(0)));
  EXPECT_EQ(s.counters().ignored, 6u);
  EXPECT_TRUE(sink.events.empty());

  // Broken entries with a sound length are reported and skipped: match_len
  // disagreeing with the ofp_match, a non-OXM match, a match overrunning the
  // entry, broken instructions.
  auto entry = [](uint16_t match_len, const Bytes& rest) {
    return B().u16(static_cast<uint16_t>(24 + rest.size())).u16(0).zeros(8).u16(match_len)
        .u8(0).u8(0).u64(0).raw(rest).b;
  };
  Bytes empty_match = B().u16(1).u16(4).zeros(4);
  Bytes body = B().raw(entry(6, empty_match))
                   .raw(entry(4, B().u16(0).u16(4).zeros(4)))
                   .raw(entry(4, B().u16(1).u16(20).zeros(4)))
                   .raw(entry(4, B().raw(empty_match).u16(4).u16(12).zeros(4)))
                   .raw(from_hex(kOnfAdded));
  ASSERT_TRUE(s.feed(onf_reply(0, false, body)));
  EXPECT_EQ(sink.events, (std::vector<std::string>{
                             "decode_error flow update match: match_len 6 but ofp_match length 4",
                             "decode_error flow update match: ofp_match type 0 is not OXM",
                             "decode_error flow update match: ofp_match length 20 overruns 8 bytes",
                             "decode_error flow update actions: instruction at offset 0 has bad "
                             "length 12",
                             "added t0 p0 c0x0  actions=raw:000400" "0c00000000",
                             "added t2 p7 c0x0  actions=output:3",
                         }));

  // Broken framing fails the connection, to be resynced.
  auto st = s.feed(onf_reply(0, false, B().u16(12).u16(0).zeros(8)));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "flow monitor reply: flow update at offset 0 has bad length 12");
  EXPECT_EQ(s.state(), FlowMonitorSession::State::kFailed);
}

// A bridge that does not allow OpenFlow 1.0 cannot hold a flow installed as
// enqueue: OVS's 1.1+ triple is shown as what dump-flows prints for it.
TEST(FlowMonitorSessionOnf13, EnqueueTripleFoldsOnlyWhenTheBridgeAllows10) {
  Bytes triple = B().u16(21).u16(8).u32(4)                              // set_queue:4
                     .u16(0).u16(16).u32(3).u16(0xffff).zeros(6)        // output:3, max_len 0xffff
                     .nx(16, 5).zeros(6);                               // pop_queue
  Bytes instr = B().instruction(4, triple);
  Bytes entry = B().u16(static_cast<uint16_t>(32 + instr.size())).u16(0).zeros(8).u16(4).u8(0)
                    .u8(0).u64(0).u16(1).u16(4).zeros(4).raw(instr);
  for (bool allows10 : {false, true}) {
    RecordingSink sink;
    FlowMonitorSession s(sink);
    s.start();
    ASSERT_TRUE(s.feed(of::encode_hello(4, allows10 ? std::vector<uint8_t>{1, 4}
                                                    : std::vector<uint8_t>{4}, 1)));
    ASSERT_TRUE(s.feed(onf_reply(0, false, entry)));
    EXPECT_EQ(sink.events.back(), allows10 ? "added t0 p0 c0x0  actions=enqueue:3:4"
                                           : "added t0 p0 c0x0  actions=set_queue:4,output:3,pop_queue");
  }
}

TEST(FlowMonitorSession15, StandardMonitorOverOpenFlow15) {
  RecordingSink sink;
  FlowMonitorSession s(sink);
  s.start();
  (void)s.take_output();
  ASSERT_TRUE(s.feed(of::encode_hello(6, {6}, 1)));  // protocols=OpenFlow15
  EXPECT_EQ(s.protocol(), MonitorProtocol::kOf15);
  EXPECT_EQ(hex_bytes(s.take_output()),
            "0612002868760001" "0010000000000000" "00000001ffffffff"
            "ffffffff001fff00" "0001000400000000");
  // OVS 3.1 sends the OpenFlow 1.4 entries unchanged (INITIAL = 0).
  Bytes initial = from_hex(
      "0038000000000000000000000000000000000000000000000001000400000000"
      "000400180000000000000010fffffffa0000000000000000");
  auto mp15 = [](uint32_t xid, const Bytes& body) {
    return B().u8(6).u8(19).u16(static_cast<uint16_t>(16 + body.size())).u32(xid).u16(16)
        .u16(0).u32(0).raw(body).b;
  };
  ASSERT_TRUE(s.feed(mp15(FlowMonitorSession::kMonitorXid, initial)));
  ASSERT_TRUE(s.feed(mp15(0, B().u16(8).u16(5).zeros(4))));
  ASSERT_TRUE(s.feed(mp15(0, B().u16(8).u16(6).zeros(4))));
  EXPECT_EQ(sink.events, (std::vector<std::string>{"protocol openflow15", "resync_start",
                                                   "initial added t0 p0 c0x0  actions=NORMAL",
                                                   "resync_complete", "paused", "resumed"}));
}

}  // namespace
}  // namespace hvtel::ovs
