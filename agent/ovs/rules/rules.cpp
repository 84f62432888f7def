#include "ovs/rules/rules.h"

#include <fmt/core.h>

#include <algorithm>
#include <set>

#include "ovs/rules/rules_gate.h"
#include "ovs/rules/rules_match.h"
#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::ovsdb {
namespace {

// OpenFlow 1.0 reserves 0xff00 and up (OFPP_MAX); 1.3 ports arrive mapped to the same range.
constexpr uint32_t kFirstReservedPort = 0xff00;

// Neutron OVS firewall tables where reg5 holds the ofport (ovs-flows.md R2).
bool reg5_is_ofport_table(int table) {
  return table == 60 || (table >= 71 && table <= 73) || table == 81 || table == 82 ||
         (table >= 91 && table <= 94);
}

std::set<int64_t> live_ofports(const BridgeInfo& b) {
  std::set<int64_t> s;
  for (const auto& p : b.ports) {
    for (const auto& i : p.interfaces) {
      if (i.has_live_ofport()) s.insert(i.ofport);
    }
  }
  return s;
}

Violation flow_violation(const char* rule, const BridgeFlows& f, const FlowView& flow,
                         std::string detail) {
  return Violation{rule, f.bridge, flow.table, flow.priority, flow.canonical_text(),
                   std::move(detail)};
}

bool is_unicast(const std::string& mac) {
  auto b = parse_u64(std::string_view(mac).substr(0, 2), 16);
  return b && (*b & 1) == 0;
}

}  // namespace

std::string FlowView::canonical_text() const {
  return fmt::format("table={}, priority={}, cookie={:#x}{}{} actions={}", table, priority, cookie,
                     match_text.empty() ? "" : ", ", match_text,
                     actions.text.empty() ? "drop" : actions.text);
}

const std::vector<std::string>& rule_names() {
  static const std::vector<std::string> kNames = {
      kOutputToMissingOfport, kMatchOnMissingOfport, kOfportMacMismatch,     kBoundPortMissingFlows,
      kAntiSpoofIncomplete,   kDeadVlanDropInvalid,  kCanaryMissing,         kFailModeNotSecure,
      kPortStuckDeadVlan,     kStalePortBlockFlow,   kLocalVlanInconsistent, kTunnelFlowStale,
      kForeignCookieFlows,    kMassFlowLoss,         kSamePriorityOverlap,   kVifBindingMismatch,
      kFlowMonitorGap};
  return kNames;
}

LibvirtView libvirt_view_from(const std::vector<model::Instance>& instances, TimePoint seen) {
  LibvirtView v;
  v.available = true;
  for (const auto& inst : instances) {
    if (inst.pid == 0) continue;  // not running
    v.domains.push_back(DomainView{inst.instance_id, true, inst.interfaces, seen});
  }
  return v;
}

void ViolationSink::add(Violation v) {
  size_t& n = kept_[{v.bridge, v.rule}];
  if (n >= max_) return;
  ++n;
  out_.push_back(std::move(v));
}

// R1: output:N to an ofport that no Interface on the bridge has.
uint64_t rule_output_to_missing_ofport(const BridgeFlows& f, const BridgeInfo& b,
                                       const RuleGate& gate, TimePoint now, ViolationSink& out) {
  const auto live = live_ofports(b);
  uint64_t n = 0;
  for (const auto& flow : f.flows) {
    std::vector<uint32_t> missing;
    for (uint32_t port : flow.actions.output_ports) {
      if (port == 0 || port >= kFirstReservedPort || live.count(port) != 0) continue;
      if (!gate.missing_ofport_settled(b, port, now)) continue;
      if (std::find(missing.begin(), missing.end(), port) == missing.end()) missing.push_back(port);
    }
    if (missing.empty()) continue;
    ++n;
    std::string ports;
    for (uint32_t p : missing) ports += (ports.empty() ? "" : ",") + std::to_string(p);
    out.add(flow_violation(kOutputToMissingOfport, f, flow,
                           fmt::format("outputs to ofport {} which no interface on {} has", ports,
                                       b.name)));
  }
  return n;
}

