// A hypervisor host in memory for series counts: N instances x V vCPUs of
// busy Linux guests (VMX, virtio, one VIF each, clean pinning), rendered by the
// agent's own collectors over fake maps, a fake /proc, a fake libvirt snapshot,
// a fake OVSDB model and a fake OVS datapath reader.
#pragma once

#include <prometheus/collectable.h>

#include <memory>
#include <string>
#include <vector>

#include "base/metrics/selection.h"
#include "discovery/procfs.h"
#include "discovery/vcpu_tracker.h"
#include "support/fake_vcpu_maps.h"

namespace hvtel::testing {

// What `hvtel serve` would be started with.
struct SeriesFlags {
  bool per_vcpu = false;
  bool exit_handling_per_instance = false;
  bool pinning_zero_series = false;
  std::vector<std::string> metrics_disable;
};

class SeriesHost {
 public:
  SeriesHost(int instances, int vcpus);
  ~SeriesHost();
  SeriesHost(const SeriesHost&) = delete;
  SeriesHost& operator=(const SeriesHost&) = delete;

  static std::string instance_id(int i);
  // The whole /metrics text as the agent would render it with these flags.
  // Fails the test when a --metrics-disable name is rejected.
  std::string render(const SeriesFlags& flags) const;
  // The families behind render(), for serving them (bench/series).
  std::vector<prometheus::MetricFamily> collect(const SeriesFlags& flags) const;
  // Map reads the collectors made (slot and sched lookups) since the last reset.
  size_t map_reads() const { return maps_->reads; }
  void reset_map_reads() { maps_->reads = 0; }

 private:
  // FakeVcpuMaps that counts the collectors' reads of the mmapped slots.
  struct CountingMaps : bpf::FakeVcpuMaps {
    using FakeVcpuMaps::FakeVcpuMaps;
    const hv_vcpu* slot(uint32_t s) const override {
      ++reads;
      return FakeVcpuMaps::slot(s);
    }
    const hv_sched* sched(uint32_t s) const override {
      ++reads;
      return FakeVcpuMaps::sched(s);
    }
    mutable size_t reads = 0;
  };

  std::string root_;  // the fake /proc
  int instances_;
  std::unique_ptr<CountingMaps> maps_;
  std::unique_ptr<discovery::ProcFs> proc_;
  std::unique_ptr<discovery::VcpuTracker> tracker_;
  std::shared_ptr<void> snapshot_source_;                            // what the libvirt collector reads
  std::shared_ptr<prometheus::Collectable> pinning_, pinning_zero_;  // clean baseline, tracked
  std::vector<std::shared_ptr<prometheus::Collectable>> fixed_;      // libvirt, OVS
  mutable size_t last_render_bytes_ = 0;                             // sizes the next render's buffer
};

}  // namespace hvtel::testing
