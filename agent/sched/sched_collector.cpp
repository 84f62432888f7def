#include "sched/sched_collector.h"

#include <map>

#include "base/metrics/catalog.h"

namespace hvtel::sched {

using metrics::append;
using metrics::FamilyBuilder;
using metrics::Labels;
namespace catalog = metrics::catalog;

std::vector<prometheus::MetricFamily> SchedCollector::Collect() const {
  FamilyBuilder rq(catalog::kVcpuRunqueueLatency);
  FamilyBuilder run(catalog::kVcpuRunSeconds);
  FamilyBuilder wait(catalog::kVcpuWaitSeconds);
  FamilyBuilder preempt(catalog::kVcpuPreemptions);
  FamilyBuilder migr(catalog::kVcpuMigrations);

  // A disabled family costs no map read (all of them read the same slots).
  bool any_enabled = false;
  for (const auto* d : {&catalog::kVcpuRunqueueLatency, &catalog::kVcpuRunSeconds, &catalog::kVcpuWaitSeconds,
                        &catalog::kVcpuPreemptions, &catalog::kVcpuMigrations})
    any_enabled |= selection_.enabled(*d);
  auto add_counters = [&](const Labels& l, const hv_sched& s) {
    run.add(l, static_cast<double>(s.run_ns) / 1e9);
    wait.add(l, static_cast<double>(s.wait_ns) / 1e9);
    preempt.add(l, static_cast<double>(s.preemptions));
    migr.add(l, static_cast<double>(s.migrations));
  };

  if (any_enabled)
    tracker_.read([&](const auto& instances, const auto&) {
      for (const auto& [pid, inst] : instances) {
        std::map<int, hv_sched> by_vcpu = inst.retired_sched;
        bool any = !by_vcpu.empty();
        for (const auto& v : inst.vcpus) {
          if (const hv_sched* s = maps_.sched(v.slot)) {
            discovery::accumulate(by_vcpu[v.index], *s);
            any = true;
          }
        }
        if (!any) continue;
        const Labels base{{"instance_id", inst.instance_id}};
        hv_sched total{};
        for (const auto& [index, s] : by_vcpu) {
          discovery::accumulate(total, s);
          if (!per_vcpu_) continue;
          Labels l = base;
          l.emplace_back("vcpu", index >= 0 ? std::to_string(index) : "unknown");
          add_counters(l, s);
        }
        if (!per_vcpu_) add_counters(base, total);
        rq.add_histogram(base, total.rq_hist, HV_HIST_SLOTS, total.rq_sum_ns, catalog::kLatencyBuckets);
      }
    });
  std::vector<prometheus::MetricFamily> out;
  append(out, std::move(rq));
  append(out, std::move(run));
  append(out, std::move(wait));
  append(out, std::move(preempt));
  append(out, std::move(migr));
  return selection_.filter(std::move(out));
}

}  // namespace hvtel::sched
