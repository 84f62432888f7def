#include "cli/top.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace hvtel::cli {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

MetricsSnapshot snap(const std::string& text) {
  http::PromText p = http::parse_prometheus_text(text);
  EXPECT_EQ(p.bad_lines, 0u) << p.first_error;
  return snapshot_from_samples(p.samples);
}

// Two scrapes 2 s apart: instance A busy, B quiet, C only in the second.
const char* kFirst =
    "hvtel_vcpu_exits_total{instance_id=\"A\",reason=\"hlt\"} 100\n"
    "hvtel_vcpu_exits_total{instance_id=\"A\",reason=\"io_instruction\"} 900\n"
    "hvtel_vcpu_userspace_exits_total{instance_id=\"A\",reason=\"io\"} 500\n"
    "hvtel_vcpu_wait_seconds_total{instance_id=\"A\",vcpu=\"0\"} 1.0\n"
    "hvtel_vcpu_wait_seconds_total{instance_id=\"A\",vcpu=\"1\"} 2.0\n"
    "hvtel_vcpu_threads{instance_id=\"A\"} 2\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"1.024e-06\"} 0\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"4.096e-06\"} 5\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"1.6384e-05\"} 5\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"+Inf\"} 5\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"1e-06\"} 0\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"4e-06\"} 0\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"1.6e-05\"} 0\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"+Inf\"} 0\n"
    "hvtel_pinning_violations_total{instance_id=\"A\",class=\"offpin_run\"} 3\n"
    "hvtel_pinning_violations_total{instance_id=\"A\",class=\"pin_changed\"} 1\n"
    "hvtel_instance_info{instance_id=\"A\",instance_name=\"web-1\",domain=\"instance-0001\"} 1\n"
    "hvtel_vcpu_userspace_exits_total{instance_id=\"B\",reason=\"io\"} 10\n"
    "hvtel_vcpu_wait_seconds_total{instance_id=\"B\",vcpu=\"0\"} 0.5\n"
    "hvtel_instance_info{instance_id=\"B\",instance_name=\"\",domain=\"instance-0002\"} 1\n"
    "hvtel_build_info{version=\"0.1.0\",abi=\"1\"} 1\n";
const char* kSecond =
    "hvtel_vcpu_exits_total{instance_id=\"A\",reason=\"hlt\"} 300\n"
    "hvtel_vcpu_exits_total{instance_id=\"A\",reason=\"io_instruction\"} 2700\n"
    "hvtel_vcpu_userspace_exits_total{instance_id=\"A\",reason=\"io\"} 2500\n"
    "hvtel_vcpu_wait_seconds_total{instance_id=\"A\",vcpu=\"0\"} 1.2\n"
    "hvtel_vcpu_wait_seconds_total{instance_id=\"A\",vcpu=\"1\"} 2.6\n"
    "hvtel_vcpu_threads{instance_id=\"A\"} 2\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"1.024e-06\"} 0\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"4.096e-06\"} 15\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"1.6384e-05\"} 105\n"
    "hvtel_vcpu_runqueue_latency_seconds_bucket{instance_id=\"A\",le=\"+Inf\"} 105\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"1e-06\"} 0\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"4e-06\"} 10\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"1.6e-05\"} 90\n"
    "hvtel_vcpu_vmm_handling_seconds_bucket{instance_id=\"A\",le=\"+Inf\"} 100\n"
    "hvtel_pinning_violations_total{instance_id=\"A\",class=\"offpin_run\"} 5\n"
    "hvtel_pinning_violations_total{instance_id=\"A\",class=\"pin_changed\"} 1\n"
    "hvtel_instance_info{instance_id=\"A\",instance_name=\"web-1\",domain=\"instance-0001\"} 1\n"
    "hvtel_vcpu_userspace_exits_total{instance_id=\"B\",reason=\"io\"} 4\n"
    "hvtel_vcpu_wait_seconds_total{instance_id=\"B\",vcpu=\"0\"} 0.5\n"
    "hvtel_instance_info{instance_id=\"B\",instance_name=\"\",domain=\"instance-0002\"} 1\n"
    "hvtel_vcpu_userspace_exits_total{instance_id=\"C\",reason=\"hlt\"} 7\n";

