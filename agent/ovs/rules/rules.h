// Dirty-flow rules: pure functions over (F) the OpenFlow mirror, (O) the OVSDB
// port model and (L) libvirt's view of the guests' interfaces.
//
// The inputs are plain structs so that the rules can be tested with fixtures
// and fed by any flow source (the OpenFlow monitor mirror, or a dump-flows
// parser). Rule names are stable snake_case strings: they are the `rule` label
// of hvtel_ovs_dirty_flows and appear in logs and the CLI. See docs/dirty-flows.md.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/model/instance.h"
#include "ovs/ovsdb/port_model.h"

namespace hvtel::ovsdb {

// ---------------------------------------------------------------- inputs: F

// One decoded match field: value and mask bits, right-aligned in 16 bytes
// (in_port 5 is value[15] = 5; a MAC fills bytes 10..15, an IPv4 address
// 12..15), value already ANDed with the mask. Fields are keyed by their
// ovs-ofctl name (canonical_field_name: dl_src, nw_src, tp_dst, vlan_tci,
// reg5, ...). A value that is not bits (never from a decoded match; a
// fixture's text the test reader cannot parse) holds an opaque digest of its
// text in `value` and compares by equality only.
struct FieldValue {
  bool is_bits = false;
  bool exact = true;  // every bit of the field matters
  std::array<uint8_t, 16> value{};
  std::array<uint8_t, 16> mask{};

  bool operator==(const FieldValue&) const = default;
};

// Fields sorted by name, in one vector: the rule engine holds one per flow of
// every bridge (a std::map node per field cost ~80 B more per field at 100k flows).
class NormalMatch {
 public:
  using value_type = std::pair<std::string, FieldValue>;
  using iterator = std::vector<value_type>::iterator;
  using const_iterator = std::vector<value_type>::const_iterator;

  // Inserts in name order; an existing field is kept (inserted = false).
  std::pair<iterator, bool> emplace(std::string name, const FieldValue& value);
  const_iterator find(std::string_view name) const;
  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  void reserve(size_t n) { fields_.reserve(n); }
  bool operator==(const NormalMatch&) const = default;

 private:
  std::vector<value_type> fields_;
};

// The rules' name of an OVS field: aliases folded (eth_src -> dl_src,
// ip_src -> nw_src, tcp_dst -> tp_dst, icmpv6_type -> icmp_type, ...).
std::string canonical_field_name(std::string_view ovs_name);

// What a flow's actions do, as far as the rules care. Nested actions (inside
// ct(exec(...)), clone(...), ...) are included.
struct FlowActions {
  std::vector<uint32_t> output_ports;        // numeric output:N / enqueue
  std::vector<std::string> special_outputs;  // LOCAL, IN_PORT, NORMAL, FLOOD, ALL, CONTROLLER,
                                             // NONE, or "NXM_NX_REG5[]" for output_reg
  std::vector<uint8_t> resubmit_tables;      // resubmit(,N), goto_table:N
  std::vector<uint16_t> vlan_sets;           // mod_vlan_vid:V, set_field:V->vlan_vid
  bool strips_vlan = false;                  // strip_vlan / pop_vlan
  // Register loads with a constant (set_field:5->reg5, load:0x5->NXM_NX_REG5[]),
  // field in ovs-ofctl spelling ("reg5"). Whole-register loads only.
  std::vector<std::pair<std::string, uint64_t>> reg_loads;
  bool is_drop = false;           // actions=drop (empty action list)
  bool conjunction_only = false;  // every action is conjunction(id,k/n)
  std::string text;               // canonical action text ("resubmit(,60)")
};

struct FlowView {
  uint8_t table = 0;
  uint16_t priority = 32768;
  uint64_t cookie = 0;
  NormalMatch match;       // decoded: what the rules read
  std::string match_text;  // the mirror's canonical match text: identity and display only
  FlowActions actions;
  TimePoint first_seen{};   // optional; informational
  TimePoint last_change{};

