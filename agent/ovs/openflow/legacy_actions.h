// OpenFlow 1.1+ actions and instructions rewritten into the OpenFlow 1.0 /
// Nicira actions ovs-vswitchd sends for the same flow over OpenFlow 1.0.
//
// Why: the mirror's canonical text is what `ovs-ofctl dump-flows --no-names`
// prints, and that tool speaks OpenFlow 1.0, so ovs-vswitchd re-encodes every
// flow for 1.0 before ovs-ofctl formats it (a Set-Field becomes mod_nw_src or
// load:..., pop_vlan becomes strip_vlan, goto_table becomes resubmit(,N)).
// Rewriting an OpenFlow 1.4 action into those bytes and handing them to the
// OpenFlow 1.0 decoder yields the same text by construction. The rewrite
// follows Open vSwitch 3.1. Where OpenFlow 1.4 cannot tell two 1.0 forms apart
// (set_mpls_label(N) and set_field:N->mpls_label both arrive as a Set-Field)
// it takes the Set-Field reading; docs/dirty-flows.md lists these cases.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ovs/openflow/openflow_wire.h"

namespace hvtel::ovs::legacy {

// OpenFlow 1.3-1.5 action types (OFPAT_*); 1-10 are not used after 1.1,
// 28 and 29 are new in 1.5 (OVS uses copy_field for move:, and meter as an
// action instead of an instruction).
enum Of13ActionType : uint16_t {
  kOutput13 = 0, kCopyTtlOut = 11, kCopyTtlIn = 12, kSetMplsTtl13 = 15, kDecMplsTtl13 = 16,
  kPushVlan13 = 17, kPopVlan13 = 18, kPushMpls13 = 19, kPopMpls13 = 20, kSetQueue13 = 21,
  kGroup13 = 22, kSetNwTtl13 = 23, kDecNwTtl13 = 24, kSetField13 = 25, kPushPbb13 = 26,
  kPopPbb13 = 27, kCopyField15 = 28, kMeter15 = 29, kExperimenter13 = 0xffff,
};

// OpenFlow 1.3/1.4 instruction types (OFPIT_*).
enum InstructionType : uint16_t {
  kGotoTable = 1, kWriteMetadata = 2, kWriteActions = 3, kApplyActions = 4, kClearActions = 5,
  kMeter = 6, kExperimenterInstruction = 0xffff,
};

// The OpenFlow 1.0 actions standing for one standard OpenFlow 1.1+ action
// (a Set-Field may become two, e.g. vlan_tci -> mod_vlan_vid + mod_vlan_pcp).
// nullopt when the action is malformed or OpenFlow 1.0 has no form for it
// (push_vlan, copy_ttl, PBB, meter, experimenter): the caller decides what to
// show. OpenFlow 1.5 copy_field becomes the Nicira reg_move OVS sends for it.
std::optional<std::vector<Bytes>> of10_actions(ByteView action);

// OVS writes enqueue:P:Q for OpenFlow 1.1+ as set_queue:Q, output:P with
// max_len 0xffff, Nicira pop_queue; for that triple, the OpenFlow 1.0 enqueue.
std::optional<Bytes> of10_enqueue(ByteView set_queue, ByteView output, ByteView pop_queue);

// goto_table and write_metadata instructions as the Nicira actions OVS uses for
// them in OpenFlow 1.0 (resubmit(,N), write_metadata); nullopt for the others.
std::optional<Bytes> of10_instruction(ByteView instruction);

}  // namespace hvtel::ovs::legacy
