#include "pinning/stacking.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "base/util/files.h"
#include "base/util/strings.h"
#include "pinning/cpus.h"

namespace hvtel::pinning {

Result<std::map<int, CpuTimes>> parse_proc_stat_cpus(std::string_view text, uint64_t ticks_per_s) {
  if (ticks_per_s == 0) return fail("/proc/stat: clock ticks per second unknown");
  const uint64_t ns_per_tick = 1'000'000'000ULL / ticks_per_s;
  std::map<int, CpuTimes> out;
  for (const auto& line : split(text, '\n')) {
    // "cpu" alone is the sum over all CPUs; "cpuN" the CPU itself.
    if (!starts_with(line, "cpu") || line.size() < 4 || line[3] < '0' || line[3] > '9') continue;
    std::vector<std::string> fields;
    for (auto& f : split(line, ' '))
      if (!f.empty()) fields.push_back(std::move(f));
    auto cpu = parse_u64(std::string_view(fields[0]).substr(3));
    // user nice system idle iowait ...: idle and iowait (fields 4 and 5) exist since 2.6.
    if (!cpu || *cpu > static_cast<uint64_t>(kMaxCpuId) || fields.size() < 6)
      return fail(fmt::format("/proc/stat: malformed line '{}'", trim(line)));
    CpuTimes t;
    for (size_t i = 1; i < fields.size(); ++i) {
      auto v = parse_u64(fields[i]);
      if (!v) return fail(fmt::format("/proc/stat: malformed line '{}'", trim(line)));
      // guest and guest_nice (fields 9, 10) are already part of user and nice.
      if (i <= 8) t.total_ns += *v * ns_per_tick;
      if (i == 4 || i == 5) t.idle_ns += *v * ns_per_tick;
    }
    out[static_cast<int>(*cpu)] = t;
  }
  if (out.empty()) return fail("/proc/stat: no cpuN lines");
  return out;
}

Result<std::map<int, CpuTimes>> read_cpu_times(const std::string& proc_root) {
  auto text = read_file(proc_root + "/stat");
  if (!text) return fail(text.error());
  long hz = sysconf(_SC_CLK_TCK);
  return parse_proc_stat_cpus(*text, hz > 0 ? static_cast<uint64_t>(hz) : 0);
}

namespace {

struct Stacked {
  int vcpu;
  uint64_t waited_ns;
  const std::vector<int>* allowed;
};

}  // namespace

int percent(uint64_t part, uint64_t whole) {
  return whole ? static_cast<int>((part * 100 + whole / 2) / whole) : 0;
}

bool interval_due(uint64_t last_ns, uint64_t now_ns, uint64_t interval_ns) {
  return last_ns == 0 || now_ns < last_ns || now_ns - last_ns >= interval_ns;
}

std::vector<Finding> still_tracked(const std::vector<Finding>& findings,
                                   const std::vector<ResolvedIntent>& intents) {
  std::vector<Finding> out;
  for (const auto& f : findings)
    if (std::ranges::any_of(intents, [&](const ResolvedIntent& r) { return r.instance_id == f.instance_id; }))
      out.push_back(f);
  return out;
}

bool is_floating_vcpu(const ResolvedIntent& r, const ThreadIntent& t) {
  return t.role == ThreadRole::kVcpu && !r.dedicated_vcpus.contains(t.index) && t.allowed.size() > 1;
}

bool StackingDetector::due(uint64_t now_ns) const {
  return interval_due(last_ns_, now_ns, opts_.interval_ns);
}

std::vector<Finding> StackingDetector::held(const std::vector<ResolvedIntent>& intents) const {
  return still_tracked(last_, intents);
}

std::vector<Finding> StackingDetector::sample(const std::vector<ResolvedIntent>& intents,
                                              const VcpuRunFn& run, const std::map<int, CpuTimes>& cpus,
                                              uint64_t now_ns) {
  std::vector<Finding> out;
  std::map<pid_t, uint64_t> wait;
  const uint64_t dt = last_ns_ && now_ns > last_ns_ ? now_ns - last_ns_ : 0;
  for (const auto& r : intents) {
    std::map<int, std::vector<Stacked>> by_cpu;
    for (const auto& t : r.threads) {
      if (!is_floating_vcpu(r, t) || !run) continue;
      auto now = run(t.tid);
      if (!now || now->cpu < 0) continue;
      auto prev = wait_.find(t.tid);
      // The kernel adds a wait to wait_ns as the wait ends; reading both halves is not atomic, so
      // keep the counter monotonic rather than report a negative wait.
      uint64_t cur = prev != wait_.end() ? std::max(now->wait_ns, prev->second) : now->wait_ns;
      wait[t.tid] = cur;
      if (prev == wait_.end() || dt == 0) continue;
      uint64_t waited = cur - prev->second;
      if (static_cast<double>(waited) < opts_.min_wait_share * static_cast<double>(dt)) continue;
      by_cpu[now->cpu].push_back({t.index, waited, &t.allowed});
    }
    for (const auto& [cpu, stacked] : by_cpu) {
      if (stacked.size() < 2) continue;
      std::vector<int> common = *stacked.front().allowed;
      for (const auto& s : stacked) common = cpus_intersect(common, *s.allowed);
      int idle_cpu = -1, idle_pct = -1;
      for (int c : common) {
        if (c == cpu) continue;
        auto before = std::as_const(cpus_).find(c);
        auto after = cpus.find(c);
        if (before == cpus_.end() || after == cpus.end()) continue;
        if (after->second.total_ns <= before->second.total_ns ||
            after->second.idle_ns < before->second.idle_ns)
          continue;  // offline, or its counters went back
        uint64_t total = after->second.total_ns - before->second.total_ns;
        uint64_t idle = after->second.idle_ns - before->second.idle_ns;
        if (static_cast<double>(idle) < opts_.min_idle_share * static_cast<double>(total)) continue;
        if (int p = percent(idle, total); p > idle_pct) idle_cpu = c, idle_pct = p;
      }
      if (idle_cpu < 0) continue;
      std::vector<int> vcpus;
      std::string waits;
      for (const auto& s : stacked) {
        vcpus.push_back(s.vcpu);
        waits += fmt::format("{}{}%", waits.empty() ? "" : ",", percent(s.waited_ns, dt));
      }
      out.push_back(
          Finding{.instance_id = r.instance_id,
                  .cls = ViolationClass::kFloatingStacking,
                  .cpus = {cpu},
                  .detail = fmt::format(
                      "vcpus {} stacked on pCPU {} (waited {}) while pCPU {} of their cpuset {} idled {}%",
                      fmt::join(vcpus, ","), cpu, waits, idle_cpu, format_cpu_list(common), idle_pct)});
    }
  }
  wait_ = std::move(wait);
  cpus_ = cpus;
  last_ns_ = now_ns;
  last_ = out;
  return out;
}

}  // namespace hvtel::pinning
