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

  tracker_.read([&](const auto& instances, const auto&) {
    for (const auto& [pid, inst] : instances) {
      // Sum live slots and retired threads: per vCPU index, and per instance.
      std::map<int, hv_vcpu> by_vcpu = inst.retired;
      for (const auto& v : inst.vcpus) {
        if (const hv_vcpu* s = maps_.slot(v.slot)) discovery::accumulate(by_vcpu[v.index], *s);
      }
      hv_vcpu total{};
      for (const auto& [_, c] : by_vcpu) discovery::accumulate(total, c);

      const Labels base{{"instance_id", inst.instance_id}};
      auto counters = [&](const Labels& labels, const hv_vcpu& c) {
        for (uint32_t r = 0; r < HV_EXIT_REASON_SLOTS; ++r) {
          if (!c.exits[r]) continue;
          Labels l = labels;
          l.emplace_back("reason", kvm::exit_reason_name(vendor, r));
          exits.add(l, static_cast<double>(c.exits[r]));
        }
        for (uint32_t r = 0; r < HV_USER_EXIT_SLOTS; ++r) {
          if (!c.user_exits[r]) continue;
          Labels l = labels;
          l.emplace_back("reason", kvm::userspace_exit_name(r));
          uexits.add(l, static_cast<double>(c.user_exits[r]));
        }
      };
      if (per_vcpu_) {
        for (const auto& [index, c] : by_vcpu) {
          Labels l = base;
          l.emplace_back("vcpu", vcpu_label(index));
          counters(l, c);
        }
      } else {
        counters(base, total);
      }
      for (uint32_t cls = 0; cls < HV_EXIT_CLASSES; ++cls) {
        uint64_t n = 0;
        for (uint64_t x : total.handle_hist[cls]) n += x;
        if (!n) continue;
        Labels l = base;
        l.emplace_back("class", kvm::exit_class_name(cls));
        handling.add_histogram(l, total.handle_hist[cls], HV_HIST_SLOTS, total.handle_sum_ns[cls],
                               catalog::kLatencyBuckets);
      }
      uint64_t nvmm = 0;
      for (uint64_t x : total.vmm_hist) nvmm += x;
      if (nvmm)
        vmm.add_histogram(base, total.vmm_hist, HV_HIST_SLOTS, total.vmm_sum_ns,
                          catalog::kLatencyBuckets);
      threads.add(base, static_cast<double>(inst.vcpus.size()));
    }
  });

  std::vector<prometheus::MetricFamily> out;
  append(out, std::move(exits));
  append(out, std::move(handling));
  append(out, std::move(uexits));
  append(out, std::move(vmm));
  append(out, std::move(threads));
  if (vmm_ratio_) {
    FamilyBuilder ratio(catalog::kVcpuVmmSampleRatio);
    ratio.add({}, vmm_ratio_());
    append(out, std::move(ratio));
  }
  return out;
}

}  // namespace hvtel::kvm