// R2: in_port=N (any table) or reg5=N (Neutron firewall tables) with N not live.
uint64_t rule_match_on_missing_ofport(const BridgeFlows& f, const BridgeInfo& b, bool neutron,
                                      const RuleGate& gate, TimePoint now, ViolationSink& out) {
  const auto live = live_ofports(b);
  uint64_t n = 0;
  auto missing = [&](std::optional<uint64_t> port) {
    return port && *port != 0 && *port < kFirstReservedPort &&
           live.count(static_cast<int64_t>(*port)) == 0 &&
           gate.missing_ofport_settled(b, static_cast<int64_t>(*port), now);
  };
  for (const auto& flow : f.flows) {
    const NormalMatch& m = flow.match;
    std::string what;
    if (auto p = exact_u64(m, "in_port"); missing(p)) what = fmt::format("in_port={}", *p);
    if (neutron && reg5_is_ofport_table(flow.table)) {
      if (auto r = exact_u64(m, "reg5"); missing(r)) {
        what += fmt::format("{}reg5={}", what.empty() ? "" : " and ", *r);
      }
    }
    if (what.empty()) continue;
    ++n;
    out.add(flow_violation(kMatchOnMissingOfport, f, flow,
                           fmt::format("matches {}, not a live ofport on {}", what, b.name)));
  }
  return n;
}

// R3: a flow keyed on live ofport P pins a MAC other than P's attached-mac.
uint64_t rule_ofport_mac_mismatch(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                  TimePoint now, ViolationSink& out) {
  uint64_t n = 0;
  for (const auto& flow : f.flows) {
    if (flow.table != 25 && flow.table != 60 && flow.table != 61) continue;
    const NormalMatch& m = flow.match;
    std::optional<uint64_t> port;
    std::optional<std::string> mac;
    const char* mac_field = "dl_dst";
    if (flow.table == 25) {
      port = exact_u64(m, "in_port");
      mac = exact_mac(m, "dl_src");
      mac_field = "dl_src";
    } else if (flow.table == 60) {
      mac = exact_mac(m, "dl_dst");
      for (const auto& [reg, value] : flow.actions.reg_loads) {
        if (reg == "reg5") port = value;
      }
      if (!port) port = exact_u64(m, "reg5");
      if (!port && flow.actions.output_ports.size() == 1) port = flow.actions.output_ports[0];
    } else {
      mac = exact_mac(m, "dl_dst");
      if (flow.actions.output_ports.size() == 1) port = flow.actions.output_ports[0];
    }
    if (!port || !mac || !is_unicast(*mac)) continue;
    const InterfaceInfo* iface = b.interface_by_ofport(static_cast<int64_t>(*port));
    if (iface == nullptr || iface->attached_mac.empty() || iface->attached_mac == *mac) continue;
    if (!gate.port_settled(*iface, now)) continue;
    ++n;
    out.add(flow_violation(
        kOfportMacMismatch, f, flow,
        fmt::format("{}={} but ofport {} is {} with attached-mac {} (ofport reused?)", mac_field,
                    *mac, *port, iface->name, iface->attached_mac)));
  }
  return n;
}

// R13: flows whose cookie is not the agent's.
uint64_t rule_foreign_cookie_flows(const BridgeFlows& f, const RuleConfig& cfg,
                                   std::optional<uint64_t> dominant, ViolationSink& out) {
  std::set<uint64_t> allowed;
  bool explicit_list = false;
  if (auto it = cfg.cookie_allow.find(f.bridge); it != cfg.cookie_allow.end()) {
    allowed = it->second;
    explicit_list = true;
  }
  if (auto it = cfg.cookie_allow.find("*"); it != cfg.cookie_allow.end()) {
    allowed.insert(it->second.begin(), it->second.end());
  }
  if (!explicit_list) {
    // No agent cookie on this bridge: it is not agent-managed, nothing is foreign.
    if (!dominant) return 0;
    allowed.insert(*dominant);
  }
  uint64_t n = 0;
  for (const auto& flow : f.flows) {
    if (allowed.count(flow.cookie) != 0) continue;
    ++n;
    out.add(flow_violation(kForeignCookieFlows, f, flow,
                           explicit_list ? fmt::format("cookie {:#x} not in the allow-list",
                                                       flow.cookie)
                                         : fmt::format("cookie {:#x} is not the agent cookie {:#x}",
                                                       flow.cookie, *dominant)));
  }
  return n;
}

