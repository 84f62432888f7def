// Differential tests against a real ovs-vswitchd: the mirror built from the
// binary flow-monitor stream must equal `ovs-ofctl dump-flows --no-names`
// (parsed by our own parser) after random add/modify/delete flow mods, after
// the monitor is paused by a backlog, and after ovs-vswitchd is killed and
// restarted. br0 allows every OpenFlow version, so its monitor speaks
// OpenFlow 1.5; br1 is restricted to OpenFlow10 and uses the Nicira monitor,
// br13 to OpenFlow13 (the ONF monitor), br14 to OpenFlow10,OpenFlow14 (the
// standard one over 1.4) and br15 to OpenFlow15. All must give the same text.
//
// dump-flows speaks OpenFlow 1.0 only to a bridge that allows it, so br13 and
// br15 each have a twin (br13t, br15t: their version plus OpenFlow10, no
// monitor) that receives the same flow mods, groups and meters. The reference
// for br13/br15 is the twin's OpenFlow 1.0 dump, and every comparison also
// asserts that the bridge's own dump (over its version) equals the twin's.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "dump_flows_parser.h"
#include "ovs/openflow/flow_mirror.h"
#include "ovs/openflow/flow_monitor.h"
#include "ovs/openflow/ovs_collector.h"
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
    bool has_tcp = false;
    bool has_vlan = false;
    std::string actions;  // last applied, as given to ovs-ofctl
    std::string key() const {
      return "table=" + std::to_string(table) + ",priority=" + std::to_string(priority) +
             (match.empty() ? "" : "," + match);
    }
  };

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin(int pct) { return pick(1, 100) <= pct; }

  Flow random_flow() {
    Flow f{pick(0, 5), pick(0, 6) * 10 + pick(0, 3), "", false, false, false, ""};
    std::vector<std::string> parts;
    int l3 = pick(0, 3);  // 0 none, 1 ip, 2 tcp, 3 ct_state (implies ip)
    if (coin(40)) parts.push_back("in_port=" + std::to_string(pick(1, 6)));
    if (coin(25)) parts.push_back(fmt::format("dl_src=fa:16:3e:00:00:{:02x}", pick(1, 8)));
    if (coin(20)) parts.push_back(fmt::format("dl_dst=fa:16:3e:00:01:{:02x}", pick(1, 8)));
    if (coin(20)) {
      parts.push_back("dl_vlan=" + std::to_string(pick(1, 4095)));
      f.has_vlan = true;
    }
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
      f.has_tcp = true;
      parts.push_back("tp_dst=" + std::to_string(pick(1, 3) * 1000 + pick(0, 9)));
    }
    if (coin(30)) parts.push_back(fmt::format("reg5=0x{:x}", pick(1, 20)));
    if (l3 == 3) parts.push_back(coin(50) ? "ct_state=+trk+est" : "ct_state=+trk-new");
    if (coin(15)) parts.push_back(fmt::format("metadata=0x{:x}/0xff", pick(0, 255)));
    for (size_t i = 0; i < parts.size(); ++i) f.match += (i ? "," : "") + parts[i];
    return f;
  }

  // 'of11': installed over OpenFlow 1.1+, where strip_vlan (pop_vlan) needs a
  // VLAN match.
  std::string random_actions(const Flow& f, bool of11) {
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
        case 3: acts.push_back(of11 && !f.has_vlan ? "NORMAL" : "strip_vlan"); break;
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
        case 10:
          // OpenFlow 1.4 carries it as set_queue, output (max_len 0xffff), pop_queue.
          if (coin(30)) {
            acts.push_back(fmt::format("enqueue:{}:{}", pick(1, 30), pick(0, 7)));
            break;
          }
          [[fallthrough]];
        default: acts.push_back("output:" + std::to_string(pick(1, 30))); break;
      }
    }
    std::string s;
    for (size_t i = 0; i < acts.size(); ++i) s += (i ? "," : "") + acts[i];
    // goto_table must come last and move forward.
    if (f.table < 5 && coin(15)) s += fmt::format(",goto_table:{}", pick(f.table + 1, 5));
    return s;
  }

  // Actions in the form an OpenFlow 1.3 controller (os-ken) installs them:
  // Set-Field, push/pop_vlan, group, meter and write_actions instructions.
  // Each has its own OpenFlow 1.4 encoding but one OpenFlow 1.0 text.
  std::string random_actions13(const Flow& f) {
    std::vector<std::string> acts;
    if (coin(15)) acts.push_back(fmt::format("meter:{}", pick(1, 2)));
    bool pushed = false;  // one VLAN push or pop per flow keeps OVS's tag checks happy
    auto push = [&](std::string a) {
      if (pushed) return fmt::format("output:{}", pick(1, 30));
      pushed = true;
      return a;
    };
    int n = pick(1, 3);
    for (int i = 0; i < n; ++i) {
      switch (pick(0, 12)) {
        case 0: acts.push_back("output:" + std::to_string(pick(1, 30))); break;
        case 1: acts.push_back(fmt::format("set_field:0x{:x}->reg5", pick(0, 1000))); break;
        case 2:
          acts.push_back(
              push(fmt::format("push_vlan:0x8100,set_field:{}->vlan_vid", 4096 + pick(1, 4094))));
          break;
        case 3: acts.push_back(f.has_vlan ? push("pop_vlan") : push("push_vlan:0x88a8")); break;
        case 4: acts.push_back(fmt::format("set_field:fa:16:3e:00:02:{:02x}->eth_dst", pick(1, 255))); break;
        case 5: acts.push_back(fmt::format("group:{}", pick(1, 3))); break;
        case 6:
          acts.push_back(f.has_ip ? fmt::format("set_field:10.1.{}.{}->ip_dst", pick(0, 9), pick(1, 9))
                                  : fmt::format("set_queue:{}", pick(0, 7)));
          break;
        case 7:
          acts.push_back(f.has_ip ? "dec_ttl"
                                  : push(fmt::format("push_vlan:0x8100,set_field:{}->vlan_pcp",
                                                     pick(0, 7))));
          break;
        case 8:
          acts.push_back(f.has_tcp ? fmt::format("set_field:{}->tcp_dst", pick(1, 65535))
                                   : fmt::format("resubmit(,{})", pick(0, 80)));
          break;
        case 9:
          acts.push_back(f.has_ip ? fmt::format("set_field:{}->ip_dscp", pick(0, 63))
                                  : fmt::format("set_field:0x{:x}->tun_id", pick(1, 99999)));
          break;
        case 10:
          acts.push_back(f.has_ip ? "ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark))"
                                  : "NORMAL");
          break;
        case 11:
          acts.push_back(f.has_ip ? fmt::format("mod_nw_ttl:{}", pick(1, 255))
                                  : fmt::format("set_field:0x{:x}->pkt_mark", pick(1, 99999)));
          break;
        // No enqueue here: OpenFlow 1.3 turns it into set_queue, output and
        // pop_queue inside ovs-vswitchd, which OpenFlow 1.4 sends exactly
        // like an OpenFlow 1.0 enqueue (read as enqueue; see random_actions).
        default: acts.push_back(fmt::format("set_queue:{}", pick(0, 7))); break;
      }
    }
    if (coin(15)) acts.push_back("clear_actions");
    if (coin(20)) acts.push_back(fmt::format("write_actions(output:{})", pick(1, 30)));
    // Instruction order: ... write_metadata, goto_table. Over OpenFlow 1.0
    // write_metadata followed by resubmit does not decode (OVS rejects the
    // order), which breaks dump-flows for the whole bridge: never both.
    if (f.table < 5 && coin(15)) {
      acts.push_back(fmt::format("goto_table:{}", pick(f.table + 1, 5)));
    } else if (coin(10)) {
      acts.push_back(fmt::format("write_metadata:0x{:x}/0xff", pick(0, 255)));
    }
    std::string s;
    for (size_t i = 0; i < acts.size(); ++i) s += (i ? "," : "") + acts[i];
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
  uint64_t of13_ops = 0;  // ops sent as OpenFlow 1.3 (Set-Field, instructions)
};

