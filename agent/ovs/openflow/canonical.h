// Canonical flow text: the syntax `ovs-ofctl dump-flows --no-names` (OVS 3.1)
// prints for a flow's match and actions, minus the statistics. Both the binary
// monitor path and the dump-flows text parser produce a FlowIdentity, so the
// mirror can be cross-checked against a dump and rules can be written against
// one representation.
#pragma once

#include <cstdint>
#include <string>

#include "ovs/openflow/actions.h"
#include "ovs/openflow/nxm.h"

namespace hvtel::ovs {

constexpr uint16_t kDefaultPriority = 32768;

// The match in ovs-ofctl field order ("ip,nw_src=10.0.0.0/24,tp_dst=80"),
// without priority; empty for a catch-all. Unknown TLVs are appended as
// "nxm:<header-hex>=<payload-hex>".
std::string render_match(const Match& m);

struct FlowIdentity {
  uint8_t table = 0;
  uint16_t priority = kDefaultPriority;
  uint64_t cookie = 0;
  std::string match;    // render_match() / the dump's match text
  std::string actions;  // render_actions() / the dump's actions text

  // "table=1, priority=100, cookie=0x5, in_port=1 actions=output:2" — every
  // field always present, so two identities compare equal as strings.
  std::string to_string() const;
  bool operator==(const FlowIdentity&) const = default;
  auto operator<=>(const FlowIdentity&) const = default;
};

// Renders like one dump-flows line (without stats): "priority=100,in_port=1 actions=..."
// with "priority=" omitted at the default priority, as ovs-ofctl does.
std::string render_flow_body(uint16_t priority, const std::string& match,
                             const std::string& actions);

}  // namespace hvtel::ovs
