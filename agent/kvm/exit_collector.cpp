#include "kvm/exit_collector.h"

#include <map>
#include <string>

#include "kvm/exit_reasons.h"
#include "base/metrics/catalog.h"

namespace hvtel::kvm {

using metrics::append;
using metrics::FamilyBuilder;
using metrics::Labels;
namespace catalog = metrics::catalog;
namespace {

std::string vcpu_label(int index) { return index >= 0 ? std::to_string(index) : "unknown"; }

}  // namespace

std::vector<prometheus::MetricFamily> ExitCollector::Collect() const {
  FamilyBuilder exits(catalog::kVcpuExits);
  FamilyBuilder handling(catalog::kVcpuExitHandling);
  FamilyBuilder uexits(catalog::kVcpuUserspaceExits);
  FamilyBuilder vmm(catalog::kVcpuVmmHandling);
  FamilyBuilder threads(catalog::kVcpuThreads);
  const uint32_t vendor = maps_.vendor();
  const metrics::Selection& sel = series_.selection;
  const bool want_exits = sel.enabled(catalog::kVcpuExits);
  const bool want_uexits = sel.enabled(catalog::kVcpuUserspaceExits);
  const bool want_handling = sel.enabled(catalog::kVcpuExitHandling);
  const bool want_vmm = sel.enabled(catalog::kVcpuVmmHandling);
  // A disabled family costs no map read: the slots are read only for what is rendered.
  const bool read_slots = want_exits || want_uexits || want_handling || want_vmm;
  // Host-wide exit handling per class, when not per instance.
  hv_vcpu host{};
  bool host_any = false;

  auto add_handling = [&](const Labels& base, const hv_vcpu& c) {
    for (uint32_t cls = 0; cls < HV_EXIT_CLASSES; ++cls) {
      uint64_t n = 0;
      for (uint64_t x : c.handle_hist[cls]) n += x;
      if (!n) continue;
      Labels l = base;
      l.emplace_back("class", kvm::exit_class_name(cls));
      handling.add_histogram(l, c.handle_hist[cls], HV_HIST_SLOTS, c.handle_sum_ns[cls],
                             catalog::kLatencyBuckets);
    }
  };

  tracker_.read([&](const auto& instances, const auto&) {
    for (const auto& [pid, inst] : instances) {
      const Labels base{{"instance_id", inst.instance_id}};
      if (sel.enabled(catalog::kVcpuThreads)) threads.add(base, static_cast<double>(inst.vcpus.size()));
      if (!read_slots) continue;
      // Sum live slots and retired threads: per vCPU index, and per instance.
      std::map<int, hv_vcpu> by_vcpu = inst.retired;
      for (const auto& v : inst.vcpus) {
        if (const hv_vcpu* s = maps_.slot(v.slot)) discovery::accumulate(by_vcpu[v.index], *s);
      }
      hv_vcpu total{};
      for (const auto& [_, c] : by_vcpu) discovery::accumulate(total, c);

      auto counters = [&](const Labels& labels, const hv_vcpu& c) {
        for (uint32_t r = 0; want_exits && r < HV_EXIT_REASON_SLOTS; ++r) {
          if (!c.exits[r]) continue;
          Labels l = labels;
          l.emplace_back("reason", kvm::exit_reason_name(vendor, r));
          exits.add(l, static_cast<double>(c.exits[r]));
        }
        for (uint32_t r = 0; want_uexits && r < HV_USER_EXIT_SLOTS; ++r) {
          if (!c.user_exits[r]) continue;
          Labels l = labels;
          l.emplace_back("reason", kvm::userspace_exit_name(r));
          uexits.add(l, static_cast<double>(c.user_exits[r]));
        }
      };
      if (series_.per_vcpu) {
        for (const auto& [index, c] : by_vcpu) {
          Labels l = base;
          l.emplace_back("vcpu", vcpu_label(index));
          counters(l, c);
        }
      } else {
        counters(base, total);
      }
      if (want_handling && series_.handling_per_instance) {
        add_handling(base, total);
      } else if (want_handling) {
        discovery::accumulate(host, total);
        host_any = true;
      }
      uint64_t nvmm = 0;
      for (uint64_t x : total.vmm_hist) nvmm += x;
      if (want_vmm && nvmm)
        vmm.add_histogram(base, total.vmm_hist, HV_HIST_SLOTS, total.vmm_sum_ns, catalog::kLatencyBuckets);
    }
  });
  if (host_any) add_handling({}, host);

  std::vector<prometheus::MetricFamily> out;
  append(out, std::move(exits));
  append(out, std::move(handling));
  append(out, std::move(uexits));
  append(out, std::move(vmm));
  append(out, std::move(threads));
  if (vmm_ratio_ && sel.enabled(catalog::kVcpuVmmSampleRatio)) {
    FamilyBuilder ratio(catalog::kVcpuVmmSampleRatio);
    ratio.add({}, vmm_ratio_());
    append(out, std::move(ratio));
  }
  return out;
}

}  // namespace hvtel::kvm
