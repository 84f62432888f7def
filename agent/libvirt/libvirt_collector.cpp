#include "libvirt/libvirt_collector.h"

#include <set>
#include <string>
#include <utility>

#include "base/metrics/catalog.h"
#include "base/metrics/family.h"

namespace hvtel::libvirt {

namespace catalog = metrics::catalog;
using metrics::FamilyBuilder;
using prometheus::MetricFamily;

MetricFamily instance_info_family(const std::vector<model::Instance>& libvirt,
                                  const std::vector<model::Instance>& local) {
  FamilyBuilder info(catalog::kInstanceInfo);
  std::set<std::string> seen;
  for (const auto* list : {&libvirt, &local}) {
    for (const auto& inst : *list) {
      if (!seen.insert(inst.instance_id).second) continue;
      const model::NovaInfo empty;
      const model::NovaInfo& n = inst.nova ? *inst.nova : empty;
      // prometheus-cpp's text serializer escapes \, " and newlines in values.
      info.add({{"instance_id", inst.instance_id},
                {"instance_name", inst.instance_name},
                {"domain", inst.domain},
                {"flavor", n.flavor_name},
                {"project_id", n.project_id},
                {"project_name", n.project_name},
                {"user_id", n.user_id},
                {"user_name", n.user_name}},
               1);
    }
  }
  return info.take();
}

LibvirtCollector::LibvirtCollector(const SnapshotSource& source) : source_(source) {}

std::vector<MetricFamily> LibvirtCollector::Collect() const {
  const SnapshotPtr snap = source_.snapshot();
  const ClientCounters c = source_.counters();
  std::vector<MetricFamily> out;

  out.push_back(instance_info_family(snap->instances, local_ ? local_() : std::vector<model::Instance>{}));
  FamilyBuilder vcpus(catalog::kInstanceVcpus);
  for (const auto& inst : snap->instances) vcpus.add({{"instance_id", inst.instance_id}}, inst.vcpus);
  out.push_back(vcpus.take());

  out.push_back(FamilyBuilder(catalog::kLibvirtUp).add({}, source_.up() ? 1 : 0).take());

  FamilyBuilder errors(catalog::kLibvirtErrors);
  const std::pair<const char*, uint64_t> kinds[] = {
      {"parse", c.parse_errors},      {"metadata", c.metadata_errors},
      {"thread_map", c.thread_map_errors}, {"rpc", c.rpc_errors},
      {"connect", c.connect_failures},
  };
  for (const auto& [k, v] : kinds) errors.add({{"kind", k}}, static_cast<double>(v));
  out.push_back(errors.take());

  FamilyBuilder events(catalog::kLibvirtEvents);
  const std::pair<const char*, uint64_t> types[] = {
      {"lifecycle", c.events_lifecycle},
      {"tunable", c.events_tunable},
      {"metadata_change", c.events_metadata},
  };
  for (const auto& [t, v] : types) events.add({{"type", t}}, static_cast<double>(v));
  out.push_back(events.take());

  out.push_back(
      FamilyBuilder(catalog::kLibvirtReconnects).add({}, static_cast<double>(c.reconnects)).take());
  out.push_back(FamilyBuilder(catalog::kLibvirtResyncs).add({}, static_cast<double>(c.resyncs)).take());
  return out;
}

}  // namespace hvtel::libvirt
