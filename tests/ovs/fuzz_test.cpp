// Fuzz-style robustness: random and mutated bytes through every decoder. The
// assertion is that nothing crashes or reads out of bounds (run under ASan in
// CI) and that errors are reported as values.
#include <gtest/gtest.h>

#include <random>

#include "ovs/actions.h"
#include "ovs/canonical.h"
#include "ovs/dump_flows_parser.h"
#include "ovs/flow_monitor.h"
#include "ovs/nxm.h"
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
    auto l = decode_actions(b);
    (void)render_actions(l.actions);
    (void)decode_flow_updates(b, i % 2 == 0, sink);
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
    }
  }
  SUCCEED();
}

TEST(Fuzz, MutatedValidActionsAndSessions) {
  std::mt19937 rng(99);
  auto seeds = action_seeds();
  size_t decoded_ok = 0;
  for (int i = 0; i < 50000; ++i) {
    Bytes b = seeds[static_cast<size_t>(i) % seeds.size()];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    if (rng() % 8 == 0) b.resize(rng() % (b.size() + 1));
    auto l = decode_actions(b);
    decoded_ok += l.ok();
    (void)render_actions(l.actions);
  }
  // Many mutations land in don't-care bytes; most must still decode.
  EXPECT_GT(decoded_ok, 5000u);

  // Whole sessions fed random chunks after a valid handshake.
  for (int i = 0; i < 2000; ++i) {
    NullSink sink;
    FlowMonitorSession s(sink);
    s.start();
    ASSERT_TRUE(s.feed(of::encode_hello(1, {1}, 1)));
    for (int k = 0; k < 5 && s.state() != FlowMonitorSession::State::kFailed; ++k) {
      Bytes chunk = random_bytes(rng, 64);
      if (chunk.size() >= 4) {
        chunk[0] = 1;  // plausible header so the body decoders run
        chunk[1] = static_cast<uint8_t>(rng() % 2 ? 17 : 4);
        chunk[2] = 0;
        chunk[3] = static_cast<uint8_t>(chunk.size());
      }
      (void)s.feed(chunk);
    }
  }
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
