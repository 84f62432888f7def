// --metrics-disable: a disabled family is neither read nor rendered, the rest
// stays byte for byte the same; unknown names are a start-up error.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>

#include "base/metrics/selection.h"
#include "series_host.h"

namespace hvtel::testing {
namespace {

// The exposition without the lines of one family (HELP, TYPE, samples).
std::string without_family(const std::string& text, const std::string& family) {
  std::istringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) {
    bool of_family = line.starts_with("# HELP " + family + " ") || line.starts_with("# TYPE " + family + " ");
    for (const char* suffix : {"{", " ", "_bucket{", "_sum{", "_count{", "_sum ", "_count "})
      of_family |= line.starts_with(family + suffix);
    if (!of_family) out += line + "\n";
  }
  return out;
}

SeriesHost& host() {
  static SeriesHost h(4, 2);
  return h;
}

TEST(MetricsDisable, DisabledFamilyIsAbsentTheRestByteIdentical) {
  const std::string all = host().render({});
  for (const char* family : {"hvtel_vcpu_wait_seconds_total", "hvtel_vcpu_exit_handling_seconds",
                             "hvtel_instance_info", "hvtel_ovs_upcalls_total"}) {
    const std::string cut = host().render({.metrics_disable = {family}});
    ASSERT_NE(all.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
    EXPECT_EQ(cut.find(family + std::string("{")), std::string::npos) << family;
    EXPECT_EQ(cut, without_family(all, family)) << family;
    EXPECT_LT(cut.size(), all.size()) << family;
  }
}

TEST(MetricsDisable, GroupDisablesEveryMember) {
  const std::string all = host().render({});
  std::string expected = all;
  for (const char* f :
       {"hvtel_vcpu_runqueue_latency_seconds", "hvtel_vcpu_run_seconds_total",
        "hvtel_vcpu_wait_seconds_total", "hvtel_vcpu_preemptions_total", "hvtel_vcpu_migrations_total"})
    expected = without_family(expected, f);
  EXPECT_EQ(host().render({.metrics_disable = {"sched"}}), expected);
}

// 4 instances x 2 vCPUs: the exit collector reads each vCPU's slot once, the
// sched collector each vCPU's sched entry once.
TEST(MetricsDisable, DisabledFamiliesCostNoMapReads) {
  host().reset_map_reads();
  host().render({});
  EXPECT_EQ(host().map_reads(), 16u);
  host().reset_map_reads();
  host().render({.metrics_disable = {"sched"}});
  EXPECT_EQ(host().map_reads(), 8u);
  host().reset_map_reads();
  host().render({.metrics_disable = {"sched", "exits"}});
  EXPECT_EQ(host().map_reads(), 0u);
  // One family of the slots still wanted: the slots are read.
  host().reset_map_reads();
  host().render({.metrics_disable = {"sched", "exit_latency"}});
  EXPECT_EQ(host().map_reads(), 8u);
}

TEST(MetricsDisable, UnknownNameIsRejected) {
  auto s = metrics::Selection::disable({"hvtel_vcpu_exits_total", "hvtel_vcpu_exit_total"});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message,
            "--metrics-disable hvtel_vcpu_exit_total: not a metric of the catalogue (docs/metrics.md) nor a "
            "group (exits, exit_latency, sched, bpf_stats, ovs_datapath, process)");
  // A sample name of a histogram is not its family.
  EXPECT_FALSE(metrics::Selection::disable({"hvtel_vcpu_exit_handling_seconds_bucket"}).has_value());
  EXPECT_TRUE(metrics::Selection::disable({"exits", "process_open_fds"}).has_value());
}

// The agent refuses to start on an unknown name, before it loads anything
// (so this runs without root).
TEST(MetricsDisable, ServeRejectsAnUnknownNameAtStartUp) {
  std::string cmd = std::string(HVTEL_BIN) + " serve --metrics-disable hvtel_no_such_metric 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(output.find("--metrics-disable hvtel_no_such_metric: not a metric of the catalogue"),
            std::string::npos)
      << output;
}

}  // namespace
}  // namespace hvtel::testing
