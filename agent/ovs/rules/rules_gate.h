// RuleGate: when the dirty-flow rules may fire, against false positives.
//
// Flow rules run on a bridge only when its OpenFlow view is complete and the
// bridge has been quiet for Q. Port-scoped rules additionally skip ports
// younger than G (created, or ofport changed) and ofports released less than G
// ago, and are held for R after a new dominant cookie (a Neutron agent
// restart re-installs every flow). The gate is the only stateful part of the
// rule engine; time is always passed in, so tests inject it.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ovs/rules/rules.h"

namespace hvtel::ovsdb {

class RuleGate {
 public:
  explicit RuleGate(RuleConfig cfg = {}) : cfg_(std::move(cfg)) {}
  const RuleConfig& config() const { return cfg_; }

  // Learns the bridge's dominant cookie (the most common non-zero cookie,
  // strictly ahead of the runner-up) from a complete view. The first cookie
  // seen counts as new: after hvtel starts, rules wait R as they would after
  // an agent restart.
  void observe(const BridgeFlows& flows, TimePoint now);
  std::optional<uint64_t> dominant_cookie(const std::string& bridge) const;

  // Why the bridge's flow rules must not run now; nullopt when they may.
  std::optional<std::string> bridge_hold(const BridgeFlows& flows, TimePoint now) const;
  bool in_restart_window(const std::string& bridge, TimePoint now) const;
  // The interface exists and its ofport has been stable for G.
  bool port_settled(const InterfaceInfo& iface, TimePoint now) const;
  // The ofport was not released on this bridge within G (a deleted port's
  // flows get a grace period to be cleaned up).
  bool missing_ofport_settled(const BridgeInfo& bridge, int64_t ofport, TimePoint now) const;
  bool domain_settled(const DomainView& domain, TimePoint now) const;

  // R14's memory: the bridge's flow count over time, as a step function
  // (one point per change), from complete views only. Kept for T + W.
  void record_flow_count(const BridgeFlows& flows, TimePoint now);
  struct FlowLoss {
    size_t before = 0;  // most flows within W before now - T
    size_t after = 0;   // most flows since now - T
  };
  // More than flow_loss_fraction of the flows gone within W and not back for
  // T; nullopt when not (or when hvtel has not watched the bridge for T yet).
  std::optional<FlowLoss> flow_loss(const std::string& bridge, TimePoint now) const;
  // R14's other half: every flow of one of the agent's minor cookies gone
  // within W and not back for T, while the bridge's total may hold. Minor
  // cookies are the ones cookie_allow names for the bridge or "*" (R13 calls
  // any other one foreign, so removing those is a cleanup, not a loss), other
  // than 0 and the learned dominant one. Nothing within T + W of a change of
  // the dominant cookie: an agent restart replaces every cookie.
  struct CookieLoss {
    uint64_t cookie = 0;
    size_t before = 0;  // its most flows within W before now - T
  };
  std::vector<CookieLoss> cookie_losses(const std::string& bridge, TimePoint now) const;

  // Forgets bridges that no longer exist.
  void forget(const std::string& bridge) {
    cookies_.erase(bridge);
    flow_counts_.erase(bridge);
    cookie_counts_.erase(bridge);
  }

 private:
  struct CookieState {
    uint64_t cookie = 0;
    TimePoint since{};
  };
  // A count over time: one point per change, kept for T + W.
  using Steps = std::deque<std::pair<TimePoint, size_t>>;
  void record(Steps& steps, size_t n, TimePoint now) const;
  std::optional<FlowLoss> loss(const Steps& steps, TimePoint now) const;
  // The minor cookies R14 follows on `bridge` (see cookie_losses).
  std::set<uint64_t> minor_cookies(const std::string& bridge) const;

