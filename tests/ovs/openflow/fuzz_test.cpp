// Fuzz-style robustness: random and mutated bytes through every decoder. The
// assertion is that nothing crashes or reads out of bounds (run under ASan in
// CI) and that errors are reported as values.
#include <gtest/gtest.h>

#include <random>

#include "ovs/openflow/actions.h"
#include "ovs/openflow/canonical.h"
#include "dump_flows_parser.h"
#include "ovs/openflow/flow_monitor.h"
#include "ovs/openflow/nxm.h"
#include "ovs_bytes.h"

namespace hvtel::ovs {
namespace {

using testbytes::B;

struct NullSink : FlowMonitorSink {
  size_t flows = 0;
  void on_resync_start() override {}
  void on_flow(const FlowUpdate& u) override {
    ++flows;
    (void)render_match(u.match);
    (void)render_actions(u.actions.actions);
  }
  void on_resync_complete() override {}
  void on_paused() override {}
  void on_resumed() override {}
  void on_disconnect(const std::string&) override {}
};

Bytes random_bytes(std::mt19937& rng, size_t max_len) {
  std::uniform_int_distribution<size_t> len(0, max_len);
  Bytes b(len(rng));
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

// A valid seed with 1-4 random bytes replaced, truncated one time in eight.
Bytes mutate(Bytes b, std::mt19937& rng) {
  int flips = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
  if (rng() % 8 == 0) b.resize(rng() % (b.size() + 1));
  return b;
}

// Whole sessions past the handshake with 'peer_hello', fed random chunks that
// 'plausible' dresses as a message the body decoders will look at.
void fuzz_sessions(std::mt19937& rng, const Bytes& peer_hello, MonitorProtocol expected,
                   void (*plausible)(Bytes&)) {
  for (int i = 0; i < 2000; ++i) {
    NullSink sink;
    FlowMonitorSession s(sink);
    s.start();
    ASSERT_TRUE(s.feed(peer_hello));
    ASSERT_EQ(s.protocol(), expected);
    for (int k = 0; k < 5 && s.state() != FlowMonitorSession::State::kFailed; ++k) {
      Bytes chunk = random_bytes(rng, 64);
      plausible(chunk);
      (void)s.feed(chunk);
    }
  }
}

// Valid seeds that the mutator perturbs, so mutations reach deep decoder paths.
std::vector<Bytes> action_seeds() {
  Bytes mark = B().nx(24, 7).u16(31).u32(0x0001d604).u64(1);
  return {
      B().u16(0).u16(8).u16(1).u16(0),
      B().nx(24, 35).u16(1).u32(0x00010c04).u16(15).u8(0xff).zeros(3).u16(0),
      B().nx(48, 35).u16(1).u32(0).u16(5).u8(0xff).zeros(3).u16(0).raw(mark),
      B().nx(32, 36).zeros(2).u16(1).u16(51).u32(0x0a000001).u32(0x0a000005).u16(1).u16(2).zeros(4),
      B().nx(48, 16).u16(60).u16(0).u16(32768).u64(0).u16(0).u8(10).u8(0).u32(0)
          .u16(12).u32(0x802).u16(0).u32(0x802).u16(0).zeros(4),
      B().nx(40, 12).u16(1).u16(0).u16(0).u32(2).u16(2).u16(0).u32(0).zeros(4).u16(4).u16(8).zeros(4),
      B().nx(24, 6).u16(48).u16(0).u16(0).u32(0x406).u32(0x206),
      B().nx(32, 37).zeros(6).u16(0).u16(6).u16(100).zeros(2).u16(3).u16(6).raw({1, 2}).zeros(2),
  };
}

TEST(Fuzz, RandomBytesIntoDecoders) {
  std::mt19937 rng(4242);
  NullSink sink;
  for (int i = 0; i < 20000; ++i) {
    Bytes b = random_bytes(rng, 96);
    (void)decode_nxm(b);
    size_t padded = 0;
    if (auto m = decode_ofp_match(b, padded)) {
      EXPECT_LE(padded, b.size());
    }
    auto l = decode_actions(b);
    (void)render_actions(l.actions);
    (void)render_actions(decode_actions(b, ActionDialect::kOf13).actions);
    (void)render_actions(decode_instructions(b).actions);
    (void)decode_flow_updates(b, i % 2 == 0, sink);
    (void)decode_flow_updates14(b, i % 2 == 0, sink);
    of::Framer f;
    f.feed(b);
    while (true) {
      auto m = f.next();
      if (!m || !*m) break;
      (void)of::decode_hello(**m);
      (void)of::decode_error(**m);
      (void)of::decode_nx_stats(**m);
      (void)of::decode_nxt(**m);
      (void)of::decode_features_reply(**m);
      (void)of::decode_multipart(**m);
    }
  }
  SUCCEED();
}

TEST(Fuzz, MutatedValidActionsAndSessions) {
  std::mt19937 rng(99);
  auto seeds = action_seeds();
  size_t decoded_ok = 0;
  for (int i = 0; i < 50000; ++i) {
    Bytes b = mutate(seeds[static_cast<size_t>(i) % seeds.size()], rng);
    auto l = decode_actions(b);
    decoded_ok += l.ok();
    (void)render_actions(l.actions);
  }
  // Many mutations land in don't-care bytes; most must still decode.
  EXPECT_GT(decoded_ok, 5000u);

  // Whole sessions fed random chunks after a valid handshake.
  fuzz_sessions(rng, of::encode_hello(1, {1}, 1), MonitorProtocol::kNxOf10, [](Bytes& chunk) {
    if (chunk.size() < 4) return;
    chunk[0] = 1;  // plausible header so the body decoders run
    chunk[1] = static_cast<uint8_t>(chunk[1] % 2 ? 17 : 4);
    chunk[2] = 0;
    chunk[3] = static_cast<uint8_t>(chunk.size());
  });
}

// OpenFlow 1.4 seeds: instruction lists and whole flow-update bodies.
std::vector<Bytes> of14_seeds() {
  Bytes out2 = B().u16(0).u16(16).u32(2).u16(0).zeros(6);
  Bytes set_reg = B().u16(25).u16(16).nxm(1, 5, false, 4).u32(7).zeros(4);
  Bytes set_v6 = B().u16(25).u16(24).oxm(26, false, 16).u64(0xfe80000000000000ull).u64(1);
  Bytes push = B().u16(17).u16(8).u16(0x8100).u16(0);
  Bytes set_vid = B().u16(25).u16(16).oxm(6, false, 2).u16(0x1005).zeros(6);
  // OpenFlow 1.5: copy_field reg5[0..15] -> reg6[0..15], meter action.
  Bytes copy = B().u16(28).u16(24).u16(16).u16(0).u16(0).u16(0).nxm(1, 5, false, 4)
                   .nxm(1, 6, false, 4).zeros(4);
  Bytes meter15 = B().u16(29).u16(8).u32(2);
  Bytes enqueue = B().u16(21).u16(8).u32(3).u16(0).u16(16).u32(2).u16(0xffff).zeros(6)
                      .nx(16, 5).zeros(6);
  Bytes ct = B().nx(40, 35).u16(1).u32(0).u16(5).u8(0xff).zeros(3).u16(0).raw(set_reg);
  Bytes apply = B().instruction(
      4, B().raw(meter15).raw(push).raw(set_vid).raw(out2).raw(set_v6).raw(copy).raw(ct));
  Bytes write = B().instruction(3, B().raw(enqueue));
  Bytes instructions = B().u16(6).u16(8).u32(1).raw(apply).u16(5).u16(8).u32(0).raw(write)
                           .u16(2).u16(24).u32(0).u64(5).u64(0xff).u16(1).u16(8).u8(3).zeros(3);
  Bytes match = B().u16(1).u16(23).oxm(0, false, 4).u32(1).oxm(6, false, 2).u16(0x1005)
                    .oxm(7, false, 1).u8(3).pad8();
  Bytes update = B().u16(static_cast<uint16_t>(24 + match.size() + instructions.size())).u16(1)
                     .u8(3).u8(0).u16(0).u16(0).u16(100).zeros(4).u64(5).raw(match)
                     .raw(instructions);
  // The same match and instructions in an ONF (OpenFlow 1.3) entry.
  Bytes onf = B().u16(static_cast<uint16_t>(24 + match.size() + instructions.size())).u16(0)
                  .u16(0).u16(100).u16(0).u16(0).u16(23).u8(3).u8(0).u64(5).raw(match)
                  .raw(instructions);
  return {instructions, update, B().raw(update).u16(8).u16(5).zeros(4).raw(update), onf};
}

TEST(Fuzz, MutatedOpenFlow14UpdatesAndSessions) {
  std::mt19937 rng(1404);
  auto seeds = of14_seeds();
  size_t flows = 0;
  for (int i = 0; i < 30000; ++i) {
    Bytes b = mutate(seeds[static_cast<size_t>(i) % seeds.size()], rng);
    if (i % 3 == 0) {
      (void)render_actions(decode_instructions(b, i % 2 == 0).actions);
    } else {
      NullSink sink;
      if (i % 4 == 3) {
        (void)decode_flow_updates_onf(b, false, sink, false);
      } else {
        (void)decode_flow_updates14(b, false, sink);
      }
      flows += sink.flows;
    }
  }
  // Most mutations leave the entry framing intact: flows still come out.
  EXPECT_GT(flows, 5000u);

  // A plain 1.4 HELLO (bridge allowing 1.0-1.4): OpenFlow 1.4 sessions.
  fuzz_sessions(rng, B().u8(5).u8(0).u16(8).u32(1), MonitorProtocol::kOf14, [](Bytes& chunk) {
    if (chunk.size() < 12) return;
    chunk[0] = 5;  // a multipart flow-monitor reply, so the body decoder runs
    chunk[1] = 19;
    chunk[2] = 0;
    chunk[3] = static_cast<uint8_t>(chunk.size());
    chunk[8] = 0;
    chunk[9] = 16;
  });
  // protocols=OpenFlow13: ONF sessions, chunks dressed as ONF replies or
  // PAUSED/RESUMED experimenter messages.
  fuzz_sessions(rng, of::encode_hello(4, {4}, 1), MonitorProtocol::kOnfOf13, [](Bytes& chunk) {
    if (chunk.size() < 24) return;
    const bool reply = chunk[1] % 2;
    Bytes head = reply ? B().u8(4).u8(19).u16(static_cast<uint16_t>(chunk.size())).u32(0)
                             .u16(0xffff).u16(0).u32(0).u32(0x4f4e4600).u32(1870).b
                       : B().u8(4).u8(4).u16(static_cast<uint16_t>(chunk.size())).u32(0)
                             .u32(0x4f4e4600).u32(1871 + chunk[2] % 2).b;
    std::copy(head.begin(), head.end(), chunk.begin());
  });
}

TEST(Fuzz, DumpParserOnGarbage) {
  std::mt19937 rng(7);
  std::string base =
      " cookie=0x1, duration=1.5s, table=2, n_packets=3, n_bytes=4, idle_age=1, "
      "priority=5,ip,nw_src=10.0.0.1 actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:1\n";
  for (int i = 0; i < 20000; ++i) {
    std::string s = base;
    for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng() % 128);
    auto r = parse_dump_flows(s);
    EXPECT_LE(r.flows.size() + r.errors.size(), 2u);
  }
}

}  // namespace
}  // namespace hvtel::ovs