TEST(TopSnapshot, SumsPerInstance) {
  auto s = snap(kFirst);
  ASSERT_EQ(s.size(), 2u);
  const auto& a = s.at("A");
  EXPECT_EQ(a.name, "web-1");
  EXPECT_EQ(a.exits, 1000.0);
  EXPECT_EQ(a.userspace_exits, 500.0);
  EXPECT_DOUBLE_EQ(a.wait_s, 3.0);
  EXPECT_EQ(a.wait_series, 2u);
  EXPECT_EQ(a.threads, 2.0);
  EXPECT_EQ(a.violations, 4.0);
  EXPECT_EQ(a.runqueue.size(), 4u);
  EXPECT_EQ(a.runqueue.at(4.096e-06), 5.0);
  EXPECT_EQ(a.runqueue.at(kInf), 5.0);
  EXPECT_EQ(s.at("B").name, "instance-0002");  // domain when no instance_name
}

TEST(TopQuantile, InterpolatesLikePrometheus) {
  Buckets b{{1e-6, 0}, {4e-6, 10}, {1.6e-5, 90}, {kInf, 100}};
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.5, b), 1e-5);     // 4us + 12us * 40/80
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.05, b), 2.5e-6);  // 1us + 3us * 5/10
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.9, b), 1.6e-5);   // exactly the bucket's top
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.99, b), 1.6e-5);  // in +Inf: highest finite bound
  Buckets first{{4e-6, 8}, {kInf, 8}};
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.5, first), 2e-6);  // first bucket starts at 0
  EXPECT_FALSE(histogram_quantile(0.5, Buckets{{1e-6, 0}, {kInf, 0}}));
  EXPECT_FALSE(histogram_quantile(0.5, Buckets{}));
  EXPECT_FALSE(histogram_quantile(1.5, b));
}

TEST(TopQuantile, BucketDeltaAndReset) {
  Buckets prev{{1.0, 2}, {kInf, 4}};
  Buckets cur{{1.0, 5}, {kInf, 10}};
  EXPECT_EQ(bucket_delta(prev, cur), (Buckets{{1.0, 3}, {kInf, 6}}));
  Buckets reset{{1.0, 1}, {kInf, 1}};
  EXPECT_EQ(bucket_delta(prev, reset), reset);
  EXPECT_EQ(bucket_delta({}, cur), cur);
}

TEST(TopRows, RatesOverTheInterval) {
  auto rows = compute_rows(snap(kFirst), snap(kSecond), 2.0);
  ASSERT_EQ(rows.size(), 3u);  // map order: A, B, C
  const TopRow& a = rows[0];
  EXPECT_EQ(a.instance_id, "A");
  EXPECT_EQ(a.name, "web-1");
  EXPECT_EQ(a.vcpus, 2.0);
  EXPECT_DOUBLE_EQ(a.exits_per_s, 1000.0);            // (3000-1000)/2
  EXPECT_DOUBLE_EQ(a.userspace_exits_per_s, 1000.0);  // (2500-500)/2
  EXPECT_DOUBLE_EQ(*a.wait_share, 0.2);               // 0.8 s / (2 s x 2 vCPUs)
  // Interval run-queue buckets: 0, 10, 100, 100 -> p99 rank 99 in (4.096us, 16.384us].
  EXPECT_DOUBLE_EQ(*a.runqueue_p99_s, 4.096e-06 + (1.6384e-05 - 4.096e-06) * 89.0 / 90.0);
  EXPECT_DOUBLE_EQ(*a.vmm_p50_s, 1e-5);
  EXPECT_DOUBLE_EQ(*a.vmm_p99_s, 1.6e-5);
  EXPECT_EQ(a.violations, 2.0);
  const TopRow& b = rows[1];
  EXPECT_DOUBLE_EQ(b.userspace_exits_per_s, 2.0);  // counter went 10 -> 4: reset, 4 new
  EXPECT_DOUBLE_EQ(*b.wait_share, 0.0);
  EXPECT_FALSE(b.runqueue_p99_s);
  EXPECT_EQ(b.vcpus, 1.0);  // no hvtel_vcpu_threads: the vCPU series
  const TopRow& c = rows[2];
  EXPECT_DOUBLE_EQ(c.userspace_exits_per_s, 3.5);  // new instance counts from 0
  EXPECT_FALSE(c.wait_share);
  EXPECT_FALSE(c.vcpus);
}

