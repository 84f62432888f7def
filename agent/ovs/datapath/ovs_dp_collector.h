// OvsDpCollector: Open vSwitch kernel datapath metrics (bpf/ovs_dp.bpf.c),
// named in userspace: datapath and port numbers through NameCache, the
// instance behind an interface through a lookup the caller supplies.
// Exports nothing while the ovs_dp object is not loaded (module absent).
#pragma once

#include <prometheus/collectable.h>

#include <functional>
#include <memory>
#include <string>

#include "base/metrics/family.h"
#include "ovs/datapath/datapath_names.h"
#include "ovs/datapath/ovs_dp_maps.h"

namespace hvtel::ovs_dp {

namespace catalog {
using prometheus::MetricType;
inline constexpr metrics::MetricDesc kUpcalls{
    "hvtel_ovs_upcalls_total",
    "Upcalls from the Open vSwitch kernel datapath to ovs-vswitchd, by input port and cmd "
    "(miss: no megaflow matched, action: userspace() action). miss summed over a datapath is "
    "its n_missed.", MetricType::Counter};
inline constexpr metrics::MetricDesc kUpcallFailures{
    "hvtel_ovs_upcall_failures_total",
    "Upcalls the kernel datapath could not queue to userspace (no listener, socket queue "
    "full), by input port; summed over a datapath this is its n_lost.", MetricType::Counter};
inline constexpr metrics::MetricDesc kFlowChanges{
    "hvtel_ovs_datapath_flow_changes_total",
    "Successful datapath flow-table commands (megaflow installs, action updates, deletes and "
    "flushes), by op: new, set, del.", MetricType::Counter};
inline constexpr metrics::MetricDesc kFlowChangeErrors{
    "hvtel_ovs_datapath_flow_change_errors_total",
    "Datapath flow-table commands that returned an error, by op: new, set, del.",
    MetricType::Counter};
inline constexpr metrics::MetricDesc kLostEvents{
    "hvtel_ovs_datapath_lost_events_total",
    "Datapath events hvtel could not count or attribute, by reason: upcall_map_full, "
    "flow_map_full, unattributed_failure.", MetricType::Counter};
}  // namespace catalog

// Interface name -> instance id (OVSDB Interface external_ids vm-uuid/iface-id
// owner); empty when the interface belongs to no known instance.
using InstanceLookup = std::function<std::string(const std::string& interface)>;
// The maps of the loaded object; null while nothing is loaded.
using ReaderSource = std::function<std::shared_ptr<const OvsDpReader>()>;

const char* upcall_cmd_name(uint32_t cmd);  // "miss", "action", "other"
const char* flow_op_name(uint32_t op);      // "new", "set", "del", "other"

class OvsDpCollector : public prometheus::Collectable {
 public:
  OvsDpCollector(ReaderSource source, std::shared_ptr<NameCache> names, InstanceLookup instance)
      : source_(std::move(source)), names_(std::move(names)), instance_(std::move(instance)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  ReaderSource source_;
  std::shared_ptr<NameCache> names_;
  InstanceLookup instance_;
};

}  // namespace hvtel::ovs_dp
