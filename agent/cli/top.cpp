#include "cli/top.h"

#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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
      c.domain = s.label("domain");
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
    r.domain = c.domain;
    r.vcpus = c.threads ? c.threads : (c.wait_series > 0 ? std::optional<double>(c.wait_series)
                                                          : std::nullopt);
    r.exits_per_s = counter_delta(p.exits, c.exits) / dt;
    r.userspace_exits_per_s = counter_delta(p.userspace_exits, c.userspace_exits) / dt;
    // Per instance by default, per vCPU with --per-vcpu: the tracked vCPU
    // threads are the divisor where known.
    const double vcpus = c.threads && *c.threads > 0 ? *c.threads : static_cast<double>(c.wait_series);
    if (c.wait_series > 0 && vcpus > 0) r.wait_share = counter_delta(p.wait_s, c.wait_s) / (dt * vcpus);
    r.runqueue_p99_s = histogram_quantile(0.99, bucket_delta(p.runqueue, c.runqueue));
    Buckets vmm = bucket_delta(p.vmm, c.vmm);
    r.vmm_p50_s = histogram_quantile(0.50, vmm);
    r.vmm_p99_s = histogram_quantile(0.99, vmm);
    r.violations = counter_delta(p.violations, c.violations);
    rows.push_back(std::move(r));
  }
  return rows;
}

namespace {

struct SortKeySpec {
  SortKey key;
  const char* name;
  char letter;
};
constexpr SortKeySpec kSortKeys[] = {
    {SortKey::kExits, "exits", 'e'}, {SortKey::kVmmExits, "vmm_exits", 'u'},
    {SortKey::kWait, "wait", 'w'},   {SortKey::kRunqueue, "rq", 'l'},
    {SortKey::kVmmP99, "vmm", 'm'},  {SortKey::kViolations, "violations", 'v'},
    {SortKey::kName, "name", 'n'},
};

const SortKeySpec& spec_of(SortKey k) {
  for (const auto& s : kSortKeys)
    if (s.key == k) return s;
  return kSortKeys[0];
}

// The key's value and a tie-breaker; nullopt: no data for the key.
std::optional<std::pair<double, double>> sort_value(const TopRow& r, SortKey key) {
  auto with = [](std::optional<double> v, double second) -> std::optional<std::pair<double, double>> {
    if (!v) return std::nullopt;
    return std::make_pair(*v, second);
  };
  switch (key) {
    case SortKey::kExits:
      return std::make_pair(r.exits_per_s, r.userspace_exits_per_s);
    case SortKey::kVmmExits:
      return std::make_pair(r.userspace_exits_per_s, r.exits_per_s);
    case SortKey::kWait:
      return with(r.wait_share, r.exits_per_s);
    case SortKey::kRunqueue:
      return with(r.runqueue_p99_s, r.exits_per_s);
    case SortKey::kVmmP99:
      return with(r.vmm_p99_s, r.exits_per_s);
    case SortKey::kViolations:
      return std::make_pair(r.violations, r.exits_per_s);
    case SortKey::kName:
      break;
  }
  return std::nullopt;
}

const std::string& display_name(const TopRow& r) { return r.name.empty() ? r.instance_id : r.name; }

}  // namespace

std::optional<SortKey> sort_key_from_name(const std::string& name) {
  for (const auto& s : kSortKeys)
    if (name == s.name) return s.key;
  return std::nullopt;
}

const char* sort_key_name(SortKey k) { return spec_of(k).name; }
char sort_key_letter(SortKey k) { return spec_of(k).letter; }

void sort_rows(std::vector<TopRow>& rows, SortKey key, bool reversed) {
  std::stable_sort(rows.begin(), rows.end(), [&](const TopRow& a, const TopRow& b) {
    if (key == SortKey::kName) {
      const std::string &na = display_name(a), &nb = display_name(b);
      if (na != nb) return reversed ? na > nb : na < nb;
      return a.instance_id < b.instance_id;
    }
    auto va = sort_value(a, key), vb = sort_value(b, key);
    if (va.has_value() != vb.has_value()) return va.has_value();  // no data last, either way
    if (va && *va != *vb) return reversed ? *va < *vb : *va > *vb;
    return a.instance_id < b.instance_id;
  });
}

