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
      hv_sched total{};
      for (const auto& [index, s] : by_vcpu) {
        discovery::accumulate(total, s);
        Labels l{{"instance_id", inst.instance_id},
                 {"vcpu", index >= 0 ? std::to_string(index) : "unknown"}};
        run.add(l, static_cast<double>(s.run_ns) / 1e9);
        wait.add(l, static_cast<double>(s.wait_ns) / 1e9);
        preempt.add(l, static_cast<double>(s.preemptions));
        migr.add(l, static_cast<double>(s.migrations));
      }
      rq.add_histogram({{"instance_id", inst.instance_id}}, total.rq_hist, HV_HIST_SLOTS,
                       total.rq_sum_ns, catalog::kLatencyBuckets);
    }
  });
  std::vector<prometheus::MetricFamily> out;
  append(out, std::move(rq));
  append(out, std::move(run));
  append(out, std::move(wait));
  append(out, std::move(preempt));
  append(out, std::move(migr));
  return out;
}

}  // namespace hvtel::sched