// A monitor connection the test drives by hand, so that it can stop reading
// and let ovs-vswitchd's send queue grow until it pauses the monitor.
class ManualMonitor {
 public:
  ManualMonitor(std::string path, FlowMonitorSink& sink) : path_(std::move(path)), session_(sink) {}
  ~ManualMonitor() {
    if (fd_ >= 0) close(fd_);
  }
  ManualMonitor(const ManualMonitor&) = delete;
  ManualMonitor& operator=(const ManualMonitor&) = delete;

  Status connect() {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail_errno(errno, "socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return fail_errno(errno, "connect " + path_);
    }
    session_.start();
    return flush();
  }

  // Reads and feeds until pred() holds; false on timeout or a broken connection.
  template <typename Pred>
  bool pump_until(Pred pred, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline || !read_once(50)) return false;
    }
    return true;
  }

  // Feeds whatever has already arrived; false on a broken connection.
  bool drain() {
    for (int i = 0; i < 64 && ready(); ++i) {
      if (!read_once(0)) return false;
    }
    return true;
  }

  const FlowMonitorSession& session() const { return session_; }

 private:
  bool ready() const {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }

  // Waits up to timeout_ms for data and feeds one read of it.
  bool read_once(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return true;
    uint8_t buf[65536];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    auto st = session_.feed(ByteView(buf, static_cast<size_t>(n)));
    EXPECT_TRUE(st) << (st ? "" : st.error().message);
    return st && flush();
  }

  Status flush() {
    Bytes out = session_.take_output();
    if (!out.empty() && send(fd_, out.data(), out.size(), MSG_NOSIGNAL) !=
                            static_cast<ssize_t>(out.size())) {
      return fail_errno(errno, "send");
    }
    return {};
  }

  std::string path_;
  int fd_ = -1;
  FlowMonitorSession session_;
};

