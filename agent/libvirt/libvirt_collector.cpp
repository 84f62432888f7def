#include "libvirt/libvirt_collector.h"

#include <prometheus/client_metric.h>

#include <set>
#include <string>
#include <utility>

namespace hvtel::libvirt {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric gauge(double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  return m;
}

ClientMetric counter(uint64_t v, std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = static_cast<double>(v);
  return m;
}

}  // namespace

MetricFamily instance_info_family(const std::vector<model::Instance>& libvirt,
                                  const std::vector<model::Instance>& local) {
  auto info = family("hvtel_instance_info",
                     "Instance identity (libvirt and Nova metadata, else the VMM's command line); "
                     "join on instance_id.",
                     MetricType::Gauge);
  std::set<std::string> seen;
  for (const auto* list : {&libvirt, &local}) {
    for (const auto& inst : *list) {
      if (!seen.insert(inst.instance_id).second) continue;
      const model::NovaInfo empty;
      const model::NovaInfo& n = inst.nova ? *inst.nova : empty;
      // prometheus-cpp's text serializer escapes \, " and newlines in values.
      info.metric.push_back(gauge(1, {{"instance_id", inst.instance_id},
                                      {"instance_name", inst.instance_name},
                                      {"domain", inst.domain},
                                      {"flavor", n.flavor_name},
                                      {"project_id", n.project_id},
                                      {"project_name", n.project_name},
                                      {"user_id", n.user_id},
                                      {"user_name", n.user_name}}));
    }
  }
  return info;
}

LibvirtCollector::LibvirtCollector(const SnapshotSource& source) : source_(source) {}

std::vector<MetricFamily> LibvirtCollector::Collect() const {
  const SnapshotPtr snap = source_.snapshot();
  const ClientCounters c = source_.counters();
  std::vector<MetricFamily> out;

  out.push_back(instance_info_family(snap->instances, local_ ? local_() : std::vector<model::Instance>{}));
  auto vcpus = family("hvtel_instance_vcpus", "Online vCPUs configured for the instance.",
                      MetricType::Gauge);
  for (const auto& inst : snap->instances)
    vcpus.metric.push_back(gauge(inst.vcpus, {{"instance_id", inst.instance_id}}));
  out.push_back(std::move(vcpus));

  auto up = family("hvtel_libvirt_up", "1 while the read-only libvirt connection is open.",
                   MetricType::Gauge);
  up.metric.push_back(gauge(source_.up() ? 1 : 0));
  out.push_back(std::move(up));

  auto errors = family("hvtel_libvirt_errors_total",
                       "libvirt inventory problems by kind (parse, metadata, thread_map, rpc, "
                       "connect).",
                       MetricType::Counter);
  const std::pair<const char*, uint64_t> kinds[] = {
      {"parse", c.parse_errors},      {"metadata", c.metadata_errors},
      {"thread_map", c.thread_map_errors}, {"rpc", c.rpc_errors},
      {"connect", c.connect_failures},
  };
  for (const auto& [k, v] : kinds) errors.metric.push_back(counter(v, {{"kind", k}}));
  out.push_back(std::move(errors));

  auto events = family("hvtel_libvirt_events_total", "libvirt domain events received, by type.",
                       MetricType::Counter);
  const std::pair<const char*, uint64_t> types[] = {
      {"lifecycle", c.events_lifecycle},
      {"tunable", c.events_tunable},
      {"metadata_change", c.events_metadata},
  };
  for (const auto& [t, v] : types) events.metric.push_back(counter(v, {{"type", t}}));
  out.push_back(std::move(events));

  auto reconnects = family("hvtel_libvirt_reconnects_total",
                           "Successful reconnections after the libvirt connection was lost.",
                           MetricType::Counter);
  reconnects.metric.push_back(counter(c.reconnects, {}));
  out.push_back(std::move(reconnects));

  auto resyncs = family("hvtel_libvirt_resyncs_total", "Full libvirt inventories.",
                        MetricType::Counter);
  resyncs.metric.push_back(counter(c.resyncs, {}));
  out.push_back(std::move(resyncs));
  return out;
}

}  // namespace hvtel::libvirt
