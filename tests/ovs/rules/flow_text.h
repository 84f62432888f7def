// Test-only: builds a FlowView from dump-flows-like text, so fixtures read
// like what an operator sees:
//   "table=60, priority=90, cookie=0xabc, dl_vlan=1,dl_dst=fa:16:3e:00:00:01 actions=set_field:1->reg5,resubmit(,81)"
// Understands just the actions the rule fixtures use.
#pragma once

#include <string>
#include <vector>

#include "base/util/strings.h"
#include "match_text.h"
#include "ovs/rules/rules.h"

namespace hvtel::ovsdb::testing {

inline std::vector<std::string> split_top(const std::string& s) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

inline FlowView flow(const std::string& text) {
  FlowView f;
  std::vector<MatchField> fields;
  auto apos = text.find(" actions=");
  std::string head = text.substr(0, apos);
  std::string acts = text.substr(apos + 9);
  for (auto& part : split_top(head)) {
    std::string p(trim(part));
    if (p.empty()) continue;
    auto eq = p.find('=');
    std::string k = eq == std::string::npos ? p : p.substr(0, eq);
    std::string v = eq == std::string::npos ? "" : p.substr(eq + 1);
    if (k == "table") {
      f.table = static_cast<uint8_t>(std::stoi(v));
    } else if (k == "priority") {
      f.priority = static_cast<uint16_t>(std::stoi(v));
    } else if (k == "cookie") {
      f.cookie = std::stoull(v, nullptr, 16);
    } else {
      MatchField m{k, v, std::nullopt};
      if (auto slash = v.find('/'); slash != std::string::npos && k != "ct_state") {
        m.value = v.substr(0, slash);
        m.mask = v.substr(slash + 1);
      }
      fields.push_back(m);
      f.match_text += (f.match_text.empty() ? "" : ",") + p;
    }
  }
  f.match = normalize_match(fields);
  f.actions.text = acts;
  if (acts == "drop") {
    f.actions.is_drop = true;
    return f;
  }
  bool all_conj = true;
  for (auto& a : split_top(acts)) {
    if (a.rfind("output:", 0) == 0) {
      f.actions.output_ports.push_back(static_cast<uint32_t>(std::stoul(a.substr(7))));
    } else if (a.rfind("resubmit(,", 0) == 0) {
      f.actions.resubmit_tables.push_back(static_cast<uint8_t>(std::stoi(a.substr(10))));
    } else if (a.rfind("set_field:", 0) == 0) {
      auto arrow = a.find("->");
      std::string field = a.substr(arrow + 2);
      uint64_t v = std::stoull(a.substr(10, arrow - 10), nullptr, 0);
      if (field.rfind("reg", 0) == 0) f.actions.reg_loads.emplace_back(field, v);
      if (field == "vlan_vid") f.actions.vlan_sets.push_back(static_cast<uint16_t>(v));
    } else if (a.rfind("mod_vlan_vid:", 0) == 0) {
      f.actions.vlan_sets.push_back(static_cast<uint16_t>(std::stoul(a.substr(13))));
    } else if (a == "NORMAL" || a == "LOCAL" || a == "IN_PORT" || a == "FLOOD") {
      f.actions.special_outputs.push_back(a);
    } else if (a == "strip_vlan") {
      f.actions.strips_vlan = true;
    }
    if (a.rfind("conjunction(", 0) != 0) all_conj = false;
  }
  f.actions.conjunction_only = all_conj;
  return f;
}

}  // namespace hvtel::ovsdb::testing