  // "table=60, priority=100, cookie=0x..., in_port=5 actions=..." for logs and the CLI.
  std::string canonical_text() const;
};

// One bridge's flows as the OpenFlow mirror holds them.
struct BridgeFlows {
  std::string bridge;
  // The initial flow set arrived and the monitor is not between PAUSED and RESUMED.
  bool view_complete = false;
  TimePoint incomplete_since{};  // when the view last became incomplete (meaningful if !complete)
  TimePoint last_change{};       // last flow add/modify/delete on the bridge
  // Differences found by the last reconcile dump against the mirror (0 = consistent).
  uint64_t resync_diff = 0;
  std::vector<FlowView> flows;
};

// ---------------------------------------------------------------- inputs: L

struct DomainView {
  std::string instance_id;  // model::Instance::instance_id (Nova UUID)
  bool running = true;
  std::vector<model::Interface> interfaces;
  TimePoint first_seen{};   // when the agent first saw the domain running
};

struct LibvirtView {
  bool available = false;   // false: rules needing L are skipped
  std::vector<DomainView> domains;
};

// Convenience: the running instances of the shared model, all first seen at `seen`.
LibvirtView libvirt_view_from(const std::vector<model::Instance>& instances, TimePoint seen);

// ---------------------------------------------------------------- config

struct RuleConfig {
  std::chrono::seconds quiet{10};           // Q: bridge has had no flow change this long
  std::chrono::seconds port_grace{60};      // G: port age since created / ofport changed
  std::chrono::seconds restart_window{300}; // R: after a new dominant cookie
  std::chrono::seconds monitor_gap{30};     // T: flow_monitor_gap when incomplete this long
  // R13: cookies always considered the agent's, per bridge ("*" for every bridge).
  // When a bridge has an entry, only these cookies (plus the "*" ones) are allowed
  // and no cookie is learned.
  std::map<std::string, std::set<uint64_t>> cookie_allow;
  // R16: the bridge label for libvirt interfaces that are missing from OVSDB.
  std::string integration_bridge = "br-int";
  // R12: the tunnel bridge (tunnel Interfaces on any bridge are checked too).
  std::string tunnel_bridge = "br-tun";
  // R14: more than this fraction of a bridge's flows gone within W and not
  // back within T fires; it stops W after the loss (the count was re-learned).
  double flow_loss_fraction = 0.30;
  std::chrono::seconds flow_loss_window{60};  // W
  std::chrono::seconds flow_loss_hold{60};    // T
  // Violations kept per (bridge, rule) for logs/CLI; counts are always exact.
  size_t max_examples = 100;
};

// ---------------------------------------------------------------- outputs

inline constexpr const char* kOutputToMissingOfport = "output_to_missing_ofport";
inline constexpr const char* kMatchOnMissingOfport = "match_on_missing_ofport";
inline constexpr const char* kOfportMacMismatch = "ofport_mac_mismatch";
inline constexpr const char* kBoundPortMissingFlows = "bound_port_missing_flows";
inline constexpr const char* kAntiSpoofIncomplete = "anti_spoof_incomplete";
inline constexpr const char* kDeadVlanDropInvalid = "dead_vlan_drop_invalid";
inline constexpr const char* kCanaryMissing = "canary_missing";
inline constexpr const char* kFailModeNotSecure = "fail_mode_not_secure";
inline constexpr const char* kPortStuckDeadVlan = "port_stuck_dead_vlan";
inline constexpr const char* kStalePortBlockFlow = "stale_port_block_flow";
inline constexpr const char* kLocalVlanInconsistent = "local_vlan_inconsistent";
inline constexpr const char* kTunnelFlowStale = "tunnel_flow_stale";
inline constexpr const char* kForeignCookieFlows = "foreign_cookie_flows";
inline constexpr const char* kMassFlowLoss = "mass_flow_loss";
inline constexpr const char* kSamePriorityOverlap = "same_priority_overlap";
inline constexpr const char* kVifBindingMismatch = "vif_binding_mismatch";
inline constexpr const char* kFlowMonitorGap = "flow_monitor_gap";

// Every rule name, in evaluation order.
const std::vector<std::string>& rule_names();

struct Violation {
  std::string rule;
  std::string bridge;
  int table = -1;      // -1 when not about a flow
  int priority = -1;
  std::string subject; // canonical flow text, or an interface name
  std::string detail;  // human explanation
};

struct RuleReport {
  std::vector<Violation> violations;  // at most max_examples per (bridge, rule)
  // Exact counts per (bridge, rule) for every rule that was evaluated on the
  // bridge (zeros included). A pair that is absent was held back by gating:
  // keep exporting its previous value.
  std::map<std::pair<std::string, std::string>, uint64_t> counts;
  // Why a bridge's flow rules were held back (absent when evaluated).
  std::map<std::string, std::string> held;
};

}  // namespace hvtel::ovsdb
