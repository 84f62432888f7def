#include "ovs/datapath/ovs_dp_collector.h"

#include <map>
#include <vector>

#include "base/metrics/catalog.h"
#include "base/util/log.h"

namespace hvtel::ovs_dp {

namespace catalog = metrics::catalog;

const char* upcall_cmd_name(uint32_t cmd) {
  switch (cmd) {
    case HV_OVS_UPCALL_MISS: return "miss";
    case HV_OVS_UPCALL_ACTION: return "action";
    default: return "other";
  }
}

const char* flow_op_name(uint32_t op) {
  switch (op) {
    case HV_OVS_OP_NEW: return "new";
    case HV_OVS_OP_SET: return "set";
    case HV_OVS_OP_DEL: return "del";
    default: return "other";
  }
}

namespace {

// Several kernel keys can end up with one label set (a port renumbered, two
// unnamed netns): sum them so no series is emitted twice.
using Series = std::map<std::vector<std::string>, double>;

void emit(metrics::FamilyBuilder& b, const std::vector<std::string>& names, const Series& s) {
  for (const auto& [values, v] : s) {
    metrics::Labels l;
    for (size_t i = 0; i < names.size(); ++i) l.emplace_back(names[i], values[i]);
    b.add(l, v);
  }
}

}  // namespace

std::vector<prometheus::MetricFamily> OvsDpCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  auto reader = source_ ? source_() : nullptr;
  if (!reader) return out;

  Series upcalls, failures;
  for (const auto& u : reader->upcalls()) {
    std::string dp = names_->datapath(u.dp);
    std::string iface = names_->port(u.dp, u.port);
    std::string port = iface.empty() ? std::to_string(u.port) : iface;
    std::string inst = iface.empty() || !instance_ ? "" : instance_(iface);
    upcalls[{dp, port, inst, upcall_cmd_name(u.cmd)}] += static_cast<double>(u.upcalls);
    failures[{dp, port, inst}] += static_cast<double>(u.failures);
  }
  Series changes, errors;
  for (const auto& f : reader->flow_ops()) {
    std::string dp = names_->datapath(f.dp);
    // Every op of a datapath that was seen at all, so rates start from 0.
    for (uint32_t op : {HV_OVS_OP_NEW, HV_OVS_OP_SET, HV_OVS_OP_DEL}) {
      changes[{dp, flow_op_name(op)}] += 0;
      errors[{dp, flow_op_name(op)}] += 0;
    }
    (f.ok ? changes : errors)[{dp, flow_op_name(f.op)}] += static_cast<double>(f.count);
  }

  metrics::FamilyBuilder up(catalog::kOvsUpcalls);
  emit(up, {"datapath", "port", "instance_id", "cmd"}, upcalls);
  metrics::append(out, std::move(up));
  metrics::FamilyBuilder fail(catalog::kOvsUpcallFailures);
  emit(fail, {"datapath", "port", "instance_id"}, failures);
  metrics::append(out, std::move(fail));
  metrics::FamilyBuilder ch(catalog::kOvsDatapathFlowChanges);
  emit(ch, {"datapath", "op"}, changes);
  metrics::append(out, std::move(ch));
  metrics::FamilyBuilder err(catalog::kOvsDatapathFlowChangeErrors);
  emit(err, {"datapath", "op"}, errors);
  metrics::append(out, std::move(err));

  auto c = reader->counters();
  if (!c) {
    // Left out rather than 0: a drop to 0 would read as a counter reset.
    log::warn("ovs_dp", "{}: {}", catalog::kOvsDatapathLostEvents.name, c.error().message);
    return out;
  }
  metrics::FamilyBuilder lost(catalog::kOvsDatapathLostEvents);
  lost.add({{"reason", "upcall_map_full"}}, static_cast<double>((*c)[HV_OVS_CNT_UPCALL_MAP_FULL]));
  lost.add({{"reason", "flow_map_full"}}, static_cast<double>((*c)[HV_OVS_CNT_FLOW_MAP_FULL]));
  lost.add({{"reason", "unattributed_failure"}}, static_cast<double>((*c)[HV_OVS_CNT_UNATTRIBUTED]));
  metrics::append(out, std::move(lost));
  return out;
}

}  // namespace hvtel::ovs_dp
