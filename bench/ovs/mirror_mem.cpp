// Flow mirror memory at N Neutron-like flows (docs/performance.md §3, "Flow
// mirror memory"). No OVS and no root needed: the flows are encoded as
// OpenFlow 1.5 OFPMP_FLOW_MONITOR reply bodies (what ovs-vswitchd 3.1 sends
// the agent) and go through the agent's own path, decode_flow_updates14() ->
// FlowMirror, in multipart-sized batches that are freed as they go, so the
// bench holds no copy of the flows itself.
//
// Bytes per flow are the growth of malloc's in-use bytes (mallinfo2) and of
// VmRSS over a baseline taken in the same process just before the first flow:
//   resync       the INITIAL snapshot of N flows (agent start);
//   peak         during a second resync (reconnect), both tables alive;
//   re-resync    after it completed (the old table freed);
//   view         plus the rule engine's converted flows (BridgeTracker::read);
//   churn        after N/10 MODIFIED updates with new actions;
//   re-view      after the rule engine converted the changed bridge again.
//
//   hvtel-bench-mirror-mem [N ...]   default: 20000 100000, one child process each
//   hvtel-bench-mirror-mem --show    the 50 flows of one port, as the mirror holds them
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ovs/openflow/flow_mirror.h"
#include "ovs/openflow/flow_monitor.h"
#include "ovs/openflow/nxm.h"
#include "ovs_bytes.h"
#include "ovs/service/flow_view.h"
#include "match_builders.h"