// R15: two different, intersecting matches at one (table, priority) with different actions.
uint64_t rule_same_priority_overlap(const BridgeFlows& f, ViolationSink& out) {
  std::map<std::pair<int, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < f.flows.size(); ++i) {
    groups[{f.flows[i].table, f.flows[i].priority}].push_back(i);
  }
  uint64_t n = 0;
  for (const auto& [key, idx] : groups) {
    if (idx.size() < 2) continue;
    std::vector<const NormalMatch*> norm;
    norm.reserve(idx.size());
    for (size_t i : idx) norm.push_back(&f.flows[i].match);

    // Bucket on the discriminator most flows pin exactly: flows with different
    // exact values cannot intersect, so only same-bucket pairs and pairs with
    // a flow that leaves it wild need comparing.
    std::string disc;
    size_t disc_n = 0;
    for (const char* field : {"in_port", "reg5", "dl_dst"}) {
      size_t c = 0;
      for (const NormalMatch* m : norm) c += exact_key(*m, field).empty() ? 0 : 1;
      if (c > disc_n) {
        disc = field;
        disc_n = c;
      }
    }
    std::map<std::string, std::vector<size_t>> buckets;  // key -> positions in idx
    std::vector<size_t> wild;
    for (size_t k = 0; k < norm.size(); ++k) {
      std::string bk = disc.empty() ? std::string() : exact_key(*norm[k], disc);
      (bk.empty() ? wild : buckets[bk]).push_back(k);
    }

    auto check = [&](size_t a, size_t b) {
      const FlowView& fa = f.flows[idx[a]];
      const FlowView& fb = f.flows[idx[b]];
      if (fa.actions.conjunction_only && fb.actions.conjunction_only) return;
      if (fa.actions.text == fb.actions.text) return;
      if (*norm[a] == *norm[b]) return;  // same identity: a mirror artefact, not an overlap
      if (!matches_intersect(*norm[a], *norm[b])) return;
      ++n;
      out.add(flow_violation(kSamePriorityOverlap, f, fa,
                             "overlaps with: " + fb.canonical_text()));
    };
    for (const auto& [bk, members] : buckets) {
      for (size_t x = 0; x < members.size(); ++x) {
        for (size_t y = x + 1; y < members.size(); ++y) check(members[x], members[y]);
      }
    }
    for (size_t x = 0; x < wild.size(); ++x) {
      for (size_t y = x + 1; y < wild.size(); ++y) check(wild[x], wild[y]);
      for (const auto& [bk, members] : buckets) {
        for (size_t m : members) check(wild[x], m);
      }
    }
  }
  return n;
}

// R17: the flow view itself is unreliable (health of hvtel, not of the bridge).
uint64_t rule_flow_monitor_gap(const BridgeFlows& f, const RuleConfig& cfg, TimePoint now,
                               ViolationSink& out) {
  uint64_t n = 0;
  if (!f.view_complete && now - f.incomplete_since > cfg.monitor_gap) {
    ++n;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - f.incomplete_since).count();
    out.add(Violation{kFlowMonitorGap, f.bridge, -1, -1, f.bridge,
                      fmt::format("flow view incomplete for {}s (limit {}s)", secs,
                                  cfg.monitor_gap.count())});
  }
  if (f.resync_diff > 0) {
    ++n;
    out.add(Violation{kFlowMonitorGap, f.bridge, -1, -1, f.bridge,
                      fmt::format("last resync found {} flows differing from the mirror",
                                  f.resync_diff)});
  }
  return n;
}