  RuleConfig cfg_;
  std::map<std::string, CookieState> cookies_;
  std::map<std::string, Steps> flow_counts_;
  std::map<std::string, std::map<uint64_t, Steps>> cookie_counts_;
};

// Runs every rule on every bridge, gated. Inputs may be partly missing:
// ports == nullptr or !ports->synced skips the rules that need OVSDB, and
// libvirt == nullptr or !available skips the checks that need libvirt.
struct RuleInputs {
  const std::vector<BridgeFlows>* flows = nullptr;
  const PortModel* ports = nullptr;
  const LibvirtView* libvirt = nullptr;
};
RuleReport evaluate_rules(const RuleInputs& in, RuleGate& gate, TimePoint now);

// The individual rules, ungated except for the per-port checks they are given
// the gate for. Each appends to `out` and returns the exact count.
class ViolationSink;
uint64_t rule_output_to_missing_ofport(const BridgeFlows& f, const BridgeInfo& b,
                                       const RuleGate& gate, TimePoint now, ViolationSink& out);
uint64_t rule_match_on_missing_ofport(const BridgeFlows& f, const BridgeInfo& b, bool neutron,
                                      const RuleGate& gate, TimePoint now, ViolationSink& out);
uint64_t rule_ofport_mac_mismatch(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                  TimePoint now, ViolationSink& out);
uint64_t rule_foreign_cookie_flows(const BridgeFlows& f, const RuleConfig& cfg,
                                   std::optional<uint64_t> dominant, ViolationSink& out);
// R4-R12 and R14 (Neutron OVS agent); rules_neutron.cpp. `dominant` is the
// bridge's agent cookie: shape rules judge only bridges the agent programmed
// (an empty bridge after a vswitchd restart is R14's, not theirs).
uint64_t rule_bound_port_missing_flows(const BridgeFlows& f, const BridgeInfo& b, const LibvirtView& libvirt,
                                       const RuleGate& gate, TimePoint now, ViolationSink& out);
uint64_t rule_anti_spoof_incomplete(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                    TimePoint now, ViolationSink& out);
uint64_t rule_dead_vlan_drop_invalid(const BridgeFlows& f, const RuleConfig& cfg, ViolationSink& out);
uint64_t rule_canary_missing(const BridgeFlows& f, const RuleConfig& cfg, ViolationSink& out);
uint64_t rule_stale_port_block_flow(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                    TimePoint now, ViolationSink& out);
uint64_t rule_tunnel_flow_stale(const BridgeFlows& f, const BridgeInfo& b, const RuleGate& gate,
                                TimePoint now, ViolationSink& out);
uint64_t rule_mass_flow_loss(const BridgeFlows& f, const RuleGate& gate, TimePoint now, ViolationSink& out);
// OVSDB (and libvirt) rules: counts per OVSDB bridge.
std::map<std::string, uint64_t> rule_fail_mode_not_secure(const PortModel& ports, const RuleConfig& cfg,
                                                          ViolationSink& out);
std::map<std::string, uint64_t> rule_port_stuck_dead_vlan(const PortModel& ports, const LibvirtView& libvirt,
                                                          const RuleGate& gate, TimePoint now,
                                                          ViolationSink& out);
// What R11 (e) may read of a bridge's flows, per bridge in the inputs.
struct PeerBridge {
  const BridgeFlows* flows = nullptr;
  bool held = false;        // held by the gate or in its restart window: judge it later
  bool programmed = false;  // it carries the agent's cookie (agent_programmed)
};
using PeerBridges = std::map<std::string, PeerBridge>;
// (a) tag vs other_config:tag, (b) one network on two tags, (c) two networks on
// one tag, (d) integration-bridge flows using an lvid no port has, (e) a local
// VLAN without its translation flows on br-tun or its physical bridge. nullopt
// when (e) must read a bridge that `peers` holds: keep the previous count.
std::optional<uint64_t> rule_local_vlan_inconsistent(const BridgeFlows& f, const BridgeInfo& b,
                                                     const PortModel& ports, const PeerBridges& peers,
                                                     const RuleConfig& cfg, ViolationSink& out);
bool agent_programmed(const BridgeFlows& f, std::optional<uint64_t> dominant);

uint64_t rule_same_priority_overlap(const BridgeFlows& f, ViolationSink& out);
uint64_t rule_flow_monitor_gap(const BridgeFlows& f, const RuleConfig& cfg, TimePoint now,
                               ViolationSink& out);
// Per OVSDB bridge name (plus cfg.integration_bridge for devices missing from
// OVSDB): the count of binding problems.
std::map<std::string, uint64_t> rule_vif_binding_mismatch(const PortModel& ports,
                                                          const LibvirtView* libvirt,
                                                          const RuleGate& gate, TimePoint now,
                                                          ViolationSink& out);

// Collects violations, keeping at most max_examples per (bridge, rule).
class ViolationSink {
 public:
  explicit ViolationSink(size_t max_examples) : max_(max_examples) {}
  void add(Violation v);
  std::vector<Violation> take() { return std::move(out_); }

 private:
  size_t max_;
  std::map<std::pair<std::string, std::string>, size_t> kept_;
  std::vector<Violation> out_;
};

}  // namespace hvtel::ovsdb