std::vector<TopRow> filter_rows(std::vector<TopRow> rows, const std::string& instance) {
  if (instance.empty()) return rows;
  std::erase_if(rows, [&](const TopRow& r) {
    return r.instance_id != instance && r.name != instance && r.domain != instance;
  });
  return rows;
}

KeyOutcome handle_key(SortState state, char key) {
  KeyOutcome out{state, false, false};
  if (key == 'q' || key == 'Q') {
    out.quit = true;
  } else if (key == 'r' || key == 'R') {
    out.state.reversed = !state.reversed;
  } else {
    for (const auto& s : kSortKeys)
      if (key == s.letter || key == std::toupper(static_cast<unsigned char>(s.letter)))
        out.state = SortState{s.key, false};
  }
  out.changed = !(out.state == state);
  return out;
}

std::string key_help() {
  std::string out = "sort:";
  for (const auto& s : kSortKeys) out += fmt::format(" {} {}", s.letter, s.name);
  return out + "  r reverse  q quit";
}

std::string render_json(const std::vector<TopRow>& rows, const RefreshInfo& info) {
  // Six significant digits: the estimates are not finer, and 0.2 reads better than 0.19999999999999996.
  auto num = [](double v) {
    return std::isfinite(v) ? std::strtod(fmt::format("{:.6g}", v).c_str(), nullptr) : 0.0;
  };
  auto opt = [&](std::optional<double> v) {
    return v ? nlohmann::ordered_json(num(*v)) : nlohmann::ordered_json();
  };
  auto count = [](std::optional<double> v) {
    return v ? nlohmann::ordered_json(std::llround(*v)) : nlohmann::ordered_json();
  };
  nlohmann::ordered_json doc;
  doc["time"] = info.time;
  doc["interval_seconds"] = num(info.interval_s);
  doc["agent"] = info.agent;
  doc["sort"] = sort_key_name(info.sort.key);
  doc["reversed"] = info.sort.reversed;
  doc["instance"] = info.instance.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(info.instance);
  doc["instances"] = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    nlohmann::ordered_json j;
    j["instance_id"] = r.instance_id;
    j["name"] = r.name.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(r.name);
    j["vcpus"] = count(r.vcpus);
    j["exits_per_second"] = num(r.exits_per_s);
    j["vmm_exits_per_second"] = num(r.userspace_exits_per_s);
    j["wait_ratio"] = opt(r.wait_share);
    j["runqueue_p99_seconds"] = opt(r.runqueue_p99_s);
    j["vmm_handling_p50_seconds"] = opt(r.vmm_p50_s);
    j["vmm_handling_p99_seconds"] = opt(r.vmm_p99_s);
    j["violations"] = count(r.violations);
    doc["instances"].push_back(std::move(j));
  }
  // Invalid UTF-8 in a name (it comes from the VMM's command line) is replaced, not thrown.
  return doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
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

// stdin in raw mode (no line buffering, no echo; ^C still signals) while
// top runs on a terminal, restored on every way out of cmd_top.
class RawStdin {
 public:
  RawStdin() {
    // Only in the terminal's foreground: a background job would be stopped by SIGTTOU.
    if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp() ||
        tcgetattr(STDIN_FILENO, &saved_) != 0)
      return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
  }
  ~RawStdin() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  RawStdin(const RawStdin&) = delete;
  RawStdin& operator=(const RawStdin&) = delete;
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// Waits up to `seconds`; stops early on a stop signal (false) or, when
// `keys` is set, on a key press (stored in *key).
bool wait_interruptible(double seconds, bool keys, std::optional<char>* key) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!g_stop && std::chrono::steady_clock::now() < end) {
    if (!keys) {
      timespec ts{0, 20'000'000};
      nanosleep(&ts, nullptr);
      continue;
    }
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (::poll(&p, 1, 20) == 1 && (p.revents & POLLIN)) {
      char c = 0;
      if (::read(STDIN_FILENO, &c, 1) == 1) {
        *key = c;
        return true;
      }
    }
  }
  return !g_stop;
}

