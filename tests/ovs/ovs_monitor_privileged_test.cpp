// Differential tests against a real ovs-vswitchd: the mirror built from the
// binary flow-monitor stream must equal `ovs-ofctl dump-flows --no-names`
// (parsed by our own parser) after random add/modify/delete flow mods, and
// after ovs-vswitchd is killed and restarted.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "ovs/dump_flows_parser.h"
#include "ovs/flow_mirror.h"
#include "ovs/flow_monitor.h"
#include "ovs/ovs_collector.h"
#include "ovs_sandbox.h"
#include "support/test_env.h"

namespace hvtel::ovs {
namespace {

using hvtel::testing::OvsSandbox;

// Random flow generator with a model of what exists, so that every batch
// touches a key at most once and each op yields exactly one monitor event.
class FlowGen {
 public:
  explicit FlowGen(uint32_t seed) : rng_(seed) {}

  struct Flow {
    int table;
    int priority;
    std::string match;  // as given to ovs-ofctl (fixed field order/format)
    bool has_ip;
    std::string actions;  // last applied, as given to ovs-ofctl
    std::string key() const {
      return "table=" + std::to_string(table) + ",priority=" + std::to_string(priority) +
             (match.empty() ? "" : "," + match);
    }
  };

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin(int pct) { return pick(1, 100) <= pct; }

  Flow random_flow() {
    Flow f{pick(0, 5), pick(0, 6) * 10 + pick(0, 3), "", false, ""};
    std::vector<std::string> parts;
    int l3 = pick(0, 3);  // 0 none, 1 ip, 2 tcp, 3 ct_state (implies ip)
    if (coin(40)) parts.push_back("in_port=" + std::to_string(pick(1, 6)));
    if (coin(25)) parts.push_back(fmt::format("dl_src=fa:16:3e:00:00:{:02x}", pick(1, 8)));
    if (coin(20)) parts.push_back(fmt::format("dl_dst=fa:16:3e:00:01:{:02x}", pick(1, 8)));
    if (coin(20)) parts.push_back("dl_vlan=" + std::to_string(pick(1, 4095)));
    if (l3 == 1 || l3 == 3) {
      parts.push_back("ip");
      f.has_ip = true;
      if (coin(60)) {
        parts.push_back(coin(50) ? fmt::format("nw_src=10.{}.{}.{}", pick(0, 3), pick(0, 3), pick(1, 9))
                                 : fmt::format("nw_src=10.{}.0.0/16", pick(0, 9)));
      }
    } else if (l3 == 2) {
      parts.push_back("tcp");
      f.has_ip = true;
      parts.push_back("tp_dst=" + std::to_string(pick(1, 3) * 1000 + pick(0, 9)));
    }
    if (coin(30)) parts.push_back(fmt::format("reg5=0x{:x}", pick(1, 20)));
    if (l3 == 3) parts.push_back(coin(50) ? "ct_state=+trk+est" : "ct_state=+trk-new");
    if (coin(15)) parts.push_back(fmt::format("metadata=0x{:x}/0xff", pick(0, 255)));
    for (size_t i = 0; i < parts.size(); ++i) f.match += (i ? "," : "") + parts[i];
    return f;
  }