TEST(TopRows, Sorting) {
  auto rows = compute_rows(snap(kFirst), snap(kSecond), 2.0);
  sort_rows(rows, SortKey::kExits);
  EXPECT_EQ(rows[0].instance_id, "A");
  EXPECT_EQ(rows[1].instance_id, "C");  // 0 exits; 3.5 VMM exits/s beats B's 2
  EXPECT_EQ(rows[2].instance_id, "B");
  sort_rows(rows, SortKey::kWait);
  EXPECT_EQ(rows[0].instance_id, "A");
  EXPECT_EQ(rows[1].instance_id, "B");  // 0% beats "no data"
  EXPECT_EQ(rows[2].instance_id, "C");
  rows[2].violations = 9;
  sort_rows(rows, SortKey::kViolations);
  EXPECT_EQ(rows[0].instance_id, "C");
  EXPECT_EQ(rows[1].instance_id, "A");
  EXPECT_EQ(sort_key_from_name("wait"), SortKey::kWait);
  EXPECT_FALSE(sort_key_from_name("cpu"));
}

TEST(TopRender, GoldenTable) {
  auto rows = compute_rows(snap(kFirst), snap(kSecond), 2.0);
  sort_rows(rows, SortKey::kExits);
  const std::string expected =
      "hvtel top\n"
      "INSTANCE  NAME           VCPUS     EXITS/s  VMM_EXITS/s   WAIT%    RQ_P99   VMM_P50   VMM_P99   VIOL\n"
      "A         web-1              2        1000         1000   20.0%    16.2us    10.0us    16.0us      2\n"
      "C         -                  -         0.0          3.5       -         -         -         -      0\n"
      "B         instance-0002      1         0.0          2.0    0.0%         -         -         -      0\n";
  EXPECT_EQ(render_table(rows, "hvtel top"), expected);
  EXPECT_EQ(render_table({}, "t"), std::string("t\n") +
      "INSTANCE  NAME  VCPUS     EXITS/s  VMM_EXITS/s   WAIT%    RQ_P99   VMM_P50   VMM_P99   VIOL\n"
      "(no instances)\n");
}

TEST(TopRender, Formats) {
  EXPECT_EQ(format_duration(std::nullopt), "-");
  EXPECT_EQ(format_duration(5e-7), "500ns");
  EXPECT_EQ(format_duration(1.234e-5), "12.3us");
  EXPECT_EQ(format_duration(0.0456), "45.6ms");
  EXPECT_EQ(format_duration(17.18), "17.18s");
  EXPECT_EQ(format_rate(0), "0.0");
  EXPECT_EQ(format_rate(99.94), "99.9");
  EXPECT_EQ(format_rate(1234567.4), "1234567");
}

