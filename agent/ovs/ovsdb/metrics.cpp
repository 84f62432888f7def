#include "ovs/ovsdb/metrics.h"

#include <string>

namespace hvtel::ovsdb {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void add_gauge(MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}

MetricFamily counter(const char* name, const char* help, uint64_t v) {
  MetricFamily f = family(name, help, MetricType::Counter);
  ClientMetric m;
  m.counter.value = static_cast<double>(v);
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

std::vector<MetricFamily> collect_ovsdb(const PortModel& model, bool up, const ClientStats& stats) {
  std::vector<MetricFamily> out;

  MetricFamily upf = family("hvtel_ovsdb_up",
                            "1 when connected to ovsdb-server with the monitor in sync, else 0.",
                            MetricType::Gauge);
  add_gauge(upf, {}, up ? 1 : 0);
  out.push_back(std::move(upf));

  // The port families describe the last known model; while it is stale
  // (reconnecting) hvtel_ovsdb_up says so and the series stay stable.
  MetricFamily count = family("hvtel_ovs_interfaces",
                              "Interfaces on each OVS bridge (OVSDB Interface rows).",
                              MetricType::Gauge);
  MetricFamily info = family(
      "hvtel_ovs_interface_info",
      "1 for each OVS interface that carries a Neutron port (iface-id) or Nova instance (vm-uuid).",
      MetricType::Gauge);
  for (const auto& b : model.bridges) {
    add_gauge(count, {{"bridge", b.name}}, static_cast<double>(b.interface_count()));
    for (const auto& p : b.ports) {
      for (const auto& i : p.interfaces) {
        if (i.iface_id.empty() && i.instance_id.empty()) continue;
        add_gauge(info,
                  {{"bridge", b.name},
                   {"interface", i.name},
                   {"ofport", std::to_string(i.ofport)},
                   {"instance_id", i.instance_id},
                   {"port_id", i.iface_id}},
                  1);
      }
    }
  }
  out.push_back(std::move(count));
  out.push_back(std::move(info));

  out.push_back(counter("hvtel_ovsdb_connects_total",
                        "Successful connections to ovsdb-server (each one resyncs).", stats.connects));
  out.push_back(counter("hvtel_ovsdb_disconnects_total",
                        "Connections to ovsdb-server lost or dropped after an error.",
                        stats.disconnects));
  out.push_back(counter("hvtel_ovsdb_parse_errors_total",
                        "Malformed JSON received from ovsdb-server (framing or syntax).",
                        stats.parse_errors));
  out.push_back(counter("hvtel_ovsdb_protocol_errors_total",
                        "Well-formed JSON from ovsdb-server that is not a valid reply or update.",
                        stats.protocol_errors));
  out.push_back(counter("hvtel_ovsdb_updates_total",
                        "OVSDB update notifications applied to the port model.", stats.updates));
  return out;
}

std::vector<MetricFamily> OvsdbCollector::Collect() const {
  auto model = store_->snapshot();
  return collect_ovsdb(*model, store_->up(), store_->stats());
}

}  // namespace hvtel::ovsdb