// R16: libvirt and OVSDB disagree about a VIF, or OVS reports an error on it.
std::map<std::string, uint64_t> rule_vif_binding_mismatch(const PortModel& ports,
                                                          const LibvirtView* libvirt,
                                                          const RuleGate& gate, TimePoint now,
                                                          ViolationSink& out) {
  std::map<std::string, uint64_t> counts;
  for (const auto& b : ports.bridges) counts[b.name] = 0;
  const bool have_l = libvirt != nullptr && libvirt->available;
  if (have_l) counts.emplace(gate.config().integration_bridge, 0);

  auto add = [&](const std::string& bridge, const std::string& subject, std::string detail) {
    ++counts[bridge];
    out.add(Violation{kVifBindingMismatch, bridge, -1, -1, subject, std::move(detail)});
  };

  std::set<std::string> domain_ids;
  if (have_l) {
    for (const auto& d : libvirt->domains) {
      if (!d.running) continue;
      domain_ids.insert(d.instance_id);
      if (!gate.domain_settled(d, now)) continue;
      for (const auto& li : d.interfaces) {
        if (li.target_dev.empty()) continue;
        const InterfaceInfo* oi = ports.interface_by_name(li.target_dev);
        if (oi == nullptr) {
          // Only OVS-plugged VIFs are expected in OVSDB (they carry an interfaceid).
          if (li.interface_id.empty()) continue;
          add(gate.config().integration_bridge, li.target_dev,
              fmt::format("instance {} interface {} (port {}) is not in OVSDB", d.instance_id,
                          li.target_dev, li.interface_id));
          continue;
        }
        if (!gate.port_settled(*oi, now)) continue;
        const BridgeInfo* b = ports.bridge_of_interface(li.target_dev);
        if (!li.interface_id.empty() && oi->iface_id != li.interface_id) {
          add(b->name, oi->name,
              fmt::format("iface-id {} but libvirt interfaceid {} (instance {})",
                          oi->iface_id.empty() ? "<none>" : oi->iface_id, li.interface_id,
                          d.instance_id));
        } else if (!li.mac.empty() && !oi->attached_mac.empty() && oi->attached_mac != li.mac) {
          add(b->name, oi->name,
              fmt::format("attached-mac {} but libvirt mac {} (instance {})", oi->attached_mac,
                          li.mac, d.instance_id));
        }
      }
    }
  }
  for (const auto& b : ports.bridges) {
    for (const auto& p : b.ports) {
      for (const auto& i : p.interfaces) {
        if (!gate.port_settled(i, now)) continue;
        if (!i.error.empty()) {
          add(b.name, i.name, "Interface.error: " + i.error);
          continue;
        }
        if (have_l && !i.iface_id.empty() && !i.instance_id.empty() &&
            domain_ids.count(i.instance_id) == 0) {
          add(b.name, i.name,
              fmt::format("iface-id {} names instance {} which has no running domain (orphan)",
                          i.iface_id, i.instance_id));
        }
      }
    }
  }
  return counts;
}