TEST(TopRows, WaitOfThePerInstanceSeriesIsSharedByTheVcpus) {
  // The agent's default: one wait series per instance, hvtel_vcpu_threads vCPUs.
  auto before = snap(
      "hvtel_vcpu_wait_seconds_total{instance_id=\"D\"} 4\n"
      "hvtel_vcpu_threads{instance_id=\"D\"} 8\n");
  auto after = snap(
      "hvtel_vcpu_wait_seconds_total{instance_id=\"D\"} 8\n"
      "hvtel_vcpu_threads{instance_id=\"D\"} 8\n");
  auto rows = compute_rows(before, after, 2.0);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(*rows[0].wait_share, 0.25);  // 4 s / (2 s x 8 vCPUs)
  EXPECT_EQ(rows[0].vcpus, 8.0);
}

std::vector<std::string> ids(const std::vector<TopRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.instance_id);
  return out;
}

using Ids = std::vector<std::string>;

TEST(TopFilter, ByInstanceIdNovaNameOrDomain) {
  auto rows = compute_rows(snap(kFirst), snap(kSecond), 2.0);
  EXPECT_EQ(ids(filter_rows(rows, "")), (Ids{"A", "B", "C"}));
  EXPECT_EQ(ids(filter_rows(rows, "A")), (Ids{"A"}));
  EXPECT_EQ(ids(filter_rows(rows, "web-1")), (Ids{"A"}));          // Nova display name
  EXPECT_EQ(ids(filter_rows(rows, "instance-0001")), (Ids{"A"}));  // libvirt domain
  EXPECT_EQ(ids(filter_rows(rows, "instance-0002")), (Ids{"B"}));
  EXPECT_EQ(ids(filter_rows(rows, "web")), Ids{});  // whole names only
  EXPECT_EQ(render_table(filter_rows(rows, "nope"), "t"),
            "t\nINSTANCE  NAME  VCPUS     EXITS/s  VMM_EXITS/s   WAIT%    RQ_P99   VMM_P50   VMM_P99   VIOL\n"
            "(no instances)\n");
}

TEST(TopRows, EveryKeyReversedAndByName) {
  auto rows = compute_rows(snap(kFirst), snap(kSecond), 2.0);
  sort_rows(rows, SortKey::kExits, true);
  EXPECT_EQ(ids(rows), (Ids{"B", "C", "A"}));
  sort_rows(rows, SortKey::kVmmExits);
  EXPECT_EQ(ids(rows), (Ids{"A", "C", "B"}));
  sort_rows(rows, SortKey::kWait, true);
  EXPECT_EQ(ids(rows), (Ids{"B", "A", "C"}));  // no data stays last
  sort_rows(rows, SortKey::kRunqueue);
  EXPECT_EQ(ids(rows), (Ids{"A", "B", "C"}));  // only A has run-queue data; then by id
  sort_rows(rows, SortKey::kVmmP99, true);
  EXPECT_EQ(ids(rows), (Ids{"A", "B", "C"}));
  sort_rows(rows, SortKey::kName);
  EXPECT_EQ(ids(rows), (Ids{"C", "B", "A"}));  // "C" (no name), "instance-0002", "web-1"
  sort_rows(rows, SortKey::kName, true);
  EXPECT_EQ(ids(rows), (Ids{"A", "B", "C"}));
  for (const char* n : {"exits", "vmm_exits", "wait", "rq", "vmm", "violations", "name"})
    EXPECT_EQ(sort_key_name(*sort_key_from_name(n)), std::string(n));
}