  std::string random_actions(const Flow& f) {
    int kind = pick(0, 19);
    if (kind == 0) return "drop";
    if (kind == 1) return fmt::format("conjunction({},{}/2)", pick(1, 50), pick(1, 2));
    std::vector<std::string> acts;
    int n = pick(1, 3);
    for (int i = 0; i < n; ++i) {
      switch (pick(0, 10)) {
        case 0: acts.push_back("output:" + std::to_string(pick(1, 30))); break;
        case 1: acts.push_back(fmt::format("resubmit(,{})", pick(0, 80))); break;
        case 2: acts.push_back("mod_vlan_vid:" + std::to_string(pick(1, 4094))); break;
        case 3: acts.push_back("strip_vlan"); break;
        case 4: acts.push_back(fmt::format("load:0x{:x}->NXM_NX_REG5[]", pick(0, 1000))); break;
        case 5: acts.push_back("move:NXM_NX_REG5[0..15]->NXM_NX_REG6[0..15]"); break;
        case 6:
          if (f.has_ip) {
            acts.push_back(coin(50) ? "ct(commit,zone=NXM_NX_REG6[0..15])"
                                    : fmt::format("ct(table={},zone={})", pick(1, 80), pick(1, 9)));
          } else {
            acts.push_back("NORMAL");
          }
          break;
        case 7: acts.push_back("NORMAL"); break;
        case 8:
          acts.push_back(fmt::format(
              "learn(table={},idle_timeout={},priority={},NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
              "load:NXM_NX_REG5[]->NXM_NX_REG7[],output:NXM_OF_IN_PORT[])",
              pick(10, 20), pick(0, 1) * 60, pick(1, 5)));
          break;
        case 9: acts.push_back(fmt::format("note:{:02x}.{:02x}", pick(0, 255), pick(0, 255))); break;
        default: acts.push_back("output:" + std::to_string(pick(1, 30))); break;
      }
    }
    std::string s;
    for (size_t i = 0; i < acts.size(); ++i) s += (i ? "," : "") + acts[i];
    // goto_table must come last and move forward.
    if (f.table < 5 && coin(15)) s += fmt::format(",goto_table:{}", pick(f.table + 1, 5));
    return s;
  }

 private:
  std::mt19937 rng_;
};

bool same_actions(std::string a, std::string b) {
  auto norm = [](std::string& s) {
    for (size_t p; (p = s.find("goto_table:")) != std::string::npos;) {
      s.replace(p, 11, "resubmit(,");
      s += ")";
    }
  };
  norm(a);
  norm(b);
  return a == b;
}

struct Applied {
  uint64_t adds = 0, modifies = 0, deletes = 0;
};

class OvsMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(OvsSandbox::available(), "Open vSwitch (ovs-vswitchd, ovs-ofctl) not installed");
    auto st = sandbox_.start();
    ASSERT_TRUE(st) << st.error().message;
    for (const char* b : {"br0", "br1"}) {
      auto add = sandbox_.add_bridge(b);
      ASSERT_TRUE(add) << add.error().message;
    }
    monitors_ = std::make_shared<FlowMonitorSet>(sandbox_.dir(),
                                                 FlowMonitorClient::Options{std::chrono::milliseconds(50),
                                                                            std::chrono::milliseconds(500)});
    auto bridges = list_mgmt_bridges(sandbox_.dir());
    ASSERT_TRUE(bridges);
    ASSERT_EQ(*bridges, (std::vector<std::string>{"br0", "br1"}));
    monitors_->set_bridges(*bridges);
    for (const auto& b : *bridges) {
      ASSERT_TRUE(wait_for([&] { return monitors_->mirror(b)->view_complete(); }))
          << "initial snapshot of " << b;
    }
  }

  void TearDown() override {
    if (monitors_) monitors_->stop_all();
    sandbox_.stop();
  }

