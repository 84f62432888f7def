// OpenFlow action decoder: OpenFlow 1.0 + Nicira extensions, and OpenFlow
// 1.3/1.4 actions and instructions as Open vSwitch sends them.
//
// Each action is decoded into its ovs-ofctl text form plus the structured facts
// the dirty-flow rules need (output ports, resubmit targets, VLAN rewrites,
// drop). Anything not understood is kept as raw bytes and rendered as
// "raw:<hex>", so identity and counting still work on unknown actions. The
// decoder never fails as a whole: a malformed action list yields the actions
// decoded so far, a trailing raw action and an error string.
//
// The text is always the OpenFlow 1.0 rendering (what `ovs-ofctl dump-flows
// --no-names` prints), whichever version the bytes came in: OpenFlow 1.4
// actions are rewritten into their OpenFlow 1.0 form first (legacy_actions.h).
// What OpenFlow 1.0 cannot carry at all (meter, clear_actions,
// write_actions(...), push_vlan) stays in the list, marked non-canonical: it
// feeds the facts but not the text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ovs/openflow/openflow_wire.h"

namespace hvtel::ovs {

enum class ActionKind {
  kOutput, kController, kEnqueue, kOutputReg, kOutputTrunc, kGroup, kBundle,
  kResubmit, kGotoTable,
  kSetVlanVid, kSetVlanPcp, kStripVlan, kPushVlan, kPushMpls, kPopMpls, kSetMpls,
  kSetDlSrc, kSetDlDst, kSetNwSrc, kSetNwDst, kSetNwTos, kSetNwEcn, kSetNwTtl,
  kSetTpSrc, kSetTpDst, kDecTtl,
  kLoad, kSetField, kMove, kStackPush, kStackPop, kSetTunnel, kWriteMetadata,
  kSetQueue, kPopQueue,
  kCt, kNat, kCtClear, kLearn, kConjunction, kNote, kMultipath, kSample, kClone, kExit,
  kFinTimeout, kMeter, kDebug, kWriteActions, kClearActions,
  kUnknown,
};

struct Action {
  ActionKind kind = ActionKind::kUnknown;
  std::string text;            // ovs-ofctl syntax
  Bytes raw;                   // the wire bytes it was decoded from (OpenFlow 1.4:
                               // shared when one action reads as two 1.0 ones)
  std::vector<Action> nested;  // ct(exec(...)), clone(...), write_actions(...)
  bool canonical = true;       // false: OpenFlow 1.0 has no form for it, so
                               // dump-flows omits it and render_actions skips it
  // Structured arguments, meaningful per kind.
  uint32_t port = 0;           // kOutput/kEnqueue/kOutputTrunc (16-bit OF1.0 port)
  uint8_t table = 0xff;        // kResubmit/kGotoTable target, kCt recirc table
  uint16_t vlan_vid = 0;       // kSetVlanVid (also load/set_field to the VID)
  bool sets_vlan_vid = false;  // true for mod_vlan_vid and load/set_field writing the VID
  bool operator==(const Action&) const = default;
};

// Facts aggregated over the whole list, nested actions included.
struct ActionFacts {
  std::vector<uint32_t> output_ports;     // numeric ports (< 0xff00), in action order
  std::vector<uint8_t> resubmit_tables;   // resubmit/goto_table/ct(table=) targets
  std::vector<uint16_t> vlan_vids_set;    // mod_vlan_vid / set_field / load to VID
  bool is_drop = false;                   // canonical text "drop" and no write_actions
  bool strips_vlan = false;
  bool pushes_vlan = false;
  bool outputs_normal = false;
  bool outputs_flood = false;             // FLOOD or ALL
  bool outputs_controller = false;
  bool outputs_local = false;
  bool outputs_in_port = false;
  bool outputs_via_register = false;      // output:NXM_*[] (port unknown statically)
  bool has_ct = false;
  bool has_learn = false;
  bool has_conjunction = false;
  bool has_unknown = false;
  bool operator==(const ActionFacts&) const = default;
};

struct ActionList {
  std::vector<Action> actions;
  Bytes raw;
  ActionFacts facts;
  std::string error;  // empty when every byte was understood
  bool ok() const { return error.empty(); }
  bool operator==(const ActionList&) const = default;
};

// Which encoding of the standard (non-experimenter) action types to expect.
enum class ActionDialect { kOf10, kOf13 };

// An action list (OpenFlow 1.0 flow update, or one OpenFlow 1.3+ Apply-Actions).
ActionList decode_actions(ByteView data, ActionDialect dialect = ActionDialect::kOf10);
// An OpenFlow 1.3/1.4/1.5 instruction list (goto_table, write_metadata,
// apply/write/clear_actions, meter), flattened in wire order.
// 'fold_enqueue': read OVS's 1.1+ form of enqueue (set_queue, output with
// max_len 0xffff, pop_queue) as enqueue:P:Q, which dump-flows prints when the
// flow was installed over OpenFlow 1.0. Pass false for a switch that does not
// allow 1.0: no flow there was installed that way, and dump-flows prints the
// three actions.
ActionList decode_instructions(ByteView data, bool fold_enqueue = true);

// Comma-joined texts of the canonical actions, "drop" when there are none
// (ovs-ofctl convention).
std::string render_actions(const std::vector<Action>& actions);

}  // namespace hvtel::ovs
