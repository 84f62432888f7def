#include "cli/top.h"

#include <fmt/core.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include "base/http/http_client.h"
#include "base/metrics/catalog.h"

namespace hvtel::cli {
namespace {

constexpr size_t kMaxNameWidth = 24;

double counter_delta(double prev, double cur) { return cur >= prev ? cur - prev : cur; }

void add_bucket(Buckets& b, const http::PromSample& s) {
  auto le = http::parse_prom_value(s.label("le"));
  if (!le || std::isnan(*le)) return;
  b[*le] += s.value;
}

// A histogram's cumulative bucket series.
std::string bucket_of(const metrics::MetricDesc& d) { return std::string(d.name) + "_bucket"; }

std::string truncate(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  return s.substr(0, width - 1) + "~";
}

}  // namespace

MetricsSnapshot snapshot_from_samples(const std::vector<http::PromSample>& samples) {
  namespace catalog = metrics::catalog;
  static const std::string kRunqueueBucket = bucket_of(catalog::kVcpuRunqueueLatency);
  static const std::string kVmmBucket = bucket_of(catalog::kVcpuVmmHandling);
  MetricsSnapshot snap;
  for (const auto& s : samples) {
    const std::string& id = s.label("instance_id");
    if (id.empty()) continue;
    if (std::isnan(s.value)) continue;
    const std::string& n = s.name;
    if (n == catalog::kVcpuExits.name) {
      snap[id].exits += s.value;
    } else if (n == catalog::kVcpuUserspaceExits.name) {
      snap[id].userspace_exits += s.value;
    } else if (n == catalog::kVcpuWaitSeconds.name) {
      auto& c = snap[id];
      c.wait_s += s.value;
      ++c.wait_series;
    } else if (n == catalog::kVcpuThreads.name) {
      snap[id].threads = s.value;
    } else if (n == kRunqueueBucket) {
      add_bucket(snap[id].runqueue, s);
    } else if (n == kVmmBucket) {
      add_bucket(snap[id].vmm, s);
    } else if (n == catalog::kPinningViolations.name) {
      snap[id].violations += s.value;
    } else if (n == catalog::kInstanceInfo.name) {
      auto& c = snap[id];
      c.name = !s.label("instance_name").empty() ? s.label("instance_name") : s.label("domain");
    }
  }
  return snap;
}

std::optional<double> histogram_quantile(double q, const Buckets& cumulative) {
  if (cumulative.empty() || q < 0 || q > 1) return std::nullopt;
  const double total = cumulative.rbegin()->second;
  if (!(total > 0)) return std::nullopt;
  const double rank = q * total;
  double lower = 0, prev_count = 0;
  std::optional<double> last_finite;
  for (const auto& [le, count] : cumulative) {
    if (count >= rank && count > prev_count) {
      if (std::isinf(le)) return last_finite;  // no upper bound to interpolate to
      return lower + (le - lower) * (rank - prev_count) / (count - prev_count);
    }
    if (!std::isinf(le)) last_finite = le;
    lower = std::isinf(le) ? lower : le;
    prev_count = count;
  }
  return last_finite;
}

Buckets bucket_delta(const Buckets& prev, const Buckets& cur) {
  Buckets out;
  for (const auto& [le, count] : cur) {
    auto it = prev.find(le);
    double before = it == prev.end() ? 0 : it->second;
    if (count < before) return cur;  // reset: everything in cur is new
    out[le] = count - before;
  }
  return out;
}

std::vector<TopRow> compute_rows(const MetricsSnapshot& prev, const MetricsSnapshot& cur,
                                 double elapsed_s) {
  static const InstanceCounters kZero;
  std::vector<TopRow> rows;
  const double dt = elapsed_s > 0 ? elapsed_s : 1;
  for (const auto& [id, c] : cur) {
    auto it = prev.find(id);
    const InstanceCounters& p = it == prev.end() ? kZero : it->second;
    TopRow r;
    r.instance_id = id;
    r.name = c.name;
    r.vcpus = c.threads ? c.threads : (c.wait_series > 0 ? std::optional<double>(c.wait_series)
                                                          : std::nullopt);
    r.exits_per_s = counter_delta(p.exits, c.exits) / dt;
    r.userspace_exits_per_s = counter_delta(p.userspace_exits, c.userspace_exits) / dt;
    if (c.wait_series > 0)
      r.wait_share = counter_delta(p.wait_s, c.wait_s) / (dt * static_cast<double>(c.wait_series));
    r.runqueue_p99_s = histogram_quantile(0.99, bucket_delta(p.runqueue, c.runqueue));
    Buckets vmm = bucket_delta(p.vmm, c.vmm);
    r.vmm_p50_s = histogram_quantile(0.50, vmm);
    r.vmm_p99_s = histogram_quantile(0.99, vmm);
    r.violations = counter_delta(p.violations, c.violations);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::optional<SortKey> sort_key_from_name(const std::string& name) {
  if (name == "exits") return SortKey::kExits;
  if (name == "wait") return SortKey::kWait;
  if (name == "violations") return SortKey::kViolations;
  return std::nullopt;
}

void sort_rows(std::vector<TopRow>& rows, SortKey key) {
  auto tuple = [key](const TopRow& r) {
    switch (key) {
      case SortKey::kWait: return std::make_pair(r.wait_share.value_or(-1), r.exits_per_s);
      case SortKey::kViolations: return std::make_pair(r.violations, r.exits_per_s);
      case SortKey::kExits: break;
    }
    return std::make_pair(r.exits_per_s, r.userspace_exits_per_s);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const TopRow& a, const TopRow& b) {
    auto ta = tuple(a), tb = tuple(b);
    if (ta != tb) return ta > tb;
    return a.instance_id < b.instance_id;
  });
}

std::string format_duration(std::optional<double> s) {
  if (!s || std::isnan(*s)) return "-";
  double v = *s;
  if (v < 1e-6) return fmt::format("{:.0f}ns", v * 1e9);
  if (v < 1e-3) return fmt::format("{:.1f}us", v * 1e6);
  if (v < 1) return fmt::format("{:.1f}ms", v * 1e3);
  return fmt::format("{:.2f}s", v);
}

std::string format_rate(double per_s) {
  if (per_s >= 100) return fmt::format("{:.0f}", per_s);
  return fmt::format("{:.1f}", per_s);
}

std::string render_table(const std::vector<TopRow>& rows, const std::string& title) {
  size_t id_w = 8, name_w = 4;
  for (const auto& r : rows) {
    id_w = std::max(id_w, r.instance_id.size());
    name_w = std::max(name_w, std::min(kMaxNameWidth, std::max<size_t>(1, r.name.size())));
  }
  std::string out = title + "\n";
  out += fmt::format("{:<{}}  {:<{}}  {:>5}  {:>10}  {:>11}  {:>6}  {:>8}  {:>8}  {:>8}  {:>5}\n",
                     "INSTANCE", id_w, "NAME", name_w, "VCPUS", "EXITS/s", "VMM_EXITS/s", "WAIT%",
                     "RQ_P99", "VMM_P50", "VMM_P99", "VIOL");
  for (const auto& r : rows) {
    std::string vcpus = r.vcpus ? fmt::format("{:.0f}", *r.vcpus) : "-";
    std::string wait = r.wait_share ? fmt::format("{:.1f}%", *r.wait_share * 100) : "-";
    out += fmt::format("{:<{}}  {:<{}}  {:>5}  {:>10}  {:>11}  {:>6}  {:>8}  {:>8}  {:>8}  {:>5.0f}\n",
                       r.instance_id, id_w, r.name.empty() ? "-" : truncate(r.name, kMaxNameWidth),
                       name_w, vcpus, format_rate(r.exits_per_s),
                       format_rate(r.userspace_exits_per_s), wait, format_duration(r.runqueue_p99_s),
                       format_duration(r.vmm_p50_s), format_duration(r.vmm_p99_s), r.violations);
  }
  if (rows.empty()) out += "(no instances)\n";
  return out;
}

namespace {

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

struct Scraped {
  MetricsSnapshot snap;
  std::chrono::steady_clock::time_point at;
  size_t bad_lines = 0;
};

Result<Scraped> scrape(const std::string& agent) {
  auto resp = http::http_get(agent, "/metrics", std::chrono::seconds(10));
  if (!resp) return fail(resp.error());
  if (resp->status != 200)
    return fail(fmt::format("GET {}/metrics: HTTP {}", agent, resp->status));
  Scraped s;
  s.at = std::chrono::steady_clock::now();
  http::PromText text = http::parse_prometheus_text(resp->body);
  s.bad_lines = text.bad_lines;
  s.snap = snapshot_from_samples(text.samples);
  return s;
}

// Sleeps up to `seconds`; false when a stop signal came.
bool sleep_interruptible(double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!g_stop && std::chrono::steady_clock::now() < end) {
    timespec ts{0, 20'000'000};
    nanosleep(&ts, nullptr);
  }
  return !g_stop;
}

std::string local_clock() {
  time_t t = time(nullptr);
  tm lt{};
  localtime_r(&t, &lt);
  return fmt::format("{:02}:{:02}:{:02}", lt.tm_hour, lt.tm_min, lt.tm_sec);
}

}  // namespace

int cmd_top(const TopOptions& opts) {
  auto key = sort_key_from_name(opts.sort);
  if (!key) {
    fmt::print(stderr, "hvtel top: --sort must be exits, wait or violations\n");
    return 2;
  }
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  auto prev = scrape(opts.agent_metrics);
  if (!prev) {
    fmt::print(stderr, "hvtel top: cannot scrape the agent at {}: {} (is `hvtel serve` running?)\n",
               opts.agent_metrics, prev.error().message);
    return 1;
  }
  const bool redraw = !opts.once && isatty(STDOUT_FILENO);
  while (sleep_interruptible(opts.interval_s)) {
    auto cur = scrape(opts.agent_metrics);
    if (!cur) {
      if (opts.once) {
        fmt::print(stderr, "hvtel top: cannot scrape the agent at {}: {}\n", opts.agent_metrics,
                   cur.error().message);
        return 1;
      }
      fmt::print(stderr, "hvtel top: {} (retrying)\n", cur.error().message);
      continue;
    }
    double elapsed = std::chrono::duration<double>(cur->at - prev->at).count();
    auto rows = compute_rows(prev->snap, cur->snap, elapsed);
    sort_rows(rows, *key);
    std::string title = fmt::format("hvtel top  {}  {}  interval {:.2f}s  {} instances  sort: {}",
                                    local_clock(), opts.agent_metrics, elapsed, rows.size(),
                                    opts.sort);
    if (cur->bad_lines > 0) title += fmt::format("  ({} unparsable lines)", cur->bad_lines);
    std::string table = render_table(rows, title);
    if (redraw) table = "\x1b[H\x1b[2J" + table;
    else if (!opts.once) table += "\n";
    fwrite(table.data(), 1, table.size(), stdout);
    fflush(stdout);
    if (opts.once) return 0;
    prev = std::move(cur);
  }
  return 0;
}

}  // namespace hvtel::cli
