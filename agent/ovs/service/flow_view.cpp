#include "ovs/service/flow_view.h"
#include <algorithm>

#include <set>

#include "ovs/openflow/ofp_format.h"
#include "base/util/strings.h"

namespace hvtel::ovs_service {
namespace {

// "NXM_NX_REG5[]" / "NXM_NX_REG5[0..31]" -> "reg5"; empty when not a whole register.
std::string whole_register(std::string_view ref) {
  constexpr std::string_view kPrefix = "NXM_NX_REG";
  if (!starts_with(ref, kPrefix)) return {};
  auto bracket = ref.find('[');
  if (bracket == std::string_view::npos) return {};
  auto num = ref.substr(kPrefix.size(), bracket - kPrefix.size());
  auto bits = ref.substr(bracket);
  if (!parse_u64(num) || (bits != "[]" && bits != "[0..31]")) return {};
  return "reg" + std::string(num);
}

// "reg5" (no mask in the value) -> "reg5"; empty otherwise.
bool is_register_name(std::string_view f) {
  return starts_with(f, "reg") && f.size() > 3 && parse_u64(f.substr(3)).has_value();
}

// Constant whole-register loads: "load:0x5->NXM_NX_REG5[]", "set_field:0x5->reg5".
void add_reg_load(const ovs::Action& a, ovsdb::FlowActions& out) {
  std::string_view t = a.text;
  auto arrow = t.rfind("->");
  if (arrow == std::string_view::npos) return;
  auto colon = t.find(':');
  if (colon == std::string_view::npos || colon > arrow) return;
  auto value_text = t.substr(colon + 1, arrow - colon - 1);
  auto dest = t.substr(arrow + 2);
  if (value_text.find('/') != std::string_view::npos) return;  // masked set_field
  std::string reg;
  if (a.kind == ovs::ActionKind::kLoad) {
    reg = whole_register(dest);
  } else if (is_register_name(dest)) {
    reg = std::string(dest);
  }
  if (reg.empty()) return;
  std::optional<uint64_t> v = starts_with(value_text, "0x") ? parse_u64(value_text.substr(2), 16)
                                                            : parse_u64(value_text, 10);
  if (v) out.reg_loads.emplace_back(reg, *v);
}

void walk(const std::vector<ovs::Action>& list, ovsdb::FlowActions& out) {
  for (const auto& a : list) {
    switch (a.kind) {
      case ovs::ActionKind::kOutput:
      case ovs::ActionKind::kEnqueue:
      case ovs::ActionKind::kOutputTrunc:
        if (a.port >= 0xff00) out.special_outputs.push_back(ovs::fmtx::port(a.port));
        break;
      case ovs::ActionKind::kController:
        out.special_outputs.emplace_back("CONTROLLER");
        break;
      case ovs::ActionKind::kOutputReg:
        // "output:NXM_NX_REG5[]" -> "NXM_NX_REG5[]"
        out.special_outputs.push_back(starts_with(a.text, "output:") ? a.text.substr(7) : a.text);
        break;
      case ovs::ActionKind::kLoad:
      case ovs::ActionKind::kSetField:
        add_reg_load(a, out);
        break;
      default:
        break;
    }
    if (!a.nested.empty()) walk(a.nested, out);
  }
}

}  // namespace

ovsdb::NormalMatch normal_match_from(std::string_view packed_fields) {
  ovsdb::NormalMatch out;
  size_t n = 0;
  ovs::for_each_packed_field(packed_fields, [&](ovs::FieldId, ovs::ByteView, ovs::ByteView) { ++n; });
  out.reserve(n);  // held for every flow: no growth slack
  ovs::for_each_packed_field(packed_fields, [&](ovs::FieldId id, ovs::ByteView value,
                                                ovs::ByteView mask) {
    if (value.size() > 16) return;  // no OpenFlow match field is wider
    ovsdb::FieldValue fv;
    fv.is_bits = true;
    fv.exact = std::all_of(mask.begin(), mask.end(), [](uint8_t b) { return b == 0xff; });
    const size_t first = 16 - value.size();
    for (size_t i = 0; i < value.size(); ++i) {
      fv.value[first + i] = value[i];
      fv.mask[first + i] = mask[i];
    }
    if (fv.exact) fv.mask.fill(0xff);
    out.emplace(ovsdb::canonical_field_name(ovs::field_info(id).name), fv);
  });
  return out;
}

ovsdb::FlowActions flow_actions_from(const ovs::ActionList& actions, const std::string& text) {
  ovsdb::FlowActions out;
  const auto& facts = actions.facts;
  out.output_ports = facts.output_ports;
  out.resubmit_tables = facts.resubmit_tables;
  out.vlan_sets = facts.vlan_vids_set;
  out.strips_vlan = facts.strips_vlan;
  out.is_drop = facts.is_drop;
  out.text = text;
  walk(actions.actions, out);
  bool all_conj = !actions.actions.empty();
  for (const auto& a : actions.actions) {
    if (a.kind != ovs::ActionKind::kConjunction) all_conj = false;
  }
  out.conjunction_only = all_conj;
  return out;
}

ovsdb::FlowView flow_view_from(const ovs::MirrorFlow& flow, const ClockPair& clocks) {
  ovsdb::FlowView v;
  v.table = flow.key.table;
  v.priority = flow.key.priority;
  v.cookie = flow.cookie;
  v.match = normal_match_from(flow.match_fields);
  v.match_text = flow.key.match;
  if (flow.actions_known) {
    v.actions = flow_actions_from(flow.actions(), flow.actions_text());
  } else {
    // Seen only without actions (a DELETED-style update): claim nothing.
    v.actions.text = "<unknown>";
  }
  v.first_seen = clocks.to_steady(flow.first_seen);
  v.last_change = clocks.to_steady(flow.last_change);
  return v;
}

ovsdb::BridgeFlows bridge_flows_from(const ovs::MirrorSnapshot& before,
                                     const std::vector<ovs::MirrorFlow>& flows,
                                     const ovs::MirrorSnapshot& after, BridgeViewState& state,
                                     const ClockPair& clocks) {
  const TimePoint now = clocks.steady;
  const bool torn = before.change_seq != after.change_seq || before.resyncs != after.resyncs ||
                    before.disconnects != after.disconnects;
  const bool moved = !state.seen || state.change_seq != after.change_seq ||
                     state.resyncs != after.resyncs || state.disconnects != after.disconnects;
  const bool complete = before.view_complete && after.view_complete;

  if (moved || torn) state.last_change = now;
  if (!complete && (!state.seen || state.view_complete)) state.incomplete_since = now;
  state.seen = true;
  state.view_complete = complete;
  state.change_seq = after.change_seq;
  state.resyncs = after.resyncs;
  state.disconnects = after.disconnects;

  ovsdb::BridgeFlows out;
  out.bridge = after.bridge;
  out.view_complete = complete;
  out.incomplete_since = state.incomplete_since;
  out.last_change = state.last_change;
  out.resync_diff = 0;
  out.flows.reserve(flows.size());
  for (const auto& f : flows) out.flows.push_back(flow_view_from(f, clocks));
  return out;
}

const std::vector<ovsdb::BridgeFlows>& BridgeTracker::read(
    const std::vector<std::shared_ptr<const ovs::FlowMirror>>& mirrors, const ClockPair& clocks) {
  std::vector<ovsdb::BridgeFlows> out;
  std::set<std::string> present;
  for (const auto& m : mirrors) {
    if (!m) continue;
    present.insert(m->bridge());
    auto before = m->snapshot();
    auto sit = states_.find(m->bridge());
    auto cached = std::find_if(flows_.begin(), flows_.end(),
                               [&](const auto& b) { return b.bridge == m->bridge(); });
    if (sit != states_.end() && sit->second.seen && cached != flows_.end() &&
        sit->second.change_seq == before.change_seq && sit->second.resyncs == before.resyncs &&
        sit->second.disconnects == before.disconnects &&
        sit->second.view_complete == before.view_complete) {
      out.push_back(std::move(*cached));  // unchanged: reuse the converted flows
      continue;
    }
    // Free the stale conversion first: at 100k flows, holding it while the new
    // one is built doubled the rule thread's peak (RSS keeps peaks).
    if (cached != flows_.end()) std::vector<ovsdb::FlowView>().swap(cached->flows);
    auto flows = m->flows();
    auto after = m->snapshot();
    out.push_back(bridge_flows_from(before, flows, after, states_[m->bridge()], clocks));
    ++generation_;
  }
  for (auto it = states_.begin(); it != states_.end();) {
    if (present.count(it->first)) {
      ++it;
    } else {
      it = states_.erase(it);
      ++generation_;
    }
  }
  flows_ = std::move(out);
  return flows_;
}

}  // namespace hvtel::ovs_service
