// Prometheus view of the libvirt inventory. Reads only the client's published
// snapshot and counters: a scrape never makes a libvirt call.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <vector>

#include "libvirt/libvirt_client.h"

namespace hvtel::libvirt {

// Instances libvirt does not run (plain KVM hosts, procfs discovery): they get
// an hvtel_instance_info series too, with the libvirt and Nova labels empty.
using LocalInstances = std::function<std::vector<model::Instance>()>;

// hvtel_instance_info: every libvirt instance, then each local one whose
// instance_id is not already there (one series per instance_id).
prometheus::MetricFamily instance_info_family(const std::vector<model::Instance>& libvirt,
                                              const std::vector<model::Instance>& local);

class LibvirtCollector final : public prometheus::Collectable {
 public:
  // `source` must outlive the collector (in practice: the LibvirtClient).
  explicit LibvirtCollector(const SnapshotSource& source);
  std::vector<prometheus::MetricFamily> Collect() const override;
  void set_local_instances(LocalInstances f) { local_ = std::move(f); }

 private:
  const SnapshotSource& source_;
  LocalInstances local_;
};

// hvtel_instance_info where there is no libvirt connection (--libvirt-uri "").
class InstanceInfoCollector final : public prometheus::Collectable {
 public:
  explicit InstanceInfoCollector(LocalInstances local) : local_(std::move(local)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return {instance_info_family({}, local_())};
  }

 private:
  LocalInstances local_;
};

}  // namespace hvtel::libvirt
