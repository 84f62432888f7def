// The series budget (docs/metrics.md#series-budget): what the agent's own
// collectors render for a host of 40 instances x 8 vCPUs of busy guests. A
// change that adds series fails here and must update the table in the doc.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "series_host.h"
#include "support/exposition.h"

namespace hvtel::testing {
namespace {

constexpr int kInstances = 40;
constexpr int kVcpus = 8;
// Series of the host, not of an instance: 64 of them the exit-handling
// histograms per class, the rest the agent, libvirt, pinning and OVS totals.
constexpr size_t kHost = 117;

struct Count {
  std::map<std::string, size_t> per_instance;  // instance_id -> series
  size_t host = 0;                             // series without an instance_id
  size_t total = 0;
};

Count count(const std::string& text) {
  Count c;
  for (const auto& s : parse_exposition(text)) {
    ++c.total;
    const std::string& id = s.label("instance_id");
    if (id.empty())
      ++c.host;
    else
      ++c.per_instance[id];
  }
  return c;
}

// Every instance has the same number of series; returns it.
size_t per_instance(const Count& c) {
  EXPECT_EQ(c.per_instance.size(), static_cast<size_t>(kInstances));
  std::set<size_t> distinct;
  for (const auto& [_, n] : c.per_instance) distinct.insert(n);
  EXPECT_EQ(distinct.size(), 1u);
  return distinct.empty() ? 0 : *distinct.begin();
}

const SeriesHost& host() {
  static SeriesHost h(kInstances, kVcpus);
  return h;
}

// Default: 10 exit reasons + 2 VMM exit reasons + VMM handling histogram (16)
// + vCPU threads + run-queue histogram (16) + run, wait, preemptions,
// migrations + instance info + vCPUs + slot overflow + VIF info, upcalls,
// upcall failures.
TEST(SeriesBudget, DefaultIs55PerInstance) {
  Count c = count(host().render({}));
  EXPECT_EQ(per_instance(c), 55u);
  EXPECT_LE(per_instance(c), 60u);  // the budget (issue 13)
  EXPECT_EQ(c.host, kHost);
  EXPECT_EQ(c.total, 40u * 55u + kHost);
}

// --per-vcpu: the exit and scheduling counters x 8 vCPUs.
TEST(SeriesBudget, PerVcpuIs167PerInstance) {
  Count c = count(host().render({.per_vcpu = true}));
  EXPECT_EQ(per_instance(c), 55u + (10 + 2 + 4) * (kVcpus - 1));
  EXPECT_EQ(c.host, kHost);
}

// --exit-handling-per-instance: four class histograms per instance instead of per host.
TEST(SeriesBudget, ExitHandlingPerInstanceAdds64PerInstance) {
  Count c = count(host().render({.exit_handling_per_instance = true}));
  EXPECT_EQ(per_instance(c), 55u + 64u);
  EXPECT_EQ(c.host, kHost - 64u);
  Count all = count(host().render({.per_vcpu = true, .exit_handling_per_instance = true}));
  EXPECT_EQ(per_instance(all), 167u + 64u);
}

// --pinning-zero-series: every class's counters and static gauges at 0.
TEST(SeriesBudget, PinningZeroSeriesAdds34PerInstance) {
  Count c = count(host().render({.pinning_zero_series = true}));
  EXPECT_EQ(per_instance(c), 55u + 34u);  // 13 classes x (count, seconds) + 8 static `active`
  EXPECT_EQ(c.host, kHost);
}

// The doc's way under 5 M series for 2,700 hosts: without the latency histograms.
TEST(SeriesBudget, WithoutExitLatencyIs39PerInstance) {
  Count c = count(host().render({.metrics_disable = {"exit_latency"}}));
  EXPECT_EQ(per_instance(c), 55u - 16u);
  EXPECT_EQ(c.host, kHost - 64u - 1u);
}

// What the dashboards join on instance_id still carries it, and the exit
// handling histograms keep their classes (for the host).
TEST(SeriesBudget, DefaultKeepsWhatTheDashboardsJoin) {
  Scrape s(host().render({}));
  const std::string id = SeriesHost::instance_id(7);
  for (const char* name :
       {"hvtel_vcpu_exits_total", "hvtel_vcpu_userspace_exits_total",
        "hvtel_vcpu_vmm_handling_seconds_bucket", "hvtel_vcpu_runqueue_latency_seconds_bucket",
        "hvtel_vcpu_wait_seconds_total", "hvtel_vcpu_run_seconds_total", "hvtel_vcpu_preemptions_total",
        "hvtel_vcpu_migrations_total", "hvtel_instance_info", "hvtel_vcpu_slot_overflow_threads"})
    EXPECT_GT(s.count(name, {{"instance_id", id}}), 0u) << name;
  // Per instance, summed over its 8 vCPUs: 8 x 2 s run, 8 x 7 preemptions.
  EXPECT_EQ(s.value("hvtel_vcpu_run_seconds_total", {{"instance_id", id}}), 16.0);
  EXPECT_EQ(s.value("hvtel_vcpu_preemptions_total", {{"instance_id", id}}), 56.0);
  EXPECT_EQ(s.value("hvtel_vcpu_exits_total", {{"instance_id", id}, {"reason", "hlt"}}), 8.0 * 1012);
  for (const char* cls : {"halt", "io", "mmio", "other"})
    EXPECT_EQ(s.value("hvtel_vcpu_exit_handling_seconds_count", {{"class", cls}}), 40.0 * 8 * 5) << cls;
}

// Every hvtel_* metric the alert rules and the dashboard query is rendered
// by default, or comes from a collector this harness does not build.
TEST(SeriesBudget, DefaultRendersWhatDeployQueries) {
  const std::set<std::string> not_built = {"hvtel_bpf_program_runs_total",
                                           "hvtel_bpf_program_run_seconds_total",  // needs loaded programs
                                           "hvtel_ovs_flows",
                                           "hvtel_ovs_flow_changes_total",
                                           "hvtel_ovs_monitor_up",            // OpenFlow monitor
                                           "hvtel_ovs_dirty_flows",           // rules
                                           "hvtel_web_config_errors_total"};  // the web server
  // Served: with series, or (pinning on a clean host) as an empty family.
  const std::string exposition = host().render({});
  std::set<std::string> rendered;
  for (const auto& s : parse_exposition(exposition)) rendered.insert(s.name);
  for (size_t pos = exposition.find("# TYPE "); pos != std::string::npos;
       pos = exposition.find("# TYPE ", pos + 1))
    rendered.insert(exposition.substr(pos + 7, exposition.find(' ', pos + 7) - pos - 7));
  std::set<std::string> queried;
  for (const char* file : {"/deploy/prometheus/hvtel-rules.yaml", "/deploy/grafana/hvtel.json"}) {
    std::ifstream in(std::string(HVTEL_SOURCE_DIR) + file);
    ASSERT_TRUE(in) << file;
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    for (size_t pos = text.find("hvtel_"); pos != std::string::npos; pos = text.find("hvtel_", pos + 1)) {
      size_t end = pos;
      while (end < text.size() && (std::islower(static_cast<unsigned char>(text[end])) || text[end] == '_' ||
                                   std::isdigit(static_cast<unsigned char>(text[end]))))
        ++end;
      queried.insert(text.substr(pos, end - pos));
      pos = end;
    }
  }
  ASSERT_GT(queried.size(), 20u);
  for (const auto& q : queried) {
    if (q == "hvtel_rules" || not_built.contains(q)) continue;
    EXPECT_TRUE(rendered.contains(q)) << q << " is queried in deploy/ but not rendered by default";
  }
}

}  // namespace
}  // namespace hvtel::testing