// Records whether the view was complete right after PAUSED and RESUMED.
struct PauseProbe : FlowMirror {
  using FlowMirror::FlowMirror;
  std::vector<std::string> seen;
  uint64_t table7_at_pause = 0;
  void on_paused() override {
    FlowMirror::on_paused();
    seen.push_back(view_complete() ? "paused/complete" : "paused/incomplete");
    auto s = snapshot();
    if (s.tables.contains(7)) table7_at_pause = s.tables.at(7).flows;
  }
  void on_resumed() override {
    FlowMirror::on_resumed();
    seen.push_back(view_complete() ? "resumed/complete" : "resumed/incomplete");
  }
};

class OvsMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(OvsSandbox::available(), "Open vSwitch (ovs-vswitchd, ovs-ofctl) not installed");
    auto st = sandbox_.start();
    ASSERT_TRUE(st) << st.error().message;
    const std::map<std::string, std::string> protocols = {
        {"br1", "OpenFlow10"},            {"br13", "OpenFlow13"},
        {"br14", "OpenFlow10,OpenFlow14"}, {"br15", "OpenFlow15"},
        {"br13t", "OpenFlow10,OpenFlow13"}, {"br15t", "OpenFlow10,OpenFlow15"}};
    for (const char* b : {"br0", "br1", "br13", "br13t", "br14", "br15", "br15t"}) {
      auto add = sandbox_.add_bridge(b);
      ASSERT_TRUE(add) << add.error().message;
      if (!protocols.contains(b)) continue;
      auto restrict = sandbox_.ovs_ok({"ovs-vsctl", "--db=unix:" + sandbox_.dir() + "/db.sock",
                                       "set", "bridge", b, "protocols=" + protocols.at(b)});
      ASSERT_TRUE(restrict) << restrict.error().message;
    }
    add_groups_and_meters();
    monitors_ = std::make_shared<FlowMonitorSet>(sandbox_.dir(),
                                                 FlowMonitorClient::Options{std::chrono::milliseconds(50),
                                                                            std::chrono::milliseconds(500)});
    auto bridges = list_mgmt_bridges(sandbox_.dir());
    ASSERT_TRUE(bridges);
    ASSERT_EQ(*bridges, (std::vector<std::string>{"br0", "br1", "br13", "br13t", "br14", "br15",
                                                  "br15t"}));
    monitors_->set_bridges(kBridges);
    for (const auto& b : kBridges) {
      ASSERT_TRUE(wait_for([&] { return monitors_->mirror(b)->view_complete(); }))
          << "initial snapshot of " << b;
      EXPECT_EQ(monitors_->mirror(b)->snapshot().protocol, expected_protocol(b)) << b;
    }
  }

  // The monitored bridges (the twins are not monitored).
  inline static const std::vector<std::string> kBridges = {"br0", "br1", "br13", "br14", "br15"};

  // The OpenFlow version ovs-ofctl must speak to 'bridge' ("" = its default, 1.0).
  static std::string ofctl_version(const std::string& bridge) {
    if (bridge.starts_with("br13")) return "OpenFlow13";
    if (bridge.starts_with("br15")) return "OpenFlow15";
    return "";
  }
  // The version for OpenFlow 1.3-style flow mods, groups and meters.
  static std::string of13_version(const std::string& bridge) {
    if (!ofctl_version(bridge).empty()) return ofctl_version(bridge);
    return bridge == "br14" ? "OpenFlow14" : "OpenFlow13";
  }
  // The bridge whose OpenFlow 1.0 dump is the reference for 'bridge'.
  static std::string reference_bridge(const std::string& bridge) {
    return bridge == "br13" || bridge == "br15" ? bridge + "t" : bridge;
  }
  // 'bridge' and, for br13/br15, its twin: every flow, group and meter mod goes to both.
  static std::vector<std::string> with_twin(const std::string& bridge) {
    if (reference_bridge(bridge) == bridge) return {bridge};
    return {bridge, reference_bridge(bridge)};
  }

  // Runs ovs-ofctl 'cmd' on 'bridge' (and its twin) over 'version'.
  void ofctl(const std::string& version, const std::string& cmd, const std::string& bridge,
             const std::string& arg) {
    for (const auto& b : with_twin(bridge)) {
      std::vector<std::string> argv{"ovs-ofctl"};
      if (!version.empty()) argv.insert(argv.end(), {"-O", version});
      argv.insert(argv.end(), {cmd, b, arg});
      auto r = sandbox_.ovs_ok(argv);
      ASSERT_TRUE(r) << r.error().message;
    }
  }

  // Groups 1-3 and meters 1-2 for the OpenFlow 1.3 actions (they do not
  // survive an ovs-vswitchd restart). br1 (OpenFlow 1.0) has neither.
  void add_groups_and_meters() {
    for (const auto& b : kBridges) {
      if (b == "br1") continue;
      for (int i = 1; i <= 3; ++i) {
        ofctl(of13_version(b), "add-group", b,
              fmt::format("group_id={},type=all,bucket=output:{}", i, i));
      }
      for (int i = 1; i <= 2; ++i) {
        ofctl(of13_version(b), "add-meter", b,
              fmt::format("meter={},kbps,band=type=drop,rate={}", i, 100 * i));
      }
    }
  }

  static MonitorProtocol expected_protocol(const std::string& bridge) {
    if (bridge == "br1") return MonitorProtocol::kNxOf10;
    if (bridge == "br13") return MonitorProtocol::kOnfOf13;
    if (bridge == "br14") return MonitorProtocol::kOf14;
    return MonitorProtocol::kOf15;  // br0 allows every version, br15 only 1.5
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

  // The OpenFlow 1.0 dump that is the reference for 'bridge'; for br13/br15
  // (no OpenFlow 1.0) their twin's, after checking that the twin holds
  // exactly the bridge's flows (both dumped over the bridge's version).
  std::set<std::string> dump_set(const std::string& bridge) {
    if (reference_bridge(bridge) != bridge) {
      auto native = dump_set_over(bridge, ofctl_version(bridge));
      auto twin = dump_set_over(reference_bridge(bridge), ofctl_version(bridge));
      if (native != twin) {
        ADD_FAILURE() << bridge << " and its twin differ over " << ofctl_version(bridge);
        return {};
      }
    }
    return dump_set_over(reference_bridge(bridge), "");
  }

  std::set<std::string> dump_set_over(const std::string& bridge, const std::string& version) {
    std::vector<std::string> argv{"ovs-ofctl"};
    if (!version.empty()) argv.insert(argv.end(), {"-O", version});
    argv.insert(argv.end(), {"dump-flows", "--no-names", bridge});
    auto out = sandbox_.ovs_ok(argv);
    EXPECT_TRUE(out) << (out ? "" : out.error().message);
    if (!out) return {};
    auto parsed = parse_dump_flows(*out);
    EXPECT_TRUE(parsed.errors.empty()) << parsed.errors.front();
    std::set<std::string> s;
    for (const auto& f : parsed.flows) s.insert(f.id.to_string());
    return s;
  }

  static std::set<std::string> mirror_set(const FlowMirror& m) {
    std::set<std::string> s;
    for (const auto& id : m.identities()) s.insert(id.to_string());
    return s;
  }

  void expect_mirror_equals_dump(const std::string& bridge) {
    auto mirror = monitors_->mirror(bridge);
    expect_equals_dump(bridge, *mirror, [] { return true; });
  }

  // Waits until the mirror equals the dump (the monitor stream is
  // asynchronous; 'pump' reads more of it when the test drives the
  // connection), then asserts equality with a readable diff.
  template <typename Pump>
  void expect_equals_dump(const std::string& bridge, const FlowMirror& m, Pump pump) {
    std::set<std::string> dump;
    bool same = wait_for([&] {
      if (!pump()) return false;
      dump = dump_set(bridge);
      return m.view_complete() && mirror_set(m) == dump;
    });
    std::set<std::string> mirror = mirror_set(m);
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
  // through one ovs-ofctl invocation, over OpenFlow 1.0 + NXM (the legacy
  // Neutron agent) or OpenFlow 1.3 (os-ken); over the bridge's only version
  // on br13/br14/br15, and to the twin too. A batch touches every key at
  // most once.
  void apply_batch(const std::string& bridge, const std::vector<std::string>& adds,
                   const std::vector<std::string>& mods, const std::vector<std::string>& dels,
                   bool of13) {
    std::string version = of13 ? of13_version(bridge) : ofctl_version(bridge);
    auto run = [&](const char* cmd, bool strict, const std::vector<std::string>& lines) {
      if (lines.empty()) return;
      std::string path = sandbox_.dir() + "/batch-" + bridge + "-" + cmd + ".txt";
      {
        std::ofstream f(path);
        for (const auto& l : lines) f << l << "\n";
      }
      // mod-flows/del-flows read a file only from stdin ("-").
      for (const auto& b : with_twin(bridge)) {
        std::string sh = std::string("exec ovs-ofctl ") +
                         (version.empty() ? "" : "-O " + version + " ") +
                         (strict ? "--strict " : "") + cmd + " " + b + " - < " + path;
        auto r = sandbox_.ovs_ok({"sh", "-c", sh});
        ASSERT_TRUE(r) << r.error().message;
      }
    };
    run("add-flows", false, adds);
    run("mod-flows", true, mods);
    run("del-flows", true, dels);
  }

  // Runs 'ops' random flow mods on 'bridge' in batches, tracking a model of
  // existing keys so every op is valid and produces exactly one event.
  // Bridges other than br1 also get OpenFlow 1.3-style batches (os-ken's
  // Set-Field, push_vlan, meter, ...); br13/br14/br15 get every batch over
  // their own version, so OpenFlow 1.0-style actions (load, move, learn,
  // enqueue) reach them in 1.3/1.4/1.5 encodings.
  Applied random_mods(FlowGen& gen, const std::string& bridge, int ops,
                      std::map<std::string, FlowGen::Flow>& live) {
    Applied a;
    int done = 0;
    while (done < ops) {
      std::vector<std::string> adds, mods, dels;
      std::set<std::string> touched;
      int n = std::min(ops - done, gen.pick(10, 60));
      const bool of13 = bridge != "br1" && gen.coin(40);
      auto actions = [&](const FlowGen::Flow& f) {
        return of13 ? gen.random_actions13(f)
                    : gen.random_actions(f, !ofctl_version(bridge).empty());
      };
      for (int i = 0; i < n; ++i) {
        int op = live.empty() ? 0 : gen.pick(0, 9);
        if (op < 5) {
          FlowGen::Flow f = gen.random_flow();
          // "table=0,priority=0" is the bridge's own NORMAL flow: an add
          // there would be a modify.
          if (live.contains(f.key()) || touched.contains(f.key()) ||
              f.key() == "table=0,priority=0") {
            continue;
          }
          touched.insert(f.key());
          f.actions = actions(f);
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
              acts = actions(it->second);
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
        if (of13) ++a.of13_ops;
      }
      apply_batch(bridge, adds, mods, dels, of13);
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
  // Interleave the bridges: 10 rounds of 50 ops on each of 5 = 2500 flow mods.
  for (int round = 0; round < 10; ++round) {
    for (const auto& b : kBridges) {
      Applied a = random_mods(gen, b, 50, live[b]);
      ASSERT_FALSE(HasFatalFailure());
      applied[b].adds += a.adds;
      applied[b].modifies += a.modifies;
      applied[b].deletes += a.deletes;
      applied[b].of13_ops += a.of13_ops;
    }
  }
  uint64_t total = 0, live_total = 0;
  for (const auto& b : kBridges) {
    const Applied& a = applied[b];
    live_total += live[b].size() + 1;
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
    EXPECT_EQ(s.protocol, expected_protocol(b)) << b;
    std::printf("[ hvtel    ] %s (%s): %lu adds, %lu modifies, %lu deletes (%lu OpenFlow "
                "1.3-style), %lu flows, mirror == dump-flows\n",
                b.c_str(), monitor_protocol_name(s.protocol), static_cast<unsigned long>(a.adds),
                static_cast<unsigned long>(a.modifies), static_cast<unsigned long>(a.deletes),
                static_cast<unsigned long>(a.of13_ops), static_cast<unsigned long>(s.total_flows()));
  }
  EXPECT_EQ(total, 2500u);
  // The OpenFlow 1.3 forms really were exercised on every bridge but br1.
  for (const char* b : {"br0", "br13", "br14", "br15"}) EXPECT_GE(applied[b].of13_ops, 100u) << b;
  EXPECT_EQ(applied["br1"].of13_ops, 0u);

  // The collector exports what the mirrors hold.
  OvsFlowCollector collector(monitors_);
  auto families = collector.Collect();
  ASSERT_EQ(families.size(), 7u);
  double flows_sum = 0;
  for (const auto& m : families[0].metric) flows_sum += m.gauge.value;
  EXPECT_EQ(flows_sum, static_cast<double>(live_total));
  ASSERT_EQ(families[2].name, "hvtel_ovs_monitor_up");
  for (const auto& m : families[2].metric) EXPECT_EQ(m.gauge.value, 1.0);
  ASSERT_EQ(families[5].name, "hvtel_ovs_monitor_info");
  std::map<std::string, std::string> protocols;
  for (const auto& m : families[5].metric) protocols[m.label.at(0).value] = m.label.at(1).value;
  EXPECT_EQ(protocols, (std::map<std::string, std::string>{{"br0", "openflow15"},
                                                            {"br1", "openflow10_nx"},
                                                            {"br13", "openflow13_onf"},
                                                            {"br14", "openflow14"},
                                                            {"br15", "openflow15"}}));
  ASSERT_EQ(families[6].name, "hvtel_ovs_monitor_version_mismatches_total");
  ASSERT_EQ(families[6].metric.size(), 5u);
  for (const auto& m : families[6].metric) EXPECT_EQ(m.counter.value, 0.0);
}

TEST_F(OvsMonitorTest, ResyncsAfterVswitchdRestarts) {
  FlowGen gen(777);
  std::map<std::string, std::map<std::string, FlowGen::Flow>> live;
  for (const auto& b : kBridges) random_mods(gen, b, 60, live[b]);
  for (const auto& b : kBridges) expect_mirror_equals_dump(b);

  constexpr int kRestarts = 3;
  for (int i = 1; i <= kRestarts; ++i) {
    pid_t old_pid = sandbox_.vswitchd_pid();
    auto st = sandbox_.restart_vswitchd(/*hard=*/true);
    ASSERT_TRUE(st) << st.error().message;
    ASSERT_NE(sandbox_.vswitchd_pid(), old_pid);
    add_groups_and_meters();
    ASSERT_FALSE(HasFatalFailure());
    // OpenFlow tables do not survive a vswitchd restart: the mirror must
    // reconnect, resync and drop the old flows.
    for (const auto& b : kBridges) {
      auto mirror = monitors_->mirror(b);
      ASSERT_TRUE(wait_for([&] { return mirror->snapshot().resyncs == 1u + i; })) << b;
      live[b].clear();
      expect_mirror_equals_dump(b);
      random_mods(gen, b, 40, live[b]);
      expect_mirror_equals_dump(b);
      auto s = mirror->snapshot();
      EXPECT_EQ(s.disconnects, static_cast<uint64_t>(i));
      EXPECT_EQ(s.total_flows(), live[b].size() + 1);
      EXPECT_EQ(s.protocol, expected_protocol(b)) << b;
      EXPECT_EQ(s.decode_errors, 0u) << b;
    }
  }
  std::printf("[ hvtel    ] %d ovs-vswitchd restarts, all 5 bridges (openflow15, openflow10_nx, "
              "openflow13_onf, openflow14, openflow15) resynced to dump-flows\n",
              kRestarts);
}

// A monitor that stops reading makes ovs-vswitchd queue updates; past 128 KiB
// it sends PAUSED, then only deletions of older flows, and once the queue has
// drained it refreshes what changed meanwhile and sends RESUMED (OpenFlow
// 1.4/1.5: entries in OFPMP_FLOW_MONITOR replies; Nicira and ONF: vendor
// messages).
TEST_F(OvsMonitorTest, PausedAndResumedOnEveryProtocol) {
  FlowGen gen(4242);
  std::map<std::string, std::map<std::string, FlowGen::Flow>> live;
  for (const auto& b : kBridges) {
    PauseProbe mirror(b);
    ManualMonitor mon(sandbox_.mgmt_socket(b), mirror);
    auto st = mon.connect();
    ASSERT_TRUE(st) << st.error().message;
    ASSERT_TRUE(mon.pump_until([&] { return mirror.view_complete(); })) << b;
    EXPECT_EQ(mon.session().protocol(), expected_protocol(b)) << b;
    random_mods(gen, b, 60, live[b]);
    expect_equals_dump(b, mirror, [&] { return mon.drain(); });

    // Stop reading. 3000 flows with 200-byte notes (about 1.5 MB of updates)
    // overflow the socket buffer and the 128 KiB queue; then delete and
    // modify older flows while paused.
    std::string path = sandbox_.dir() + "/backlog-" + b + ".txt";
    {
      std::ofstream f(path);
      std::string note;
      for (int i = 0; i < 200; ++i) note += i ? ".ab" : "ab";
      for (int i = 0; i < 3000; ++i) {
        f << fmt::format("table=7,priority={},reg1={},actions=note:{},output:1\n", i % 100, i,
                         note);
      }
    }
    ofctl(ofctl_version(b), "add-flows", b, path);
    ASSERT_FALSE(HasFatalFailure());
    std::vector<std::string> dels, mods;
    for (auto it = live[b].begin(); it != live[b].end() && dels.size() < 5;) {
      dels.push_back(it->first);
      it = live[b].erase(it);
    }
    for (auto& [key, f] : live[b]) {
      if (mods.size() == 5) break;
      f.actions = "output:29,output:30";
      mods.push_back(key + ",actions=" + f.actions);
    }
    apply_batch(b, {}, mods, dels, false);
    ASSERT_FALSE(HasFatalFailure());

    // Read again: PAUSED, the backlog, RESUMED.
    ASSERT_TRUE(mon.pump_until([&] { return mirror.seen.size() == 2; }, std::chrono::seconds(60)))
        << b << " saw " << mirror.seen.size() << " of PAUSED/RESUMED";
    EXPECT_EQ(mirror.seen, (std::vector<std::string>{"paused/incomplete", "resumed/complete"})) << b;
    expect_equals_dump(b, mirror, [&] { return mon.drain(); });
    auto s = mirror.snapshot();
    EXPECT_EQ(s.pauses, 1u) << b;
    EXPECT_EQ(s.decode_errors, 0u) << b;
    EXPECT_EQ(s.protocol, expected_protocol(b)) << b;
    EXPECT_EQ(s.total_flows(), live[b].size() + 3000 + 1) << b;
    EXPECT_EQ(s.tables.at(7).flows, 3000u) << b;
    // The pause came in the middle of the backlog, not after it.
    EXPECT_GT(mirror.table7_at_pause, 0u) << b;
    EXPECT_LT(mirror.table7_at_pause, 3000u) << b;
    std::printf("[ hvtel    ] %s (%s): PAUSED after %lu of 3000 backlog flows, RESUMED, "
                "%lu flows == dump-flows\n",
                b.c_str(), monitor_protocol_name(s.protocol),
                static_cast<unsigned long>(mirror.table7_at_pause),
                static_cast<unsigned long>(s.total_flows()));
  }
}

}  // namespace
}  // namespace hvtel::ovs
