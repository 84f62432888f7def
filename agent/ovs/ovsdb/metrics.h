// Prometheus collectors for the OVSDB port model (scrape-time reads).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <vector>

#include "ovs/ovsdb/client.h"

namespace hvtel::ovsdb {

// hvtel_ovsdb_up, hvtel_ovs_interfaces{bridge},
// hvtel_ovs_interface_info{bridge,interface,ofport,instance_id,port_id} (VIFs only),
// hvtel_ovsdb_connects_total, hvtel_ovsdb_disconnects_total,
// hvtel_ovsdb_parse_errors_total, hvtel_ovsdb_protocol_errors_total, hvtel_ovsdb_updates_total.
class OvsdbCollector : public prometheus::Collectable {
 public:
  explicit OvsdbCollector(std::shared_ptr<const ModelStore> store) : store_(std::move(store)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<const ModelStore> store_;
};

// The families above from explicit inputs (unit-testable without a store).
std::vector<prometheus::MetricFamily> collect_ovsdb(const PortModel& model, bool up,
                                                    const ClientStats& stats);

}  // namespace hvtel::ovsdb
