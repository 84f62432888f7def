// RuleGate: when the dirty-flow rules may fire, against false positives.
//
// Flow rules run on a bridge only when its OpenFlow view is complete and the
// bridge has been quiet for Q. Port-scoped rules additionally skip ports
// younger than G (created, or ofport changed) and ofports released less than G
// ago, and are held for R after a new dominant cookie (a Neutron agent
// restart re-installs every flow). The gate is the only stateful part of the
// rule engine; time is always passed in, so tests inject it.
#pragma once

#include <map>
#include <optional>
#include <string>

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

  // Forgets bridges that no longer exist.
  void forget(const std::string& bridge) { cookies_.erase(bridge); }

 private:
  struct CookieState {
    uint64_t cookie = 0;
    TimePoint since{};
  };
  RuleConfig cfg_;
  std::map<std::string, CookieState> cookies_;
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
