// Dirty-flow rules R4-R12 and R14: the Neutron OVS agent's own flow shapes
// (ovs-flows.md §4 "Neutron model", §7). They read decoded match fields and
// action facts only.
#include <fmt/core.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include "base/util/strings.h"
#include "ovs/rules/rules.h"
#include "ovs/rules/rules_gate.h"
#include "ovs/rules/rules_match.h"

namespace hvtel::ovsdb {
namespace {

constexpr uint16_t kDeadVlan = 4095;  // Neutron's DEAD_VLAN_TAG
constexpr uint64_t kEthTypeArp = 0x0806;

Violation flow_violation(const char* rule, const BridgeFlows& f, const FlowView& flow, std::string detail) {
  return Violation{rule, f.bridge, flow.table, flow.priority, flow.canonical_text(), std::move(detail)};
}

bool resubmits_to(const FlowView& flow, uint8_t table) {
  const auto& t = flow.actions.resubmit_tables;
  return std::find(t.begin(), t.end(), table) != t.end();
}

// The port holding the interface with this ofport, with the interface.
std::pair<const PortInfo*, const InterfaceInfo*> port_of_ofport(const BridgeInfo& b, int64_t ofport) {
  for (const auto& p : b.ports) {
    for (const auto& i : p.interfaces) {
      if (i.ofport == ofport) return {&p, &i};
    }
  }
  return {nullptr, nullptr};
}

bool is_tunnel_type(const std::string& type) {
  return type == "vxlan" || type == "geneve" || type == "gre" || type == "stt" || type == "erspan" ||
         type == "ip6gre" || type == "ip6erspan" || type == "gtpu" || type == "bareudp" || type == "srv6";
}

bool on_dead_vlan(const PortInfo& p) {
  return (p.tag && *p.tag == kDeadVlan) || (!p.tag && p.trunks.size() == 1 && p.trunks[0] == kDeadVlan);
}

// A port the agent bound to a network: a local VLAN other than the dead one.
bool bound_tag(const PortInfo& p) { return p.tag && *p.tag != kDeadVlan; }

}  // namespace

bool agent_programmed(const BridgeFlows& f, std::optional<uint64_t> dominant) {
  if (!dominant) return false;
  return std::any_of(f.flows.begin(), f.flows.end(),
                     [&](const FlowView& v) { return v.cookie == *dominant; });
}

// R4: a port the agent bound (iface-id, live ofport, local VLAN, running
// domain) lacks the flows the agent installs for every such port.
uint64_t rule_bound_port_missing_flows(const BridgeFlows& f, const BridgeInfo& b, const LibvirtView& libvirt,
                                       const RuleGate& gate, TimePoint now, ViolationSink& out) {
  std::map<std::string, std::string> running;  // interfaceid -> libvirt mac
  for (const auto& d : libvirt.domains) {
    if (!d.running || !gate.domain_settled(d, now)) continue;
    for (const auto& i : d.interfaces) {
      if (!i.interface_id.empty()) running[i.interface_id] = i.mac;
    }
  }
  // The OVS firewall when its tables are in use, else hybrid/noop (ovs-flows.md §7 C).
  bool ovs_fw = false;
  std::set<uint64_t> t60_in_port, t71_reg5, t81_reg5, t0_in_port;
  std::set<std::pair<std::string, uint16_t>> t60_dst;  // (mac, vlan)
  for (const auto& flow : f.flows) {
    const NormalMatch& m = flow.match;
    if (flow.table == 71 || flow.table == 81) ovs_fw = true;
    if (flow.table == 60 && flow.priority == 100) {
      if (auto p = exact_u64(m, "in_port")) t60_in_port.insert(*p);
    } else if (flow.table == 60 && flow.priority == 90) {
      auto mac = exact_mac(m, "dl_dst");
      auto vlan = exact_vlan(m);
      if (mac && vlan) t60_dst.emplace(*mac, *vlan);
    } else if (flow.table == 71 || flow.table == 81) {
      if (auto r = exact_u64(m, "reg5")) (flow.table == 71 ? t71_reg5 : t81_reg5).insert(*r);
    } else if (flow.table == 0 &&
               (resubmits_to(flow, 24) || resubmits_to(flow, 25) || resubmits_to(flow, 60))) {
      if (auto p = exact_u64(m, "in_port")) t0_in_port.insert(*p);
    }
  }
  uint64_t n = 0;
  for (const auto& p : b.ports) {
    if (!bound_tag(p)) continue;
    for (const auto& i : p.interfaces) {
      if (i.iface_id.empty() || !i.has_live_ofport() || !gate.port_settled(i, now)) continue;
      auto dom = running.find(i.iface_id);
      if (dom == running.end()) continue;
      const auto port = static_cast<uint64_t>(i.ofport);
      const std::string mac = !i.attached_mac.empty() ? i.attached_mac : dom->second;
      std::vector<std::string> missing;
      if (ovs_fw) {
        if (!t60_in_port.count(port))
          missing.push_back(fmt::format("table=60 priority=100 in_port={}", port));
        if (!mac.empty() && !t60_dst.count({mac, static_cast<uint16_t>(*p.tag)})) {
          missing.push_back(fmt::format("table=60 priority=90 dl_vlan={},dl_dst={}", *p.tag, mac));
        }
        if (!t71_reg5.count(port)) missing.push_back(fmt::format("table=71 reg5={}", port));
        if (!t81_reg5.count(port)) missing.push_back(fmt::format("table=81 reg5={}", port));
      } else if (!t0_in_port.count(port)) {
        missing.push_back(fmt::format("table=0 in_port={} resubmit", port));
      }
      if (missing.empty()) continue;
      ++n;
      std::string list;
      for (const auto& s : missing) list += (list.empty() ? "" : "; ") + s;
      out.add(Violation{kBoundPortMissingFlows, f.bridge, -1, -1, i.name,
                        fmt::format("bound port {} (ofport {}, tag {}) has no {} flow: {}", i.iface_id, port,
                                    *p.tag, ovs_fw ? "firewall" : "table 0", list)});
    }
  }
  return n;
}

// R5: table 0 sends a port to the anti-spoofing tables but they hold nothing for it.
uint64_t rule_anti_spoof_incomplete(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                    TimePoint now, ViolationSink& out) {
  std::set<uint64_t> t24_arp, t25_mac;
  for (const auto& flow : f.flows) {
    if (flow.table != 24 && flow.table != 25) continue;
    auto p = exact_u64(flow.match, "in_port");
    if (!p) continue;
    if (flow.table == 24 && flow.match.find("arp_spa") != flow.match.end()) t24_arp.insert(*p);
    if (flow.table == 25 && exact_mac(flow.match, "dl_src")) t25_mac.insert(*p);
  }
  uint64_t n = 0;
  for (const auto& flow : f.flows) {
    if (flow.table != 0) continue;
    auto p = exact_u64(flow.match, "in_port");
    if (!p) continue;
    auto [port, iface] = port_of_ofport(b, static_cast<int64_t>(*p));
    if (iface == nullptr || !gate.port_settled(*iface, now)) continue;  // a missing port is R2's
    const bool arp = exact_u64(flow.match, "dl_type") == kEthTypeArp;
    std::string what;
    if (arp && resubmits_to(flow, 24) && !t24_arp.count(*p)) {
      what = fmt::format("table 24 has no arp,in_port={},arp_spa=... flow", *p);
    } else if (resubmits_to(flow, 25) && !t25_mac.count(*p)) {
      what = fmt::format("table 25 has no in_port={},dl_src=... flow", *p);
    }
    if (what.empty()) continue;
    ++n;
    out.add(flow_violation(kAntiSpoofIncomplete, f, flow, what + " (spoofed traffic is dropped)"));
  }
  return n;
}

// R6: br-int table 0 must drop the dead VLAN (dl_vlan=4095, i.e. vlan_tci=0x1fff/0x1fff).
uint64_t rule_dead_vlan_drop_invalid(const BridgeFlows& f, const RuleConfig& cfg, ViolationSink& out) {
  if (f.bridge != cfg.integration_bridge) return 0;
  uint64_t n = 0;
  bool valid = false;
  for (const auto& flow : f.flows) {
    if (flow.table != 0 || flow.priority != 65535 || !flow.actions.is_drop) continue;
    auto v = vlan_bits(flow.match);
    if (!v || (v->mask & 0x0fff) != 0x0fff || (v->value & 0x0fff) != kDeadVlan) continue;
    if (v->mask == 0x1fff && (v->value & 0x1000) != 0) {
      valid = true;
      continue;
    }
    // LP #1930414: vlan_tci=0x0fff/0x1fff needs "no tag" and VID 4095 at once: it matches nothing.
    ++n;
    out.add(flow_violation(kDeadVlanDropInvalid, f, flow,
                           fmt::format("dead VLAN drop matches vlan_tci={:#06x}/{:#06x}, which no "
                                       "tagged packet has (want dl_vlan=4095)",
                                       v->value, v->mask)));
  }
  if (!valid && n == 0) {
    ++n;
    out.add(Violation{kDeadVlanDropInvalid, f.bridge, 0, 65535, f.bridge,
                      "no table=0 priority=65535 dl_vlan=4095 actions=drop: ports on the dead "
                      "VLAN are not isolated"});
  }
  return n;
}

// R7: the canary (br-int table 23 drop) is how the agent notices a vswitchd
// restart that lost its flows; without it a restart goes unnoticed.
uint64_t rule_canary_missing(const BridgeFlows& f, const RuleConfig& cfg, ViolationSink& out) {
  if (f.bridge != cfg.integration_bridge) return 0;
  for (const auto& flow : f.flows) {
    if (flow.table == 23 && flow.actions.is_drop) return 0;
  }
  out.add(Violation{kCanaryMissing, f.bridge, 23, -1, f.bridge,
                    "no table=23 drop flow (canary): the agent cannot detect a flow loss"});
  return 1;
}

// R10: a port-down block flow left after the port was bound (LP #1968896).
uint64_t rule_stale_port_block_flow(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                    TimePoint now, ViolationSink& out) {
  uint64_t n = 0;
  for (const auto& flow : f.flows) {
    if (flow.table != 0 || flow.priority != 2 || !flow.actions.is_drop) continue;
    auto p = exact_u64(flow.match, "in_port");
    if (!p) continue;
    auto [port, iface] = port_of_ofport(b, static_cast<int64_t>(*p));
    if (port == nullptr || !bound_tag(*port) || !gate.port_settled(*iface, now)) continue;
    ++n;
    out.add(flow_violation(kStalePortBlockFlow, f, flow,
                           fmt::format("drops everything from {} (ofport {}) although it is bound "
                                       "on local VLAN {}",
                                       iface->name, *p, *port->tag)));
  }
  return n;
}

// R12: br-tun floods/unicasts into a port that is not a tunnel, or a tunnel's
// traffic has no table 0 entry.
uint64_t rule_tunnel_flow_stale(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                TimePoint now, ViolationSink& out) {
  std::set<int64_t> tunnels;
  for (const auto& p : b.ports) {
    for (const auto& i : p.interfaces) {
      if (is_tunnel_type(i.type) && i.has_live_ofport()) tunnels.insert(i.ofport);
    }
  }
  if (tunnels.empty() && b.name != gate.config().tunnel_bridge) return 0;
  uint64_t n = 0;
  std::set<uint64_t> t0_in_port;
  for (const auto& flow : f.flows) {
    if (flow.table == 0 && !flow.actions.resubmit_tables.empty()) {
      if (auto p = exact_u64(flow.match, "in_port")) t0_in_port.insert(*p);
    }
    if (flow.table != 20 && flow.table != 22) continue;
    std::vector<uint32_t> bad;
    for (uint32_t port : flow.actions.output_ports) {
      auto [pi, iface] = port_of_ofport(b, port);
      // Missing ports are R1's; a live non-tunnel port is this rule's.
      if (iface != nullptr && !tunnels.count(port) && gate.port_settled(*iface, now)) bad.push_back(port);
    }
    if (bad.empty()) continue;
    ++n;
    std::string ports;
    for (uint32_t p : bad) ports += (ports.empty() ? "" : ",") + std::to_string(p);
    out.add(flow_violation(
        kTunnelFlowStale, f, flow,
        fmt::format("table {} outputs to ofport {} which is not a tunnel", flow.table, ports)));
  }
  for (const auto& p : b.ports) {
    for (const auto& i : p.interfaces) {
      if (!tunnels.count(i.ofport) || !gate.port_settled(i, now)) continue;
      if (t0_in_port.count(static_cast<uint64_t>(i.ofport))) continue;
      ++n;
      out.add(Violation{kTunnelFlowStale, f.bridge, 0, -1, i.name,
                        fmt::format("tunnel {} (ofport {}, {}) has no table=0 in_port={} flow: "
                                    "its traffic is dropped",
                                    i.name, i.ofport, i.type, i.ofport)});
    }
  }
  return n;
}

// R14: a large part of the bridge's flows, or all flows of one of the agent's
// minor cookies, vanished and did not come back.
uint64_t rule_mass_flow_loss(const BridgeFlows& f, const RuleGate& gate, TimePoint now, ViolationSink& out) {
  const auto& cfg = gate.config();
  if (auto loss = gate.flow_loss(f.bridge, now)) {
    out.add(Violation{
        kMassFlowLoss, f.bridge, -1, -1, f.bridge,
        fmt::format("{} of {} flows gone within {}s and not back for {}s (now {})", loss->before - loss->after,
                    loss->before, cfg.flow_loss_window.count(), cfg.flow_loss_hold.count(), f.flows.size())});
    return 1;
  }
  auto cookies = gate.cookie_losses(f.bridge, now);
  if (cookies.empty()) return 0;
  std::string which;
  for (const auto& c : cookies)
    which += fmt::format("{}{} of cookie {:#x}", which.empty() ? "" : ", ", c.before, c.cookie);
  out.add(Violation{kMassFlowLoss, f.bridge, -1, -1, f.bridge,
                    fmt::format("all flows of an agent cookie gone within {}s and not back for {}s: {} (now {} "
                                "flows on the bridge)",
                                cfg.flow_loss_window.count(), cfg.flow_loss_hold.count(), which, f.flows.size())});
  return 1;
}

// R8: Neutron runs its bridges with fail_mode=secure; standalone switches
// NORMAL when the agent's flows are gone.
std::map<std::string, uint64_t> rule_fail_mode_not_secure(const PortModel& ports, const RuleConfig& cfg,
                                                          ViolationSink& out) {
  std::map<std::string, uint64_t> counts;
  std::set<std::string> neutron = {cfg.integration_bridge, cfg.tunnel_bridge};
  // Physical bridges: patched to the integration bridge (bridge_mappings).
  if (const BridgeInfo* integ = ports.bridge(cfg.integration_bridge)) {
    for (const auto& p : integ->ports) {
      for (const auto& i : p.interfaces) {
        if (i.type != "patch") continue;
        auto peer = i.options.find("peer");
        if (peer == i.options.end()) continue;
        if (const BridgeInfo* pb = ports.bridge_of_interface(peer->second)) neutron.insert(pb->name);
      }
    }
  }
  for (const auto& b : ports.bridges) {
    counts[b.name] = 0;
    if (!neutron.count(b.name) || b.fail_mode == "secure") continue;
    counts[b.name] = 1;
    out.add(Violation{kFailModeNotSecure, b.name, -1, -1, b.name,
                      fmt::format("fail_mode is {}, not secure: without the agent's flows the "
                                  "bridge switches NORMAL",
                                  b.fail_mode.empty() ? "unset (standalone)" : b.fail_mode)});
  }
  return counts;
}

// R9: a running guest's port still sits on the dead VLAN: the agent never bound it.
std::map<std::string, uint64_t> rule_port_stuck_dead_vlan(const PortModel& ports, const LibvirtView& libvirt,
                                                          const RuleGate& gate, TimePoint now,
                                                          ViolationSink& out) {
  std::set<std::string> running;
  for (const auto& d : libvirt.domains) {
    if (!d.running || !gate.domain_settled(d, now)) continue;
    for (const auto& i : d.interfaces) {
      if (!i.interface_id.empty()) running.insert(i.interface_id);
    }
  }
  std::map<std::string, uint64_t> counts;
  for (const auto& b : ports.bridges) {
    uint64_t& n = counts[b.name];
    for (const auto& p : b.ports) {
      if (!on_dead_vlan(p)) continue;
      for (const auto& i : p.interfaces) {
        if (i.iface_id.empty() || !running.count(i.iface_id) || !gate.port_settled(i, now)) continue;
        ++n;
        out.add(Violation{kPortStuckDeadVlan, b.name, -1, -1, i.name,
                          fmt::format("port {} of a running instance is on dead VLAN 4095 "
                                      "(never bound by the agent)",
                                      i.iface_id)});
      }
    }
  }
  return counts;
}

namespace {

// The agent's local VLAN map as br-int's bound ports record it (Port.tag and
// the other_config the agent writes in port_bound).
struct LocalVlanMap {
  std::set<int64_t> lvids;
  std::map<std::string, std::set<int64_t>> net_tags;  // net_uuid -> tags
  std::map<int64_t, std::set<std::string>> tag_nets;  // tag -> net_uuids
  // tag -> (network_type, segmentation_id or ""), from ports that have a type.
  std::map<int64_t, std::set<std::pair<std::string, std::string>>> tag_segments;
};

LocalVlanMap local_vlan_map(const BridgeInfo& b) {
  LocalVlanMap m;
  auto value = [](const PortInfo& p, const char* key) {
    auto it = p.other_config.find(key);
    return it == p.other_config.end() ? std::string() : it->second;
  };
  for (const auto& p : b.ports) {
    if (!bound_tag(p)) continue;
    m.lvids.insert(*p.tag);
    if (auto net = value(p, "net_uuid"); !net.empty()) {
      m.net_tags[net].insert(*p.tag);
      m.tag_nets[*p.tag].insert(net);
    }
    if (auto type = value(p, "network_type"); !type.empty()) {
      m.tag_segments[*p.tag].emplace(type, value(p, "segmentation_id"));
    }
  }
  return m;
}

// Neutron's TUN_TABLE: where br-tun maps a tunnel's segment to the local VLAN.
std::optional<uint8_t> tunnel_table(const std::string& network_type) {
  if (network_type == "gre") return 3;
  if (network_type == "vxlan") return 4;
  if (network_type == "geneve") return 6;
  return std::nullopt;
}

bool sets_vlan(const FlowView& flow, int64_t lvid) {
  // set_field:4097->vlan_vid carries the CFI bit; mod_vlan_vid:1 does not.
  return std::any_of(flow.actions.vlan_sets.begin(), flow.actions.vlan_sets.end(),
                     [&](uint16_t v) { return (v & 0x0fff) == lvid; });
}

bool has_flow(const BridgeFlows& f, const std::function<bool(const FlowView&)>& pred) {
  return std::any_of(f.flows.begin(), f.flows.end(), pred);
}

// Whether (e) can read a bridge's flows now: absent or not programmed by the
// agent (an empty bridge after a vswitchd restart is R14's) is skipped, held
// waits for the next evaluation.
enum class PeerState { kSkip, kHold, kJudge };
PeerState peer_state(const PeerBridges& peers, const std::string& bridge) {
  auto it = peers.find(bridge);
  if (it == peers.end() || it->second.flows == nullptr) return PeerState::kSkip;
  if (it->second.held) return PeerState::kHold;
  return it->second.programmed ? PeerState::kJudge : PeerState::kSkip;
}

// One local VLAN's network, as (e) judges it.
struct LocalVlanNet {
  int64_t lvid = 0;
  std::string type;
  std::string segment;  // segmentation_id; empty for flat
};

// The tunnel half of (e): br-tun's TUN_TABLE tun_id=seg -> lvid. Table 22's
// flood flow (dl_vlan=lvid) is not required: with l2population the agent
// installs it only while another host has a port on the network. The missing
// flow's description, or nullopt when br-tun is held.
std::optional<std::vector<std::string>> missing_tunnel_flows(const LocalVlanNet& net, uint8_t table,
                                                             const PeerBridges& peers,
                                                             const RuleConfig& cfg) {
  std::vector<std::string> missing;
  const PeerState state = peer_state(peers, cfg.tunnel_bridge);
  if (state == PeerState::kHold) return std::nullopt;
  auto seg = parse_u64(net.segment, 10);
  if (state == PeerState::kSkip || !seg) return missing;
  const BridgeFlows& tun = *peers.at(cfg.tunnel_bridge).flows;
  if (!has_flow(tun, [&](const FlowView& v) {
        return v.table == table && exact_u64(v.match, "tun_id") == *seg && sets_vlan(v, net.lvid);
      })) {
    missing.push_back(
        fmt::format("{} table {} tun_id={:#x} -> mod_vlan_vid:{}", tun.bridge, table, *seg, net.lvid));
  }
  return missing;
}

// The physical half of (e): br-int table 0 turns the physical network's
// traffic (in_port=int-br-X) into the lvid, and br-X turns the lvid back
// (dl_vlan=lvid). br-X is the patch peer of that flow's in_port, so no
// bridge_mappings are needed. nullopt when br-X is held.
std::optional<std::vector<std::string>> missing_physical_flows(const LocalVlanNet& net, const BridgeFlows& f,
                                                               const BridgeInfo& b, const PortModel& ports,
                                                               const PeerBridges& peers,
                                                               const RuleConfig& cfg) {
  std::vector<std::string> missing;
  const FlowView* in = nullptr;
  for (const auto& flow : f.flows) {
    if (flow.table == 0 && sets_vlan(flow, net.lvid)) in = &flow;
  }
  if (in == nullptr) {
    missing.push_back(fmt::format("{} table 0 -> mod_vlan_vid:{}", f.bridge, net.lvid));
    return missing;
  }
  auto port = exact_u64(in->match, "in_port");
  const InterfaceInfo* patch = port ? b.interface_by_ofport(static_cast<int64_t>(*port)) : nullptr;
  if (patch == nullptr || patch->type != "patch") return missing;
  auto peer = patch->options.find("peer");
  const BridgeInfo* phys = peer == patch->options.end() ? nullptr : ports.bridge_of_interface(peer->second);
  if (phys == nullptr || phys->name == cfg.tunnel_bridge) return missing;
  const PeerState state = peer_state(peers, phys->name);
  if (state == PeerState::kHold) return std::nullopt;
  if (state == PeerState::kJudge && !has_flow(*peers.at(phys->name).flows, [&](const FlowView& v) {
        return exact_vlan(v.match) == net.lvid;
      })) {
    missing.push_back(fmt::format("{} dl_vlan={}", phys->name, net.lvid));
  }
  return missing;
}

// R11 (e): each local VLAN whose network OVSDB names consistently (one
// network, one type and segment; else it is (b)/(c)'s) has its translation
// flows. `local` networks and ports without network_type have none to check.
std::optional<std::vector<Violation>> untranslated_local_vlans(const BridgeFlows& f, const BridgeInfo& b,
                                                               const LocalVlanMap& m, const PortModel& ports,
                                                               const PeerBridges& peers,
                                                               const RuleConfig& cfg) {
  std::vector<Violation> out;
  if (peer_state(peers, b.name) != PeerState::kJudge) return out;
  for (const auto& [lvid, segments] : m.tag_segments) {
    auto nets = m.tag_nets.find(lvid);
    if (segments.size() != 1 || (nets != m.tag_nets.end() && nets->second.size() != 1)) continue;
    if (nets != m.tag_nets.end() && m.net_tags.at(*nets->second.begin()).size() != 1) continue;
    const LocalVlanNet net{lvid, segments.begin()->first, segments.begin()->second};
    std::optional<std::vector<std::string>> missing;
    if (auto table = tunnel_table(net.type)) {
      missing = missing_tunnel_flows(net, *table, peers, cfg);
    } else if (net.type == "vlan" || net.type == "flat") {
      missing = missing_physical_flows(net, f, b, ports, peers, cfg);
    } else {
      continue;
    }
    if (!missing) return std::nullopt;
    if (missing->empty()) continue;
    std::string list;
    for (const auto& s : *missing) list += (list.empty() ? "" : " flow and no ") + s;
    out.push_back(Violation{kLocalVlanInconsistent, b.name, -1, -1, std::to_string(lvid),
                            fmt::format("(e) local VLAN {} ({}{}{}) has no {} flow", lvid, net.type,
                                        net.segment.empty() ? "" : " segment ", net.segment, list)});
  }
  return out;
}

}  // namespace

// R11: the local VLAN (lvid) map is inconsistent, in OVSDB or in the flows.
std::optional<uint64_t> rule_local_vlan_inconsistent(const BridgeFlows& f, const BridgeInfo& b,
                                                     const PortModel& ports, const PeerBridges& peers,
                                                     const RuleConfig& cfg, ViolationSink& out) {
  if (b.name != cfg.integration_bridge) return 0;
  const LocalVlanMap m = local_vlan_map(b);
  // (e) first: when it must wait for a held bridge, nothing is reported.
  auto untranslated = untranslated_local_vlans(f, b, m, ports, peers, cfg);
  if (!untranslated) return std::nullopt;
  uint64_t n = 0;
  auto add = [&](int table, int priority, std::string subject, std::string detail) {
    ++n;
    out.add(
        Violation{kLocalVlanInconsistent, b.name, table, priority, std::move(subject), std::move(detail)});
  };
  for (const auto& p : b.ports) {
    if (!bound_tag(p)) continue;
    auto oc_tag = p.other_config.find("tag");
    if (oc_tag != p.other_config.end() && oc_tag->second != std::to_string(*p.tag)) {
      add(-1, -1, p.name, fmt::format("(a) tag {} but other_config:tag {}", *p.tag, oc_tag->second));
    }
  }
  for (const auto& [net, tags] : m.net_tags) {
    if (tags.size() < 2) continue;
    std::string list;
    for (auto t : tags) list += (list.empty() ? "" : ",") + std::to_string(t);
    add(-1, -1, net, fmt::format("(b) network {} is on local VLANs {}", net, list));
  }
  for (const auto& [tag, nets] : m.tag_nets) {
    if (nets.size() < 2) continue;
    std::string list;
    for (const auto& s : nets) list += (list.empty() ? "" : ",") + s;
    add(-1, -1, std::to_string(tag), fmt::format("(c) local VLAN {} is shared by networks {}", tag, list));
  }
  for (const auto& flow : f.flows) {
    // No per-flow allocation: this runs over every flow of br-int.
    std::string unknown;
    auto check = [&](uint16_t v) {
      if (v == kDeadVlan || m.lvids.count(v)) return;
      const std::string t = std::to_string(v);
      if (("," + unknown + ",").find("," + t + ",") != std::string::npos) return;
      unknown += (unknown.empty() ? "" : ",") + t;
    };
    // A flow that rewrites the VLAN matches the segmentation id, not an lvid.
    if (auto v = exact_vlan(flow.match); v && flow.actions.vlan_sets.empty()) check(*v);
    for (uint16_t v : flow.actions.vlan_sets) check(static_cast<uint16_t>(v & 0x0fff));
    if (unknown.empty()) continue;
    add(flow.table, flow.priority, flow.canonical_text(),
        fmt::format("(d) uses local VLAN {} which no port on {} has", unknown, b.name));
  }
  for (auto& v : *untranslated) {
    ++n;
    out.add(std::move(v));
  }
  return n;
}

}  // namespace hvtel::ovsdb
