#include "pinning/violations.h"

#include <fmt/core.h>
#include <time.h>

#include <algorithm>
#include <utility>

#include "base/metrics/catalog.h"
#include "base/metrics/family.h"

namespace hvtel::pinning {
namespace {

constexpr uint64_t kNanoPerToken = 1'000'000'000ULL;

double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::string_view event_kind_name(EventKind k) {
  switch (k) {
    case EventKind::kKernel: return "kernel";
    case EventKind::kRaised: return "raised";
    case EventKind::kCleared: return "cleared";
  }
  return "unknown";
}

std::string format_event(const ViolationEvent& e) {
  std::string out = fmt::format("{}.{:06} {} {} {}", e.time_ns / 1'000'000'000ULL,
                                (e.time_ns % 1'000'000'000ULL) / 1000, event_kind_name(e.kind),
                                class_name(e.cls), e.instance_id);
  if (e.vcpu >= 0) out += fmt::format(" vcpu={}", e.vcpu);
  if (e.pcpu >= 0) out += fmt::format(" pcpu={}", e.pcpu);
  if (e.duration_ns > 0) out += fmt::format(" dur={}us", e.duration_ns / 1000);
  if (e.intruder_pid > 0 || !e.intruder_comm.empty()) {
    out += fmt::format(" intruder={}[{}]", e.intruder_comm, e.intruder_pid);
  }
  if (!e.detail.empty()) out += ": " + e.detail;
  return out;
}

ViolationRegistry::ViolationRegistry(RegistryOptions options)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : Clock(monotonic_ns)),
      ring_(options_.ring_capacity) {
  config_errors_[std::string(kSourceNovaConf)] = 0;
  config_errors_[std::string(kSourceInventory)] = 0;
}

void ViolationRegistry::reconcile(const std::vector<std::string>& tracked,
                                  const std::vector<Finding>& findings) {
  const uint64_t now = clock_();
  std::lock_guard lock(mu_);

  std::set<std::string, std::less<>> keep(tracked.begin(), tracked.end());
  for (auto it = instances_.begin(); it != instances_.end();) {
    it = keep.contains(it->first) ? std::next(it) : instances_.erase(it);
  }
  for (const auto& id : keep) {
    auto& inst = instances_[id];
    if (options_.zero_series)
      for (ViolationClass c : kAllClasses) inst.classes[c];  // zero series from the start
  }

  std::map<std::pair<std::string_view, ViolationClass>, std::vector<const Finding*>> now_active;
  for (const auto& f : findings) {
    if (!is_static_class(f.cls) || !keep.contains(f.instance_id)) continue;
    now_active[{f.instance_id, f.cls}].push_back(&f);
  }

  for (auto& [id, inst] : instances_) {
    for (ViolationClass c : kStaticClasses) {
      auto found = now_active.find({id, c});
      if (found == now_active.end() && !inst.classes.contains(c)) continue;  // never fired: no series
      KeyState& k = inst.classes[c];
      if (found == now_active.end()) {
        if (k.active) {
          ViolationEvent ev;
          ev.time_ns = now;
          ev.kind = EventKind::kCleared;
          ev.instance_id = id;
          ev.cls = c;
          ev.duration_ns = now - k.active_since_ns;
          ev.detail = "cleared";
          publish_locked(std::move(ev), now);
        }
        k.active = false;
        k.findings.clear();
        continue;
      }
      if (k.active) {
        k.ns += now - k.accounted_ns;
      } else {
        k.active = true;
        k.count += 1;
        k.active_since_ns = now;
      }
      k.accounted_ns = now;
      std::vector<Finding> current;
      for (const Finding* f : found->second) {
        bool known = std::find(k.findings.begin(), k.findings.end(), *f) != k.findings.end();
        if (!known) {
          ViolationEvent ev;
          ev.time_ns = now;
          ev.kind = EventKind::kRaised;
          ev.instance_id = id;
          ev.cls = c;
          ev.vcpu = f->vcpu;
          ev.pcpu = f->cpus.size() == 1 ? f->cpus[0] : -1;
          ev.detail = f->detail;
          publish_locked(std::move(ev), now);
        }
        current.push_back(*f);
      }
      k.findings = std::move(current);
    }
  }
}

bool ViolationRegistry::add_kernel_counts(std::string_view instance_id, ViolationClass cls,
                                          uint64_t count_delta, uint64_t ns_delta) {
  std::lock_guard lock(mu_);
  auto it = instances_.find(instance_id);
  if (it == instances_.end()) {
    ++orphan_updates_;
    return false;
  }
  KeyState& k = it->second.classes[cls];
  k.count += count_delta;
  k.ns += ns_delta;
  return true;
}

bool ViolationRegistry::add_foreign_ns(int cpu, std::string_view owner_instance_id,
                                       IntruderKind intruder, uint64_t ns) {
  std::lock_guard lock(mu_);
  auto it = instances_.find(owner_instance_id);
  if (it == instances_.end() || cpu < 0) {
    ++orphan_updates_;
    return false;
  }
  it->second.foreign_ns[{cpu, intruder}] += ns;
  return true;
}

bool ViolationRegistry::publish(ViolationEvent event) {
  const uint64_t now = clock_();
  bool ok = false;
  {
    std::lock_guard lock(mu_);
    ok = publish_locked(std::move(event), now);
  }
  return ok;
}

bool ViolationRegistry::take_token_locked(Bucket& b, uint64_t now) {
  const uint64_t cap = static_cast<uint64_t>(options_.event_burst) * kNanoPerToken;
  if (!b.primed) {
    b.nanotokens = cap;
    b.last_ns = now;
    b.primed = true;
  }
  const uint64_t elapsed = now > b.last_ns ? now - b.last_ns : 0;
  b.last_ns = std::max(b.last_ns, now);
  const uint64_t rate = options_.events_per_second;
  // Refill in whole nanotokens; cap the product to avoid overflow after long idles.
  if (rate > 0) {
    if (elapsed >= cap / rate) {
      b.nanotokens = cap;
    } else {
      b.nanotokens = std::min(cap, b.nanotokens + elapsed * rate);
    }
  }
  if (b.nanotokens < kNanoPerToken) return false;
  b.nanotokens -= kNanoPerToken;
  return true;
}

bool ViolationRegistry::publish_locked(ViolationEvent event, uint64_t now) {
  auto it = instances_.find(event.instance_id);
  if (it == instances_.end()) {
    ++orphan_updates_;
    return false;
  }
  if (!take_token_locked(it->second.classes[event.cls].bucket, now)) {
    ++events_dropped_;
    return false;
  }
  if (event.time_ns == 0) event.time_ns = now;
  ring_.push(std::move(event));
  cv_.notify_all();
  return true;
}

EventBatch ViolationRegistry::collect_events_locked(uint64_t since, size_t max) const {
  auto slice = ring_.after(since, max);
  EventBatch batch;
  batch.events = std::move(slice.items);
  batch.cursor = slice.cursor;
  batch.missed = slice.missed;
  return batch;
}

EventBatch ViolationRegistry::events_since(uint64_t since, size_t max) const {
  std::lock_guard lock(mu_);
  return collect_events_locked(since, max);
}

EventBatch ViolationRegistry::wait_events_since(uint64_t since, std::chrono::milliseconds timeout,
                                                size_t max) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return ring_.last_seq() > since; });
  return collect_events_locked(since, max);
}