namespace hvtel::ovs {
namespace {

constexpr uint64_t kCookie = 0x9d7b3c5e1a2f4e60;  // one Neutron agent run
constexpr int kFlowsPerPort = 50;
constexpr int kBatch = 1000;  // updates per reply body, about one multipart part

using W = testbytes::B;

// Patches a length field written before the size was known.
void set_be16(Bytes& b, size_t at, size_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

// OpenFlow 1.3+ actions.
Bytes output(uint32_t port) { return W().u16(0).u16(16).u32(port).u16(0xffff).u32(0).u16(0).b; }
Bytes pop_vlan() { return W().u16(18).u16(8).u32(0).b; }
Bytes set_field(uint16_t cls, uint8_t field, const Bytes& value) {
  W a;
  a.u16(25).u16(0).u32((uint32_t{cls} << 16) | (uint32_t{field} << 9) | value.size()).raw(value);
  a.pad8();
  set_be16(a.b, 2, a.b.size());
  return a.b;
}
Bytes set_reg(uint8_t reg, uint32_t v) { return set_field(0x0001, reg, W().u32(v).b); }
Bytes set_vlan(uint16_t vid) { return set_field(0x8000, 6, W().u16(0x1000 | vid).b); }
Bytes resubmit(uint8_t table) {
  return W().u16(0xffff).u16(16).u32(0x2320).u16(14).u16(0xfff8).u8(table).u8(0).u16(0).b;
}
Bytes conjunction(uint32_t id, uint8_t clause, uint8_t n) {
  return W().u16(0xffff).u16(16).u32(0x2320).u16(34).u8(clause - 1).u8(n).u32(id).b;
}
// ct(table=T,zone=NXM_NX_REG6[0..15])
Bytes ct(uint8_t table) {
  return W().u16(0xffff).u16(24).u32(0x2320).u16(35).u16(0).u32(0x00010c04).u16(15).u8(table)
      .u8(0).u16(0).u16(0).b;
}
// Instructions: apply_actions(...) then an optional goto_table.
Bytes instructions(const std::vector<Bytes>& actions, int goto_table = -1) {
  W i;
  if (!actions.empty()) {
    Bytes body;
    for (const auto& a : actions) body.insert(body.end(), a.begin(), a.end());
    i.u16(4).u16(static_cast<uint16_t>(8 + body.size())).u32(0).raw(body);
  }
  if (goto_table >= 0) i.u16(1).u16(8).u8(static_cast<uint8_t>(goto_table)).u8(0).u16(0);
  return i.b;
}

struct Flow {
  uint8_t table;
  uint16_t priority;
  Match match;
  Bytes instructions;
};

Bytes mac(int port) {
  return {0xfa, 0x16, 0x3e, static_cast<uint8_t>(port >> 16), static_cast<uint8_t>(port >> 8),
          static_cast<uint8_t>(port)};
}
uint32_t ip(int net, int host) { return (10u << 24) | (uint32_t(net) << 16) | uint32_t(host); }

// Flow i of the table: port p = i / 50 (ofport p + 1) gets the per-port
// OVS-firewall flows of a Neutron br-int (tables 0, 24, 25, 60, 71, 94, a
// VLAN translation) and 40 security-group flows in table 82 (remote IPs, TCP
// ports; conjunction or goto_table). 'gen' changes the actions (churn).
Flow neutron_flow(int i, int gen = 0) {
  const int p = i / kFlowsPerPort, k = i % kFlowsPerPort;
  const uint32_t ofport = static_cast<uint32_t>(p + 1);
  const uint16_t vlan = static_cast<uint16_t>(p % 64 + 1);  // a network per 64 ports... or so
  const uint32_t addr = ip(p / 250, p % 250 + 2);
  Flow f{};
  Match& m = f.match;
  auto eth = [&](FieldId id) { match_set_bytes(m, id, mac(p)); };
  switch (k) {
    case 0:
      f = {0, 10, {}, instructions({resubmit(24)})};
      match_set(m, FieldId::kEthType, 0x0806);
      match_set(m, FieldId::kInPort, ofport);
      break;
    case 1:
      f = {0, 9, {}, instructions({}, 25)};
      match_set(m, FieldId::kInPort, ofport);
      break;
    case 2:
      f = {24, 2, {}, instructions({}, 25)};
      match_set(m, FieldId::kEthType, 0x0806);
      match_set(m, FieldId::kInPort, ofport);
      match_set(m, FieldId::kArpSpa, addr);
      break;
    case 3:
      f = {25, 2, {}, instructions({}, 60)};
      match_set(m, FieldId::kInPort, ofport);
      eth(FieldId::kEthSrc);
      break;
    case 4:
      f = {60, 100, {}, instructions({set_reg(5, ofport), set_reg(6, vlan), resubmit(71)})};
      match_set(m, FieldId::kInPort, ofport);
      break;
    case 5:
      f = {60, 90, {}, instructions({set_reg(5, ofport), set_reg(6, vlan), pop_vlan(), resubmit(81)})};
      match_set(m, FieldId::kVlanTci, 0x1000 | vlan, 0x1fff);
      eth(FieldId::kEthDst);
      break;
    case 6:
      f = {71, 65, {}, instructions({}, 73)};
      match_set(m, FieldId::kEthType, 0x0800);
      match_set(m, FieldId::kInPort, ofport);
      match_set(m, FieldId::kReg5, ofport);
      eth(FieldId::kEthSrc);
      match_set(m, FieldId::kIpv4Src, addr);
      break;
    case 7:
      f = {71, 65, {}, instructions({ct(72)})};
      match_set(m, FieldId::kCtState, 0x00, 0x20);  // -trk
      match_set(m, FieldId::kEthType, 0x0800);
      match_set(m, FieldId::kReg5, ofport);
      break;
    case 8:
      f = {94, 12, {}, instructions({pop_vlan(), output(ofport)})};
      match_set(m, FieldId::kReg6, vlan);
      eth(FieldId::kEthDst);
      break;
    case 9:
      f = {0, 3, {}, instructions({set_vlan(vlan), output(0xfffffffa)})};  // NORMAL
      match_set(m, FieldId::kInPort, 1);
      match_set(m, FieldId::kVlanTci, 0x1000 | static_cast<uint16_t>(100 + p % 3900), 0x1fff);
      break;
    default: {  // security-group rules: remote IP, TCP port
      const int r = k - 10;
      const bool conj = r % 2 == 0;
      f = {82, static_cast<uint16_t>(70 + r % 4), {},
           conj ? instructions({conjunction(ofport * 8 + r % 4, 1, 2)})
                : instructions({set_reg(7, static_cast<uint32_t>(gen))}, 92)};
      match_set(m, FieldId::kCtState, 0x21, 0x23);  // +new-est+trk
      match_set(m, FieldId::kEthType, 0x0800);
      match_set(m, FieldId::kReg5, ofport);
      match_set(m, FieldId::kIpv4Src, ip(200 + r % 50, p % 250 + 1));
      if (!conj) {
        match_set(m, FieldId::kIpProto, 6);
        match_set(m, FieldId::kTcpDst, static_cast<uint64_t>(1000 + r));
      }
      break;
    }
  }
  if (gen && k < 10) f.instructions = instructions({set_reg(7, static_cast<uint32_t>(gen))}, 92);
  return f;
}

// ofp_flow_update_full with an OXM match (NXM headers where OVS has no OXM one).
void encode_update(Bytes& body, uint16_t event, const Flow& f) {
  Bytes tlvs = encode_nxm(f.match);
  W match;
  match.u16(1).u16(static_cast<uint16_t>(4 + tlvs.size())).raw(tlvs).pad8();
  W u;
  u.u16(0).u16(event).u8(f.table).u8(0).u16(0).u16(0).u16(f.priority).u32(0).u64(kCookie);
  u.raw(match.b).raw(f.instructions);
  set_be16(u.b, 0, u.b.size());
  body.insert(body.end(), u.b.begin(), u.b.end());
}

// Feeds flows [0, n) (generation 'gen') in reply-sized bodies.
void feed(FlowMirror& mirror, int n, uint16_t event, bool initial, int gen = 0, int step = 1) {
  Bytes body;
  for (int i = 0, in_body = 0; i < n; i += step) {
    encode_update(body, event, neutron_flow(i, gen));
    if (++in_body == kBatch || i + step >= n) {
      auto st = decode_flow_updates14(body, initial, mirror);
      if (!st) {
        std::fprintf(stderr, "decode: %s\n", st.error().message.c_str());
        std::exit(1);
      }
      body.clear();
      body.shrink_to_fit();
      in_body = 0;
    }
  }
}

struct Mem {
  long long heap = 0;  // malloc in-use bytes (arena + mmapped chunks)
  long long rss = 0;   // VmRSS bytes
};
Mem mem() {
  Mem m;
  struct mallinfo2 mi = mallinfo2();
  m.heap = static_cast<long long>(mi.uordblks + mi.hblkhd);
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss = std::atoll(line.c_str() + 6) * 1024;
  }
  return m;
}

void report(const char* phase, const Mem& base, int n) {
  Mem now = mem();
  std::printf("%-8d %-10s %10.1f %10.1f %10.1f %10.1f\n", n, phase,
              double(now.heap - base.heap) / 1048576.0, double(now.heap - base.heap) / n,
              double(now.rss - base.rss) / 1048576.0, double(now.rss - base.rss) / n);
  std::fflush(stdout);
}

int run(int n) {
  // Warm up everything that is allocated once (fmt, iostreams, the decoder's
  // tables) so the baseline holds it.
  {
    FlowMirror warm("warm");
    feed(warm, kFlowsPerPort, 0, true);
  }
  Mem base = mem();
  auto mirror = std::make_shared<FlowMirror>("br-int");
  mirror->set_change_callback([](const FlowChange&) {});  // like the agent's event ring
  mirror->on_protocol(MonitorProtocol::kOf15);
  mirror->on_resync_start();
  feed(*mirror, n, 0, true);
  mirror->on_resync_complete();
  if (mirror->snapshot().total_flows() != static_cast<uint64_t>(n)) {
    std::fprintf(stderr, "mirror holds %llu flows, expected %d\n",
                 static_cast<unsigned long long>(mirror->snapshot().total_flows()), n);
    return 1;
  }
  report("resync", base, n);
  mirror->on_disconnect("bench");
  mirror->on_resync_start();
  feed(*mirror, n, 0, true);
  report("peak", base, n);
  mirror->on_resync_complete();
  report("re-resync", base, n);
  ovs_service::BridgeTracker tracker;
  std::vector<std::shared_ptr<const FlowMirror>> mirrors{mirror};
  auto view = [&] {
    const auto& flows = tracker.read(mirrors, ovs_service::ClockPair::now());
    return flows.size() == 1 && flows[0].flows.size() == static_cast<size_t>(n);
  };
  if (!view()) return 1;
  report("view", base, n);
  feed(*mirror, n, 3, false, 1, 10);  // every 10th flow gets new actions
  report("churn", base, n);
  if (!view()) return 1;  // the rule thread converts the changed bridge again
  report("re-view", base, n);
  return 0;
}

}  // namespace
}  // namespace hvtel::ovs

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--show") {  // the flows of one port, as dump-flows
    hvtel::ovs::FlowMirror m("br-int");
    hvtel::ovs::feed(m, hvtel::ovs::kFlowsPerPort, 0, true);
    for (const auto& id : m.identities()) std::printf("%s\n", id.to_string().c_str());
    return 0;
  }
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  if (sizes.empty()) sizes = {20000, 100000};
  std::printf("%-8s %-10s %10s %10s %10s %10s\n", "flows", "phase", "heap MiB", "heap B/fl",
              "RSS MiB", "RSS B/fl");
  std::fflush(stdout);
  int rc = 0;
  for (int n : sizes) {
    if (n <= 0) return 2;
    // A fresh process per size: RSS never shrinks back to the baseline.
    pid_t pid = fork();
    if (pid == 0) _exit(hvtel::ovs::run(n));
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  return rc;
}
