#include "sched/pin_sync.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <set>

#include "base/util/files.h"
#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::sched {
namespace {

int on_ring_event(void* ctx, void* data, size_t size) {
  if (size < sizeof(hv_event)) return 0;
  static_cast<PinSync*>(ctx)->on_event(*static_cast<const hv_event*>(data));
  return 0;
}

}  // namespace

PinSync::PinSync(discovery::VcpuTracker& tracker, bpf::KernelVcpuMaps& maps,
                 pinning::PinningMonitor& monitor, PinSyncOptions opts)
    : tracker_(tracker), maps_(maps), monitor_(monitor), opts_(opts) {
  ncpu_ = std::min<int>(libbpf_num_possible_cpus(), HV_MAX_CPUS);
  if (ncpu_ < 0) ncpu_ = 0;
  foreign_seen_.resize(static_cast<size_t>(ncpu_));
  window_foreign_.assign(static_cast<size_t>(ncpu_), 0);
  owners_.assign(static_cast<size_t>(ncpu_), 0);
  if (maps_.events_fd() >= 0) {
    ring_ = ring_buffer__new(maps_.events_fd(), on_ring_event, this, nullptr);
    if (!ring_) log::warn("pinning", "ring buffer: {}", Error::sys(errno, "open").message);
  }
}

PinSync::~PinSync() {
  if (ring_) ring_buffer__free(ring_);
}

PinSync::TrackerView PinSync::read_tracker() const {
  TrackerView view;
  tracker_.read([&](const auto& instances, const auto&) {
    for (const auto& [pid, ti] : instances) {
      for (const auto& v : ti.vcpus) {
        view.slot_of[v.tid] = v.slot;
        view.live[v.slot] = {v.tid, ti.instance_id};
      }
      for (const auto& o : ti.others) {
        view.slot_of[o.tid] = o.slot;
        if (o.slot != HV_NO_SLOT) view.live[o.slot] = {o.tid, ti.instance_id};
      }
      view.instances.push_back(discovery::as_instance(pid, ti));
      view.number_of[pid] = ti.number;
      view.instance_ids[ti.number] = ti.instance_id;
    }
  });
  if (intent_source_) {
    // Intent and names from libvirt, joined on the VMM pid.
    for (auto& rich : intent_source_()) {
      for (auto& i : view.instances) {
        if (i.pid != rich.pid) continue;
        i.intent = rich.intent;
        i.nova = rich.nova;
        if (rich.vcpus > 0) i.vcpus = rich.vcpus;
      }
    }
  }
  return view;
}

void PinSync::tick() {
  TrackerView view = read_tracker();  // reconcile() fills in the inventory intent
  // PV10 and PV11 read where each vCPU last ran and how long it has waited to run, as
  // sched_switch recorded it. A wait still in progress counts up to now (bpf_ktime_get_ns is
  // CLOCK_MONOTONIC), so a vCPU that never gets the CPU back still shows its wait.
  const uint64_t now = pinning::monotonic_ns();
  auto vcpu_run = [&](pid_t tid) -> std::optional<pinning::VcpuRun> {
    auto slot = view.slot_of.find(tid);
    if (slot == view.slot_of.end()) return std::nullopt;
    const hv_sched* s = maps_.sched(slot->second);
    if (!s || s->switches == 0) return std::nullopt;  // not seen running since it took the slot
    uint64_t since = __atomic_load_n(&s->wakeup_ns, __ATOMIC_RELAXED);
    uint64_t wait = __atomic_load_n(&s->wait_ns, __ATOMIC_RELAXED);
    return pinning::VcpuRun{.cpu = static_cast<int>(s->cpu),
                            .wait_ns = wait + (since && now > since ? now - since : 0)};
  };
  const auto& intents = monitor_.reconcile(view.instances, vcpu_run);
  push_intent(view, intents);
  pull_counts(view);
  if (ring_) ring_buffer__consume(ring_);
  if (ticks_++ % 10 == 0) refresh_allowlist();
}

void PinSync::push_intent(const TrackerView& view,
                          const std::vector<pinning::ResolvedIntent>& intents) {
  instance_ids_ = view.instance_ids;
  const auto& slot_by_tid = view.slot_of;
  std::vector<uint32_t> owners(static_cast<size_t>(ncpu_), 0);
  std::set<pid_t> pinned;
  for (const auto& ri : intents) {
    bool dedicated = ri.policy == model::CpuPolicy::kDedicated;
    auto num = view.number_of.find(ri.pid);
    uint32_t number = num != view.number_of.end() ? num->second : 0;
    if (dedicated && number) {
      for (int c : ri.dedicated)
        if (c >= 0 && c < ncpu_) owners[static_cast<size_t>(c)] = number;
    }
    for (const auto& t : ri.threads) {
      auto it = slot_by_tid.find(t.tid);
      if (it == slot_by_tid.end() || t.allowed.empty()) continue;
      hv_sched* s = maps_.mutable_sched(it->second);
      if (!s) continue;
      uint64_t words[HV_CPU_WORDS] = {};
      for (int c : t.allowed)
        if (c >= 0 && c < HV_MAX_CPUS) words[c / 64] |= 1ULL << (c % 64);
      for (size_t w = 0; w < HV_CPU_WORDS; ++w) s->pin[w] = words[w];
      uint32_t flags = HV_THREAD_PINNED | (dedicated ? HV_THREAD_DEDICATED : 0);
      if (auto st = tracker_.set_thread_flags(t.tid, flags); !st)
        log::debug("pinning", "{}", st.error().message);
      pinned.insert(t.tid);
    }
  }
  // Threads without intent carry no flags.
  for (const auto& [tid, slot] : slot_by_tid)
    if (!pinned.count(tid)) {
      if (auto st = tracker_.set_thread_flags(tid, 0); !st) log::debug("pinning", "{}", st.error().message);
    }
  for (int c = 0; c < ncpu_; ++c) {
    if (hv_pcpu* pc = maps_.mutable_pcpu(static_cast<uint32_t>(c)))
      pc->owner_instance = owners[static_cast<size_t>(c)];
  }
  owners_ = std::move(owners);
}

