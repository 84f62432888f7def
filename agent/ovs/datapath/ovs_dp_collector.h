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
