// Dirty-flow rules: pure functions over (F) the OpenFlow mirror, (O) the OVSDB
// port model and (L) libvirt's view of the guests' interfaces.
//
// The inputs are plain structs so that the rules can be tested with fixtures
// and fed by any flow source (the OpenFlow monitor mirror, or a dump-flows
// parser). Rule names are stable snake_case strings: they are the `rule` label
// of hvtel_ovs_dirty_flows and appear in logs and the CLI. See docs/dirty-flows.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/model/instance.h"
#include "ovs/ovsdb/port_model.h"

namespace hvtel::ovsdb {

// ---------------------------------------------------------------- inputs: F

// One match field in ovs-ofctl spelling: in_port, dl_src, dl_dst, dl_type,
// dl_vlan, vlan_tci, nw_src, nw_proto, tp_dst, reg0..reg15, metadata, tun_id,
// ct_state, ct_zone, ... Values and masks are as ovs-ofctl prints them
// ("5", "0x1000", "fa:16:3e:00:00:01", "10.0.0.0", "+trk-est"); a value
// "10.0.0.0/24" may also be given with mask "24" or inline. Protocol
// shorthands (ip, arp, tcp, ...) may appear as a field with an empty value or
// already expanded to dl_type/nw_proto. NXM/OXM spellings (eth_src, ...) are
// accepted as aliases. Fields the decoder kept raw can use any unique name.
struct MatchField {
  std::string field;
  std::string value;
  std::optional<std::string> mask;  // absent: exact match
};

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
  std::vector<MatchField> match;
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
  // Violations kept per (bridge, rule) for logs/CLI; counts are always exact.
  size_t max_examples = 100;
};

// ---------------------------------------------------------------- outputs

inline constexpr const char* kOutputToMissingOfport = "output_to_missing_ofport";
inline constexpr const char* kMatchOnMissingOfport = "match_on_missing_ofport";
inline constexpr const char* kOfportMacMismatch = "ofport_mac_mismatch";
inline constexpr const char* kForeignCookieFlows = "foreign_cookie_flows";
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