  template <typename Pred>
  static bool wait_for(Pred pred, std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  std::set<std::string> dump_set(const std::string& bridge) {
    auto out = sandbox_.ovs_ok({"ovs-ofctl", "dump-flows", "--no-names", bridge});
    EXPECT_TRUE(out) << (out ? "" : out.error().message);
    if (!out) return {};
    auto parsed = parse_dump_flows(*out);
    EXPECT_TRUE(parsed.errors.empty()) << parsed.errors.front();
    std::set<std::string> s;
    for (const auto& f : parsed.flows) s.insert(f.id.to_string());
    return s;
  }

  std::set<std::string> mirror_set(const std::string& bridge) {
    std::set<std::string> s;
    for (const auto& id : monitors_->mirror(bridge)->identities()) s.insert(id.to_string());
    return s;
  }

  // Waits until the mirror equals the dump (the monitor stream is
  // asynchronous), then asserts equality with a readable diff.
  void expect_mirror_equals_dump(const std::string& bridge) {
    std::set<std::string> dump;
    bool same = wait_for([&] {
      dump = dump_set(bridge);
      return monitors_->mirror(bridge)->view_complete() && mirror_set(bridge) == dump;
    });
    std::set<std::string> mirror = mirror_set(bridge);
    std::string diff;
    for (const auto& s : mirror) {
      if (!dump.contains(s)) diff += "  only in mirror: " + s + "\n";
    }
    for (const auto& s : dump) {
      if (!mirror.contains(s)) diff += "  only in dump:   " + s + "\n";
    }
    EXPECT_TRUE(same) << bridge << " mirror (" << mirror.size() << ") != dump (" << dump.size()
                      << "):\n"
                      << diff;
  }

  // Applies one batch: adds, then strict modifies, then strict deletes, each
  // through one ovs-ofctl invocation (OpenFlow 1.0 + NXM, like Neutron's
  // agent). A batch touches every key at most once.
  void apply_batch(const std::string& bridge, const std::vector<std::string>& adds,
                   const std::vector<std::string>& mods, const std::vector<std::string>& dels) {
    auto run = [&](const char* cmd, bool strict, const std::vector<std::string>& lines) {
      if (lines.empty()) return;
      std::string path = sandbox_.dir() + "/batch-" + bridge + "-" + cmd + ".txt";
      {
        std::ofstream f(path);
        for (const auto& l : lines) f << l << "\n";
      }
      // mod-flows/del-flows read a file only from stdin ("-").
      std::string sh = std::string("exec ovs-ofctl ") + (strict ? "--strict " : "") + cmd + " " +
                       bridge + " - < " + path;
      auto r = sandbox_.ovs_ok({"sh", "-c", sh});
      ASSERT_TRUE(r) << r.error().message;
    };
    run("add-flows", false, adds);
    run("mod-flows", true, mods);
    run("del-flows", true, dels);
  }

  // Runs 'ops' random flow mods on 'bridge' in batches, tracking a model of
  // existing keys so every op is valid and produces exactly one event.
  Applied random_mods(FlowGen& gen, const std::string& bridge, int ops,
                      std::map<std::string, FlowGen::Flow>& live) {
    Applied a;
    int done = 0;
    while (done < ops) {
      std::vector<std::string> adds, mods, dels;
      std::set<std::string> touched;
      int n = std::min(ops - done, gen.pick(10, 60));
      for (int i = 0; i < n; ++i) {
        int op = live.empty() ? 0 : gen.pick(0, 9);
        if (op < 5) {
          FlowGen::Flow f = gen.random_flow();
          if (live.contains(f.key()) || touched.contains(f.key())) continue;
          touched.insert(f.key());
          f.actions = gen.random_actions(f);
          live[f.key()] = f;
          std::string cookie = fmt::format("cookie=0x{:x},", gen.pick(0, 0xffff));
          adds.push_back(cookie + f.key() + ",actions=" + f.actions);
          ++a.adds;
        } else {
          auto it = live.begin();
          std::advance(it, gen.pick(0, static_cast<int>(live.size()) - 1));
          if (touched.contains(it->first)) continue;
          touched.insert(it->first);
          if (op < 8) {
            // ovs-vswitchd reports MODIFIED only when actions or cookie change,
            // so make sure they do (goto_table:N is resubmit(,N) in OF1.0).
            std::string acts;
            do {
              acts = gen.random_actions(it->second);
            } while (same_actions(acts, it->second.actions));
            it->second.actions = acts;
            mods.push_back(it->first + ",actions=" + acts);
            ++a.modifies;
          } else {
            dels.push_back(it->first);
            live.erase(it);
            ++a.deletes;
          }
        }
        ++done;
      }
      apply_batch(bridge, adds, mods, dels);
      if (::testing::Test::HasFatalFailure()) return a;
    }
    return a;
  }

  OvsSandbox sandbox_;
  std::shared_ptr<FlowMonitorSet> monitors_;
};

TEST_F(OvsMonitorTest, ThousandRandomFlowModsMirrorEqualsDumpFlows) {
  FlowGen gen(20260601);
  std::map<std::string, std::map<std::string, FlowGen::Flow>> live;
  std::map<std::string, Applied> applied;
  // Interleave the bridges: 10 rounds of 50 ops on each = 1000 flow mods.
  for (int round = 0; round < 10; ++round) {
    for (const char* b : {"br0", "br1"}) {
      Applied a = random_mods(gen, b, 50, live[b]);
      ASSERT_FALSE(HasFatalFailure());
      applied[b].adds += a.adds;
      applied[b].modifies += a.modifies;
      applied[b].deletes += a.deletes;
    }
  }
  uint64_t total = 0;
  for (const char* b : {"br0", "br1"}) {
    const Applied& a = applied[b];
    total += a.adds + a.modifies + a.deletes;
    auto mirror = monitors_->mirror(b);
    // Quiet: every applied op has been reported.
    EXPECT_TRUE(wait_for([&] {
      auto s = mirror->snapshot();
      return s.total_changes(ChangeKind::kAdd) + s.total_changes(ChangeKind::kModify) +
                 s.total_changes(ChangeKind::kDelete) >=
             a.adds + a.modifies + a.deletes;
    }));
    expect_mirror_equals_dump(b);
    auto s = mirror->snapshot();
    EXPECT_EQ(s.total_changes(ChangeKind::kAdd), a.adds) << b;
    EXPECT_EQ(s.total_changes(ChangeKind::kModify), a.modifies) << b;
    EXPECT_EQ(s.total_changes(ChangeKind::kDelete), a.deletes) << b;
    // +1: the bridge's default "priority=0 actions=NORMAL" flow.
    EXPECT_EQ(s.total_flows(), live[b].size() + 1) << b;
    EXPECT_EQ(s.decode_errors, 0u) << b;
    EXPECT_TRUE(s.monitor_up);
    EXPECT_TRUE(s.view_complete);
    EXPECT_EQ(s.resyncs, 1u);
    std::printf("[ hvtel    ] %s: %lu adds, %lu modifies, %lu deletes, %lu flows, mirror == dump-flows\n",
                b, static_cast<unsigned long>(a.adds), static_cast<unsigned long>(a.modifies),
                static_cast<unsigned long>(a.deletes), static_cast<unsigned long>(s.total_flows()));
  }
  EXPECT_EQ(total, 1000u);

  // The collector exports what the mirrors hold.
  OvsFlowCollector collector(monitors_);
  auto families = collector.Collect();
  ASSERT_EQ(families.size(), 5u);
  double flows_sum = 0;
  for (const auto& m : families[0].metric) flows_sum += m.gauge.value;
  EXPECT_EQ(flows_sum, static_cast<double>(live["br0"].size() + live["br1"].size() + 2));
  ASSERT_EQ(families[2].name, "hvtel_ovs_monitor_up");
  for (const auto& m : families[2].metric) EXPECT_EQ(m.gauge.value, 1.0);
}

TEST_F(OvsMonitorTest, ResyncsAfterVswitchdRestarts) {
  FlowGen gen(777);
  std::map<std::string, std::map<std::string, FlowGen::Flow>> live;
  for (const char* b : {"br0", "br1"}) random_mods(gen, b, 60, live[b]);
  for (const char* b : {"br0", "br1"}) expect_mirror_equals_dump(b);

  constexpr int kRestarts = 3;
  for (int i = 1; i <= kRestarts; ++i) {
    pid_t old_pid = sandbox_.vswitchd_pid();
    auto st = sandbox_.restart_vswitchd(/*hard=*/true);
    ASSERT_TRUE(st) << st.error().message;
    ASSERT_NE(sandbox_.vswitchd_pid(), old_pid);
    // OpenFlow tables do not survive a vswitchd restart: the mirror must
    // reconnect, resync and drop the old flows.
    for (const char* b : {"br0", "br1"}) {
      auto mirror = monitors_->mirror(b);
      ASSERT_TRUE(wait_for([&] { return mirror->snapshot().resyncs == 1u + i; })) << b;
      live[b].clear();
      expect_mirror_equals_dump(b);
      random_mods(gen, b, 40, live[b]);
      expect_mirror_equals_dump(b);
      auto s = mirror->snapshot();
      EXPECT_EQ(s.disconnects, static_cast<uint64_t>(i));
      EXPECT_EQ(s.total_flows(), live[b].size() + 1);
    }
  }
  std::printf("[ hvtel    ] %d ovs-vswitchd restarts, both bridges resynced to dump-flows\n",
              kRestarts);
}

}  // namespace
}  // namespace hvtel::ovs
