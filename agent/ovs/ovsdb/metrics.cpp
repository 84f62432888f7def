#include "ovs/ovsdb/metrics.h"

#include <string>

#include "base/metrics/catalog.h"
#include "base/metrics/family.h"

namespace hvtel::ovsdb {
namespace {

namespace catalog = metrics::catalog;
using metrics::FamilyBuilder;
using prometheus::MetricFamily;

MetricFamily counter(const metrics::MetricDesc& d, uint64_t v) {
  return FamilyBuilder(d).add({}, static_cast<double>(v)).take();
}

}  // namespace

std::vector<MetricFamily> collect_ovsdb(const PortModel& model, bool up, const ClientStats& stats) {
  std::vector<MetricFamily> out;
  out.push_back(FamilyBuilder(catalog::kOvsdbUp).add({}, up ? 1 : 0).take());

  // The port families describe the last known model; while it is stale
  // (reconnecting) hvtel_ovsdb_up says so and the series stay stable.
  FamilyBuilder count(catalog::kOvsInterfaces);
  FamilyBuilder info(catalog::kOvsInterfaceInfo);
  for (const auto& b : model.bridges) {
    count.add({{"bridge", b.name}}, static_cast<double>(b.interface_count()));
    for (const auto& p : b.ports) {
      for (const auto& i : p.interfaces) {
        if (i.iface_id.empty() && i.instance_id.empty()) continue;
        info.add({{"bridge", b.name},
                  {"interface", i.name},
                  {"ofport", std::to_string(i.ofport)},
                  {"instance_id", i.instance_id},
                  {"port_id", i.iface_id}},
                 1);
      }
    }
  }
  out.push_back(count.take());
  out.push_back(info.take());

  out.push_back(counter(catalog::kOvsdbConnects, stats.connects));
  out.push_back(counter(catalog::kOvsdbDisconnects, stats.disconnects));
  out.push_back(counter(catalog::kOvsdbParseErrors, stats.parse_errors));
  out.push_back(counter(catalog::kOvsdbProtocolErrors, stats.protocol_errors));
  out.push_back(counter(catalog::kOvsdbUpdates, stats.updates));
  return out;
}

std::vector<MetricFamily> OvsdbCollector::Collect() const {
  auto model = store_->snapshot();
  return collect_ovsdb(*model, store_->up(), store_->stats());
}

}  // namespace hvtel::ovsdb
