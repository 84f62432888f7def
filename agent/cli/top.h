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
// WAIT% divides by hvtel_vcpu_threads where the agent exports it (the wait
// counter is one series per instance by default, one per vCPU with --per-vcpu).
// `--instance ID|NAME` keeps the rows whose instance_id, Nova display name or
// libvirt domain is ID|NAME; `--json` prints one JSON document per refresh.
// On a terminal, single keys change the sort as in kvm_stat (handle_key()).
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
  std::string sort = "exits";  // a SortKey name (sort_key_from_name)
  bool reverse = false;        // ascending instead of descending (names: descending)
  std::string instance;        // instance_id, Nova display name or domain; empty: all
  bool json = false;           // NDJSON: one document per refresh
};

// Cumulative bucket counts by upper bound (+Inf included), summed over series.
using Buckets = std::map<double, double>;

struct InstanceCounters {
  std::string name;    // hvtel_instance_info instance_name (else domain), may be empty
  std::string domain;  // hvtel_instance_info domain, may be empty
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
  std::string domain;
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

// The sortable columns, each with its key letter on a terminal (sort_key_letter()).
enum class SortKey { kExits, kVmmExits, kWait, kRunqueue, kVmmP99, kViolations, kName };
// "exits", "vmm_exits", "wait", "rq", "vmm", "violations", "name".
std::optional<SortKey> sort_key_from_name(const std::string& name);
const char* sort_key_name(SortKey k);
char sort_key_letter(SortKey k);  // e, u, w, l, m, v, n
// Descending by the key (exits: then VMM exits; name: ascending A-Z), rows
// without data for the key last, ties by instance_id; `reversed` flips the
// direction but keeps rows without data last.
void sort_rows(std::vector<TopRow>& rows, SortKey key, bool reversed = false);

// Rows whose instance_id, Nova display name or libvirt domain equals `instance`
// (all rows when it is empty).
std::vector<TopRow> filter_rows(std::vector<TopRow> rows, const std::string& instance);

// The interactive sort state and what one key press does to it: a column's
// letter sorts by it in its default direction, r reverses, q quits; any other
// key changes nothing.
struct SortState {
  SortKey key = SortKey::kExits;
  bool reversed = false;
  bool operator==(const SortState&) const = default;
};
struct KeyOutcome {
  SortState state;
  bool changed = false;  // redraw with the new order
  bool quit = false;
};
KeyOutcome handle_key(SortState state, char key);
// The footer that says which keys do what.
std::string key_help();

// One NDJSON document (no trailing newline): the refresh's time (RFC 3339),
// interval, agent, sort, filter and the rows in order. Keys in a fixed order;
// a value without data is null.
struct RefreshInfo {
  std::string time;
  double interval_s = 0;
  std::string agent;
  SortState sort;
  std::string instance;
};
std::string render_json(const std::vector<TopRow>& rows, const RefreshInfo& info);

std::string format_duration(std::optional<double> seconds);  // "12.3us", "-"
std::string format_rate(double per_s);                          // "1234", "12.5"
// The title line, a header and one line per row, each ending in '\n'.
std::string render_table(const std::vector<TopRow>& rows, const std::string& title);

int cmd_top(const TopOptions& opts);

}  // namespace hvtel::cli
