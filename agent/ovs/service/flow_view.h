// Adapter from the OpenFlow mirror (hvtel_ovs) to the rule engine's plain
// inputs (hvtel_ovsdb FlowView / BridgeFlows).
//
// Matches come from the decoded match the mirror keeps beside the canonical
// text (which stays the flow's identity and display string); action facts come
// from the decoded ActionList. The mirror stamps flows with
// the system clock, the rules gate on the steady clock: a ClockPair taken once
// per evaluation converts between the two.
//
// BridgeTracker keeps what a single mirror read cannot tell: when the bridge
// last changed (change_seq / resync counters moved since the previous read)
// and since when its view has been incomplete.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ovs/openflow/actions.h"
#include "ovs/openflow/flow_mirror.h"
#include "ovs/rules/rules.h"

namespace hvtel::ovs_service {

using ovsdb::TimePoint;

// One instant on both clocks.
struct ClockPair {
  std::chrono::system_clock::time_point system{};
  TimePoint steady{};
  static ClockPair now() { return {std::chrono::system_clock::now(), ovsdb::Clock::now()}; }
  TimePoint to_steady(std::chrono::system_clock::time_point t) const {
    return steady + std::chrono::duration_cast<ovsdb::Clock::duration>(t - system);
  }
};

// The rules' view of a decoded match (MirrorFlow::match_fields): each field
// under its ovs-ofctl name, value and mask right-aligned in 16 bytes.
ovsdb::NormalMatch normal_match_from(std::string_view packed_fields);

// Action facts in the rule engine's terms (nested actions included).
ovsdb::FlowActions flow_actions_from(const ovs::ActionList& actions, const std::string& text);

ovsdb::FlowView flow_view_from(const ovs::MirrorFlow& flow, const ClockPair& clocks);

// Per-bridge state carried between reads of the same mirror.
struct BridgeViewState {
  bool seen = false;
  bool view_complete = false;
  uint64_t change_seq = 0;
  uint64_t resyncs = 0;
  uint64_t disconnects = 0;
  TimePoint incomplete_since{};
  TimePoint last_change{};
};

// Builds one bridge's BridgeFlows from a read of its mirror: `before` and
// `after` are snapshots taken around flows(). Rules, chosen to never shorten
// the gating windows:
// - last_change = now when the bridge is seen for the first time, when
//   change_seq/resyncs/disconnects moved since the previous read, or when they
//   moved during this read (the flow list may be torn; Q then holds it);
// - view_complete = before.view_complete && after.view_complete;
// - incomplete_since = now when the view is seen incomplete after having been
//   complete (or on first sight), else kept;
// - resync_diff = 0: no reconcile dump exists yet (R17 reports only the gap).
ovsdb::BridgeFlows bridge_flows_from(const ovs::MirrorSnapshot& before,
                                     const std::vector<ovs::MirrorFlow>& flows,
                                     const ovs::MirrorSnapshot& after, BridgeViewState& state,
                                     const ClockPair& clocks);

class BridgeTracker {
 public:
  // Reads every mirror (snapshot, flows, snapshot) and forgets bridges that
  // are gone. A bridge whose mirror has not changed since the last read keeps
  // its converted flows: at 100k flows, copying and re-parsing them every
  // evaluation cost a third of a core.
  const std::vector<ovsdb::BridgeFlows>& read(
      const std::vector<std::shared_ptr<const ovs::FlowMirror>>& mirrors, const ClockPair& clocks);
  const std::map<std::string, BridgeViewState>& states() const { return states_; }
  // Bumps whenever any bridge's flows or state changed in a read.
  uint64_t generation() const { return generation_; }

 private:
  std::map<std::string, BridgeViewState> states_;
  std::vector<ovsdb::BridgeFlows> flows_;
  uint64_t generation_ = 0;
};

}  // namespace hvtel::ovs_service
