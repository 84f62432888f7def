#include "pinning/siblings.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace hvtel::pinning {

namespace {

// The siblings of `in`'s dedicated pCPUs outside them, each with the dedicated pCPU it belongs to.
std::map<int, int> reserved_siblings(const ResolvedIntent& in,
                                     const std::map<int, std::vector<int>>& siblings) {
  std::map<int, int> out;
  if (in.thread_policy != "isolate") return out;
  for (int c : in.dedicated) {
    auto it = siblings.find(c);
    if (it == siblings.end()) continue;
    for (int s : it->second)
      if (s != c && !std::ranges::binary_search(in.dedicated, s)) out.emplace(s, c);
  }
  return out;
}

}  // namespace

bool SiblingBusyDetector::applies(const std::vector<ResolvedIntent>& intents,
                                  const std::map<int, std::vector<int>>& siblings) {
  return std::ranges::any_of(
      intents, [&](const ResolvedIntent& r) { return !reserved_siblings(r, siblings).empty(); });
}

bool SiblingBusyDetector::due(uint64_t now_ns) const {
  return interval_due(last_ns_, now_ns, opts_.interval_ns);
}

std::vector<Finding> SiblingBusyDetector::held(const std::vector<ResolvedIntent>& intents) const {
  return still_tracked(last_, intents);
}

std::vector<Finding> SiblingBusyDetector::sample(const std::vector<ResolvedIntent>& intents,
                                                 const std::map<int, std::vector<int>>& siblings,
                                                 const std::map<int, CpuTimes>& cpus, uint64_t now_ns) {
  std::vector<Finding> out;
  const uint64_t dt = last_ns_ && now_ns > last_ns_ ? now_ns - last_ns_ : 0;
  for (const auto& r : intents) {
    if (dt == 0) break;
    for (const auto& [s, of] : reserved_siblings(r, siblings)) {
      auto before = cpus_.find(s);
      auto after = cpus.find(s);
      if (before == cpus_.end() || after == cpus.end()) continue;
      if (after->second.total_ns <= before->second.total_ns || after->second.idle_ns < before->second.idle_ns)
        continue;  // offline, or its counters went back
      const uint64_t total = after->second.total_ns - before->second.total_ns;
      const uint64_t idle = std::min(total, after->second.idle_ns - before->second.idle_ns);
      const uint64_t busy = total - idle;
      if (static_cast<double>(busy) < opts_.min_busy_share * static_cast<double>(total)) continue;
      out.push_back(
          Finding{.instance_id = r.instance_id,
                  .cls = ViolationClass::kThreadPolicy,
                  .cpus = {s},
                  .detail = fmt::format("thread_policy=isolate: sibling pCPU {} of {} busy {}% of the last "
                                        "{:.1f} s",
                                        s, of, percent(busy, total), static_cast<double>(dt) / 1e9)});
    }
  }
  cpus_ = cpus;
  last_ns_ = now_ns;
  last_ = out;
  return out;
}

}  // namespace hvtel::pinning
