// Test-only: ovs-ofctl match text -> the rules' decoded match (see match_text.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ovs/rules/rules.h"

namespace hvtel::ovsdb::testing {

// One match field in ovs-ofctl spelling: in_port, dl_src, dl_vlan, nw_src,
// ct_state, reg5, ...; a value "10.0.0.0/24" may also be given with mask "24"
// or inline. Protocol shorthands (ip, arp, tcp, ...) have an empty value.
struct MatchField {
  std::string field;
  std::string value;
  std::optional<std::string> mask;  // absent: exact match
};

// "ip,in_port=1,nw_src=10.0.0.0/24" -> {ip,""}, {in_port,"1"}, {nw_src,"10.0.0.0","24"}.
// Splits on top-level commas; a "/" separates value and mask except in the
// "+trk-est" flag form (ct_state, tcp_flags).
std::vector<MatchField> match_fields_from_text(std::string_view match);

NormalMatch normalize_match(const std::vector<MatchField>& match);
// Both steps.
NormalMatch match_from_text(std::string_view match);

}  // namespace hvtel::ovsdb::testing