RuleReport evaluate_rules(const RuleInputs& in, RuleGate& gate, TimePoint now) {
  const RuleConfig& cfg = gate.config();
  RuleReport r;
  ViolationSink sink(cfg.max_examples);
  const bool have_o = in.ports != nullptr && in.ports->synced;
  const bool neutron = have_o && !in.ports->is_ovn();
  const bool have_l = in.libvirt != nullptr && in.libvirt->available;

  if (in.flows != nullptr) {
    // Every bridge is observed first: R11 (e) on br-int reads br-tun's and the
    // physical bridges' flows, and needs their gate state.
    PeerBridges peers;
    for (const auto& f : *in.flows) {
      gate.observe(f, now);
      gate.record_flow_count(f, now);
      peers[f.bridge] = PeerBridge{&f, gate.bridge_hold(f, now) || gate.in_restart_window(f.bridge, now),
                                   agent_programmed(f, gate.dominant_cookie(f.bridge))};
    }
    for (const auto& f : *in.flows) {
      r.counts[{f.bridge, kFlowMonitorGap}] = rule_flow_monitor_gap(f, cfg, now, sink);
      if (auto hold = gate.bridge_hold(f, now)) {
        r.held[f.bridge] = *hold;
        continue;
      }
      const bool restart = gate.in_restart_window(f.bridge, now);
      r.counts[{f.bridge, kSamePriorityOverlap}] = rule_same_priority_overlap(f, sink);
      // Only agent-managed bridges (a learned cookie; it outlives the flows):
      // setting a bridge secure removes the cookie-0 NORMAL flow vswitchd put there.
      r.counts[{f.bridge, kMassFlowLoss}] =
          gate.dominant_cookie(f.bridge) ? rule_mass_flow_loss(f, gate, now, sink) : 0;
      // The agent's flow shapes are judged only on a bridge it programmed: a
      // vswitchd restart leaves it empty until the agent re-installs (R14's case).
      const bool programmed = peers[f.bridge].programmed;
      if (!restart && (!have_o || neutron)) {
        r.counts[{f.bridge, kDeadVlanDropInvalid}] =
            programmed ? rule_dead_vlan_drop_invalid(f, cfg, sink) : 0;
        r.counts[{f.bridge, kCanaryMissing}] = programmed ? rule_canary_missing(f, cfg, sink) : 0;
      }
      // Cookies under OVN are logical-flow UUID prefixes: the rule does not apply.
      if (!restart && (!have_o || neutron)) {
        r.counts[{f.bridge, kForeignCookieFlows}] =
            rule_foreign_cookie_flows(f, cfg, gate.dominant_cookie(f.bridge), sink);
      }
      const BridgeInfo* b = have_o ? in.ports->bridge(f.bridge) : nullptr;
      if (b == nullptr || restart) continue;  // port-scoped rules need OVSDB and no restart
      r.counts[{f.bridge, kOutputToMissingOfport}] =
          rule_output_to_missing_ofport(f, *b, gate, now, sink);
      r.counts[{f.bridge, kMatchOnMissingOfport}] =
          rule_match_on_missing_ofport(f, *b, neutron, gate, now, sink);
      if (neutron) {
        r.counts[{f.bridge, kOfportMacMismatch}] = rule_ofport_mac_mismatch(f, *b, gate, now, sink);
        r.counts[{f.bridge, kAntiSpoofIncomplete}] = rule_anti_spoof_incomplete(f, *b, gate, now, sink);
        r.counts[{f.bridge, kStalePortBlockFlow}] = rule_stale_port_block_flow(f, *b, gate, now, sink);
        // Absent while a bridge (e) reads is held: the previous count stays.
        if (auto n = rule_local_vlan_inconsistent(f, *b, *in.ports, peers, cfg, sink)) {
          r.counts[{f.bridge, kLocalVlanInconsistent}] = *n;
        }
        r.counts[{f.bridge, kTunnelFlowStale}] =
            programmed ? rule_tunnel_flow_stale(f, *b, gate, now, sink) : 0;
        // Bound means "a running guest uses it": without L nothing is known bound.
        r.counts[{f.bridge, kBoundPortMissingFlows}] =
            programmed && have_l ? rule_bound_port_missing_flows(f, *b, *in.libvirt, gate, now, sink) : 0;
      }
    }
  }
  if (have_o) {
    for (const auto& [bridge, n] : rule_vif_binding_mismatch(*in.ports, in.libvirt, gate, now, sink)) {
      r.counts[{bridge, kVifBindingMismatch}] = n;
    }
    if (neutron) {
      for (const auto& [bridge, n] : rule_fail_mode_not_secure(*in.ports, cfg, sink)) {
        r.counts[{bridge, kFailModeNotSecure}] = n;
      }
      const LibvirtView none;
      for (const auto& [bridge, n] :
           rule_port_stuck_dead_vlan(*in.ports, have_l ? *in.libvirt : none, gate, now, sink)) {
        r.counts[{bridge, kPortStuckDeadVlan}] = n;
      }
    }
  }
  r.violations = sink.take();
  return r;
}

}  // namespace hvtel::ovsdb