TEST(TopKeys, KeyPressesChangeTheSortState) {
  const SortState exits{SortKey::kExits, false};
  KeyOutcome k = handle_key(exits, 'w');
  EXPECT_EQ(k.state, (SortState{SortKey::kWait, false}));
  EXPECT_TRUE(k.changed);
  EXPECT_FALSE(k.quit);
  k = handle_key(k.state, 'r');
  EXPECT_EQ(k.state, (SortState{SortKey::kWait, true}));
  EXPECT_TRUE(k.changed);
  k = handle_key(k.state, 'l');  // a column's letter: its default direction
  EXPECT_EQ(k.state, (SortState{SortKey::kRunqueue, false}));
  EXPECT_EQ(handle_key(k.state, 'r').state, (SortState{SortKey::kRunqueue, true}));
  EXPECT_EQ(handle_key(exits, 'U').state, (SortState{SortKey::kVmmExits, false}));
  EXPECT_EQ(handle_key(exits, 'm').state.key, SortKey::kVmmP99);
  EXPECT_EQ(handle_key(exits, 'v').state.key, SortKey::kViolations);
  EXPECT_EQ(handle_key(exits, 'n').state.key, SortKey::kName);
  // The current column's letter and unknown keys change nothing.
  for (char c : {'e', 'x', ' ', '\n', '\x1b'}) {
    KeyOutcome same = handle_key(exits, c);
    EXPECT_EQ(same.state, exits) << int(c);
    EXPECT_FALSE(same.changed) << int(c);
    EXPECT_FALSE(same.quit) << int(c);
  }
  KeyOutcome q = handle_key({SortKey::kWait, true}, 'q');
  EXPECT_TRUE(q.quit);
  EXPECT_EQ(q.state, (SortState{SortKey::kWait, true}));
  EXPECT_TRUE(handle_key(exits, 'Q').quit);
  EXPECT_EQ(key_help(), "sort: e exits u vmm_exits w wait l rq m vmm v violations n name  r reverse  q quit");
}

TEST(TopJson, OneDocumentPerRefreshWithStableKeys) {
  auto rows = filter_rows(compute_rows(snap(kFirst), snap(kSecond), 2.0), "");
  sort_rows(rows, SortKey::kExits);
  RefreshInfo info{"2026-12-06T02:30:00.000Z", 2.0, "127.0.0.1:9477", {SortKey::kExits, false}, ""};
  const std::string expected =
      "{\"time\":\"2026-12-06T02:30:00.000Z\",\"interval_seconds\":2.0,\"agent\":\"127.0.0.1:9477\","
      "\"sort\":\"exits\",\"reversed\":false,\"instance\":null,\"instances\":["
      "{\"instance_id\":\"A\",\"name\":\"web-1\",\"vcpus\":2,\"exits_per_second\":1000.0,"
      "\"vmm_exits_per_second\":1000.0,\"wait_ratio\":0.2,\"runqueue_p99_seconds\":1.62475e-05,"
      "\"vmm_handling_p50_seconds\":1e-05,\"vmm_handling_p99_seconds\":1.6e-05,\"violations\":2},"
      "{\"instance_id\":\"C\",\"name\":null,\"vcpus\":null,\"exits_per_second\":0.0,"
      "\"vmm_exits_per_second\":3.5,\"wait_ratio\":null,\"runqueue_p99_seconds\":null,"
      "\"vmm_handling_p50_seconds\":null,\"vmm_handling_p99_seconds\":null,\"violations\":0},"
      "{\"instance_id\":\"B\",\"name\":\"instance-0002\",\"vcpus\":1,\"exits_per_second\":0.0,"
      "\"vmm_exits_per_second\":2.0,\"wait_ratio\":0.0,\"runqueue_p99_seconds\":null,"
      "\"vmm_handling_p50_seconds\":null,\"vmm_handling_p99_seconds\":null,\"violations\":0}]}";
  EXPECT_EQ(render_json(rows, info), expected);
  // Filtered, reversed: the filter and the order are in the document.
  info.instance = "web-1";
  info.sort = {SortKey::kWait, true};
  const std::string one = render_json(filter_rows(rows, "web-1"), info);
  EXPECT_EQ(one.find('\n'), std::string::npos);  // one line: NDJSON
  EXPECT_NE(
      one.find(
          "\"sort\":\"wait\",\"reversed\":true,\"instance\":\"web-1\",\"instances\":[{\"instance_id\":\"A\""),
      std::string::npos)
      << one;
  EXPECT_EQ(render_json({}, info).substr(render_json({}, info).find("\"instances\"")), "\"instances\":[]}");
}

}  // namespace
}  // namespace hvtel::cli