std::string local_clock() {
  time_t t = time(nullptr);
  tm lt{};
  localtime_r(&t, &lt);
  return fmt::format("{:02}:{:02}:{:02}", lt.tm_hour, lt.tm_min, lt.tm_sec);
}

std::string utc_rfc3339() {
  auto now = std::chrono::system_clock::now();
  time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  tm ut{};
  gmtime_r(&t, &ut);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", ut.tm_year + 1900, ut.tm_mon + 1,
                     ut.tm_mday, ut.tm_hour, ut.tm_min, ut.tm_sec, ms);
}

}  // namespace

int cmd_top(const TopOptions& opts) {
  auto key = sort_key_from_name(opts.sort);
  if (!key) {
    fmt::print(stderr,
               "hvtel top: --sort must be one of exits, vmm_exits, wait, rq, vmm, violations, name\n");
    return 2;
  }
  SortState sort{*key, opts.reverse};
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // terminal gone: leave through the restoring path

  auto prev = scrape(opts.agent_metrics);
  if (!prev) {
    fmt::print(stderr, "hvtel top: cannot scrape the agent at {}: {} (is `hvtel serve` running?)\n",
               opts.agent_metrics, prev.error().message);
    return 1;
  }
  const bool redraw = !opts.once && !opts.json && isatty(STDOUT_FILENO);
  // Keys only where the table is redrawn on a terminal; pipes and --json keep reading nothing.
  std::optional<RawStdin> raw;
  if (redraw) raw.emplace();
  const bool keys = raw && raw->active();

  std::vector<TopRow> rows;
  double elapsed = 0;
  size_t bad_lines = 0;
  auto draw = [&] {
    std::string out;
    if (opts.json) {
      out = render_json(rows, {utc_rfc3339(), elapsed, opts.agent_metrics, sort, opts.instance}) + "\n";
    } else {
      std::string title = fmt::format("hvtel top  {}  {}  interval {:.2f}s  {} instances  sort: {}{}",
                                      local_clock(), opts.agent_metrics, elapsed, rows.size(),
                                      sort_key_name(sort.key), sort.reversed ? " (reversed)" : "");
      if (!opts.instance.empty()) title += fmt::format("  instance: {}", opts.instance);
      if (bad_lines > 0) title += fmt::format("  ({} unparsable lines)", bad_lines);
      out = render_table(rows, title);
      if (keys) out += key_help() + "\n";
      if (redraw)
        out = "\x1b[H\x1b[2J" + out;
      else if (!opts.once)
        out += "\n";
    }
    fwrite(out.data(), 1, out.size(), stdout);
    fflush(stdout);
  };

  double wait_s = opts.interval_s;
  auto next_scrape = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  for (;;) {
    std::optional<char> pressed;
    double left = std::chrono::duration<double>(next_scrape - std::chrono::steady_clock::now()).count();
    if (!wait_interruptible(std::max(left, 0.0), keys, &pressed)) break;
    if (pressed) {
      KeyOutcome k = handle_key(sort, *pressed);
      if (k.quit) break;
      if (k.changed && prev) {
        sort = k.state;
        sort_rows(rows, sort.key, sort.reversed);
        if (elapsed > 0) draw();  // re-sort what is shown; the next scrape stays on time
      }
      continue;
    }
    next_scrape = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
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
    elapsed = std::chrono::duration<double>(cur->at - prev->at).count();
    rows = filter_rows(compute_rows(prev->snap, cur->snap, elapsed), opts.instance);
    sort_rows(rows, sort.key, sort.reversed);
    bad_lines = cur->bad_lines;
    draw();
    if (opts.once) return 0;
    prev = std::move(cur);
  }
  return 0;
}

}  // namespace hvtel::cli
