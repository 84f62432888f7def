// Prometheus view of the libvirt inventory. Reads only the client's published
// snapshot and counters: a scrape never makes a libvirt call.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

#include "libvirt/libvirt_client.h"

namespace hvtel::libvirt {

class LibvirtCollector final : public prometheus::Collectable {
 public:
  // `source` must outlive the collector (in practice: the LibvirtClient).
  explicit LibvirtCollector(const SnapshotSource& source);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const SnapshotSource& source_;
};

}  // namespace hvtel::libvirt