void PinSync::pull_counts(const TrackerView& view) {
  auto registry = monitor_.registry();
  const auto& live = view.live;
  for (const auto& [slot, who] : live) {
    const hv_sched* s = maps_.sched(slot);
    if (!s) continue;
    Seen& seen = seen_[slot];
    if (seen.tid != who.first) seen = Seen{who.first, {}, {}};
    for (size_t c = 0; c < HV_PV_CLASSES; ++c) {
      uint64_t dc = s->pv_count[c] - seen.count[c], dn = s->pv_ns[c] - seen.ns[c];
      seen.count[c] = s->pv_count[c];
      seen.ns[c] = s->pv_ns[c];
      if (dc || dn) {
        if (auto cls = pinning::class_from_kernel(static_cast<uint32_t>(c)))
          registry->add_kernel_counts(who.second, *cls, dc, dn);
      }
    }
  }
  std::erase_if(seen_, [&](const auto& e) { return !live.count(e.first); });

  const uint64_t now = pinning::monotonic_ns();
  if (!window_start_ns_) window_start_ns_ = now;
  const bool window_done = now - window_start_ns_ >= opts_.intruder_window_ns;
  for (int c = 0; c < ncpu_; ++c) {
    hv_pcpu* pc = maps_.mutable_pcpu(static_cast<uint32_t>(c));
    if (!pc) break;
    auto& seen = foreign_seen_[static_cast<size_t>(c)];
    uint64_t total = 0;
    uint32_t owner = owners_[static_cast<size_t>(c)];
    auto id = instance_ids_.find(owner);
    for (size_t k = 0; k < HV_INTRUDERS; ++k) {
      uint64_t d = pc->foreign_ns[k] - seen[k];
      seen[k] = pc->foreign_ns[k];
      if (!d || !owner || id == instance_ids_.end()) continue;
      total += d;
      registry->add_foreign_ns(c, id->second, static_cast<pinning::IntruderKind>(k), d);
    }
    uint64_t& window = window_foreign_[static_cast<size_t>(c)];
    window += total;
    if (window_done) {
      if (window > opts_.intruder_threshold_ns && id != instance_ids_.end())
        registry->add_kernel_counts(id->second, pinning::ViolationClass::kIntruder, 1, window);
      window = 0;
    }
  }
  if (window_done) window_start_ns_ = now;
}

void PinSync::on_event(const hv_event& e) {
  if (e.type != HV_EVENT_PINNING) return;
  auto cls = pinning::class_from_kernel(e.pv_class);
  auto id = instance_ids_.find(e.instance);
  if (!cls || id == instance_ids_.end()) return;
  pinning::ViolationEvent ev;
  ev.time_ns = e.ts_ns;
  ev.kind = pinning::EventKind::kKernel;
  ev.instance_id = id->second;
  ev.cls = *cls;
  ev.vcpu = static_cast<int>(e.vcpu_index);
  ev.pcpu = static_cast<int>(e.cpu);
  ev.duration_ns = e.duration_ns;
  ev.intruder_pid = static_cast<pid_t>(e.other_pid);
  ev.intruder_comm.assign(e.other_comm, strnlen(e.other_comm, sizeof(e.other_comm)));
  ev.detail = "tid=" + std::to_string(e.tid);
  monitor_.registry()->publish(std::move(ev));
}

// libvirtd/virtqemud may set vCPU affinity (that is the orchestrator at work).
void PinSync::refresh_allowlist() {
  auto pids = list_dir("/proc");
  if (!pids) return;
  std::set<uint32_t> now;
  for (const auto& p : *pids) {
    auto pid = parse_u64(p);
    if (!pid) continue;
    auto comm = read_file("/proc/" + p + "/comm");
    if (!comm) continue;
    auto c = trim(*comm);
    if (c == "libvirtd" || c == "virtqemud") now.insert(static_cast<uint32_t>(*pid));
  }
  for (uint32_t t : now) {
    if (allowed_.count(t)) continue;
    // Not fatal: its affinity changes are then reported as pin_changed.
    if (auto st = maps_.allow_affinity_tgid(t); !st) log::warn("pinning", "{}", st.error().message);
  }
  // A gone daemon's pid may be reused by anything: stop trusting it.
  for (uint32_t t : allowed_) {
    if (now.count(t)) continue;
    if (auto st = maps_.disallow_affinity_tgid(t); !st) log::warn("pinning", "{}", st.error().message);
  }
  allowed_ = std::move(now);
}

}  // namespace hvtel::sched