uint64_t ViolationRegistry::last_seq() const {
  std::lock_guard lock(mu_);
  return ring_.last_seq();
}

void ViolationRegistry::note_config_error(std::string_view source) {
  std::lock_guard lock(mu_);
  auto it = config_errors_.find(source);
  if (it == config_errors_.end()) it = config_errors_.emplace(std::string(source), 0).first;
  ++it->second;
}

std::optional<ViolationRegistry::Counters> ViolationRegistry::counters(std::string_view instance_id,
                                                                       ViolationClass cls) const {
  std::lock_guard lock(mu_);
  auto it = instances_.find(instance_id);
  if (it == instances_.end()) return std::nullopt;
  auto k = it->second.classes.find(cls);
  if (k == it->second.classes.end()) return Counters{};
  return Counters{k->second.count, k->second.ns, k->second.active};
}

std::vector<Finding> ViolationRegistry::active_findings() const {
  std::lock_guard lock(mu_);
  std::vector<Finding> out;
  for (const auto& [id, inst] : instances_) {
    for (const auto& [c, k] : inst.classes) {
      if (k.active) out.insert(out.end(), k.findings.begin(), k.findings.end());
    }
  }
  return out;
}

uint64_t ViolationRegistry::events_dropped() const {
  std::lock_guard lock(mu_);
  return events_dropped_;
}

uint64_t ViolationRegistry::orphan_updates() const {
  std::lock_guard lock(mu_);
  return orphan_updates_;
}

std::vector<prometheus::MetricFamily> ViolationRegistry::Collect() const {
  namespace catalog = metrics::catalog;
  using metrics::FamilyBuilder;
  FamilyBuilder total(catalog::kPinningViolations);
  FamilyBuilder secs(catalog::kPinningViolationSeconds);
  FamilyBuilder active(catalog::kPinningViolationActive);
  FamilyBuilder foreign(catalog::kPcpuForeignSeconds);
  FamilyBuilder dropped(catalog::kPinningEventsDropped);
  FamilyBuilder orphans(catalog::kPinningOrphanUpdates);
  FamilyBuilder config(catalog::kPinningConfigErrors);

  std::lock_guard lock(mu_);
  for (const auto& [id, inst] : instances_) {
    for (const auto& [c, k] : inst.classes) {
      const metrics::Labels labels = {{"instance_id", id}, {"class", std::string(class_name(c))}};
      total.add(labels, static_cast<double>(k.count));
      secs.add(labels, seconds(k.ns));
      if (is_static_class(c)) active.add(labels, k.active ? 1.0 : 0.0);
    }
    for (const auto& [key, ns] : inst.foreign_ns) {
      foreign.add({{"cpu", std::to_string(key.first)},
                   {"owner_instance_id", id},
                   {"intruder", std::string(intruder_name(key.second))}},
                  seconds(ns));
    }
  }
  dropped.add({}, static_cast<double>(events_dropped_));
  orphans.add({}, static_cast<double>(orphan_updates_));
  for (const auto& [source, n] : config_errors_) config.add({{"source", source}}, static_cast<double>(n));

  return metrics::take_all({&total, &secs, &active, &foreign, &dropped, &orphans, &config});
}

}  // namespace hvtel::pinning
