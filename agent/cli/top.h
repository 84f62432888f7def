// `hvtel top`: a refreshing per-instance table computed from two scrapes of the
// agent's /metrics (the CLI never loads BPF; it reads what `hvtel serve` serves).
//
// Per instance, over the interval between the scrapes:
//   EXITS/s      delta hvtel_vcpu_exits_total (all reasons) / seconds
//   VMM_EXITS/s  delta hvtel_vcpu_userspace_exits_total / seconds
//   WAIT%        delta hvtel_vcpu_wait_seconds_total summed over vCPUs /
//                (seconds x vCPU series): the average share of wall time a vCPU
//                was runnable but waiting for a pCPU (host-side steal)
//   RQ_P99       p99 of hvtel_vcpu_runqueue_latency_seconds in the interval
//   VMM_P50/P99  quantiles of hvtel_vcpu_vmm_handling_seconds in the interval
//   VIOL         delta hvtel_pinning_violations_total (all classes)
// Quantiles are estimated as Prometheus' histogram_quantile() does: linear
// interpolation inside the bucket; in the +Inf bucket, the highest finite
// bound. A counter that went backwards (agent restart) counts from zero.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/http/prom_text.h"

namespace hvtel::cli {

struct TopOptions {
  std::string agent_metrics = "127.0.0.1:9477";
  double interval_s = 1.0;
  bool once = false;
  std::string sort = "exits";  // exits, wait, violations
};

// Cumulative bucket counts by upper bound (+Inf included), summed over series.
using Buckets = std::map<double, double>;

struct InstanceCounters {
  std::string name;  // hvtel_instance_info instance_name (else domain), may be empty
  double exits = 0;
  double userspace_exits = 0;
  double wait_s = 0;
  size_t wait_series = 0;
  std::optional<double> threads;  // hvtel_vcpu_threads
  Buckets runqueue;
  Buckets vmm;
  double violations = 0;
};

// Everything top needs from one scrape, by instance_id.
using MetricsSnapshot = std::map<std::string, InstanceCounters>;
MetricsSnapshot snapshot_from_samples(const std::vector<http::PromSample>& samples);

// q in [0,1] over cumulative buckets; nullopt when they hold no observation.
std::optional<double> histogram_quantile(double q, const Buckets& cumulative);
// cur - prev per bound; cur itself when any bucket went backwards (reset).
Buckets bucket_delta(const Buckets& prev, const Buckets& cur);

struct TopRow {
  std::string instance_id;
  std::string name;
  std::optional<double> vcpus;
  double exits_per_s = 0;
  double userspace_exits_per_s = 0;
  std::optional<double> wait_share;  // 0..1
  std::optional<double> runqueue_p99_s;
  std::optional<double> vmm_p50_s;
  std::optional<double> vmm_p99_s;
  double violations = 0;
};

// One row per instance of `cur` (an instance missing from prev counts from 0).
std::vector<TopRow> compute_rows(const MetricsSnapshot& prev, const MetricsSnapshot& cur,
                                 double elapsed_s);

enum class SortKey { kExits, kWait, kViolations };
std::optional<SortKey> sort_key_from_name(const std::string& name);
// Descending by the key (exits: then VMM exits), then by instance_id.
void sort_rows(std::vector<TopRow>& rows, SortKey key);

std::string format_duration(std::optional<double> seconds);  // "12.3us", "-"
std::string format_rate(double per_s);                          // "1234", "12.5"
// The title line, a header and one line per row, each ending in '\n'.
std::string render_table(const std::vector<TopRow>& rows, const std::string& title);

int cmd_top(const TopOptions& opts);

}  // namespace hvtel::cli
