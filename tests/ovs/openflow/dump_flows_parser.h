// Parser for `ovs-ofctl dump-flows --no-names` output (ovs-flows.md §3.4).
//
// Produces the same FlowIdentity as the binary monitor path, so the tests can
// diff a dump against the agent's mirror. Test code: the agent never parses it.
// Statistics are parsed into DumpedFlow but are not part of the identity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ovs/openflow/canonical.h"
#include "base/util/result.h"

namespace hvtel::ovs {

struct DumpedFlow {
  FlowIdentity id;
  double duration_s = 0;
  std::optional<uint64_t> n_packets;  // nullopt for "?"
  std::optional<uint64_t> n_bytes;
  uint16_t idle_timeout = 0;
  uint16_t hard_timeout = 0;
  std::optional<uint64_t> idle_age;
  std::optional<uint64_t> hard_age;
  uint16_t importance = 0;
  std::vector<std::string> flags;  // send_flow_rem, check_overlap, ...
};

// Parses one flow line (leading whitespace allowed). Lines that are not flows
// (the "NXST_FLOW reply" header, blank lines) return nullopt; malformed flow
// lines return an Error.
Result<std::optional<DumpedFlow>> parse_dump_flow_line(std::string_view line);

struct DumpParseResult {
  std::vector<DumpedFlow> flows;
  std::vector<std::string> errors;  // "line N: why"
};
DumpParseResult parse_dump_flows(std::string_view text);

// Splits an action list on top-level commas only (parentheses and [..] nest).
std::vector<std::string> split_actions(std::string_view actions);

}  // namespace hvtel::ovs
