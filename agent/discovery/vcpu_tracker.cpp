#include "discovery/vcpu_tracker.h"

#include <algorithm>

#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::discovery {

void accumulate(hv_vcpu& dst, const hv_vcpu& src) {
  for (size_t i = 0; i < HV_EXIT_REASON_SLOTS; ++i) dst.exits[i] += src.exits[i];
  for (size_t i = 0; i < HV_USER_EXIT_SLOTS; ++i) dst.user_exits[i] += src.user_exits[i];
  for (size_t c = 0; c < HV_EXIT_CLASSES; ++c) {
    for (size_t s = 0; s < HV_HIST_SLOTS; ++s) dst.handle_hist[c][s] += src.handle_hist[c][s];
    dst.handle_sum_ns[c] += src.handle_sum_ns[c];
  }
  for (size_t s = 0; s < HV_HIST_SLOTS; ++s) dst.vmm_hist[s] += src.vmm_hist[s];
  dst.vmm_sum_ns += src.vmm_sum_ns;
}

void accumulate(hv_sched& dst, const hv_sched& src) {
  dst.run_ns += src.run_ns;
  dst.wait_ns += src.wait_ns;
  dst.preemptions += src.preemptions;
  dst.migrations += src.migrations;
  dst.switches += src.switches;
  for (size_t s = 0; s < HV_HIST_SLOTS; ++s) dst.rq_hist[s] += src.rq_hist[s];
  dst.rq_sum_ns += src.rq_sum_ns;
  for (size_t c = 0; c < HV_PV_CLASSES; ++c) {
    dst.pv_count[c] += src.pv_count[c];
    dst.pv_ns[c] += src.pv_ns[c];
  }
}

VcpuTracker::VcpuTracker(bpf::VcpuMaps& maps, const ProcFs& proc) : maps_(maps), proc_(proc) {}

void VcpuTracker::set_identity_lookup(IdentityLookup f) {
  std::lock_guard lock(mu_);
  identity_ = std::move(f);
  for (auto& [_, inst] : instances_) refresh_identity(inst);
}

void VcpuTracker::set_known_vmms(KnownVmms f) {
  std::lock_guard lock(mu_);
  known_ = std::move(f);
}

void VcpuTracker::refresh_identity(TrackedInstance& inst) {
  if (identity_) {
    if (auto rich = identity_(inst.pid)) {
      inst.instance_id = rich->instance_id;
      inst.instance_name = rich->instance_name;
      inst.source = rich->source;
      return;
    }
  }
  auto argv = proc_.cmdline(inst.pid);
  auto comm = proc_.comm(inst.pid);
  auto id = identity_from_cmdline(argv ? *argv : std::vector<std::string>{},
                                  comm ? *comm : std::string(), inst.pid);
  inst.instance_id = id.instance_id;
  inst.instance_name = id.instance_name;
  inst.source = model::Source::kProcfs;
}

TrackedInstance* VcpuTracker::instance_for(pid_t tgid) {
  if (auto it = instances_.find(tgid); it != instances_.end()) return &it->second;
  auto start = proc_.start_time(tgid);
  if (!start) return nullptr;  // the process is already gone
  TrackedInstance inst;
  inst.number = next_number_++;
  inst.pid = tgid;
  inst.start_time = *start;
  refresh_identity(inst);
  log::info("discovery", "instance {} ({}) pid {}", inst.instance_id, inst.instance_name, tgid);
  TrackedInstance* out = &instances_.emplace(tgid, std::move(inst)).first->second;
  register_others(*out);
  return out;
}

// The emulator is the main thread; QEMU names I/O threads "IO <id>".
void VcpuTracker::register_others(TrackedInstance& inst) {
  for (pid_t tid : proc_.threads(inst.pid)) {
    TrackedThread t{tid, HV_NO_SLOT, HV_ROLE_EMULATOR, -1};
    if (tid != inst.pid) {
      auto comm = proc_.thread_comm(inst.pid, tid);
      if (!comm || !starts_with(*comm, "IO ")) continue;
      t.role = HV_ROLE_IOTHREAD;
      std::string_view rest = std::string_view(*comm).substr(3);
      if (starts_with(rest, "iothread")) rest.remove_prefix(8);
      if (auto n = parse_u64(rest)) t.index = static_cast<int>(*n);
    }
    slot_other(inst, t);
  }
}

// A free slot for a thread the agent registers itself (emulator, I/O, TCG
// vCPU), entered in hv_threads as `t`. HV_NO_SLOT when none is free.
Result<uint32_t> VcpuTracker::take_slot(uint32_t tid, hv_thread t) {
  t.slot = maps_.alloc_slot();
  if (t.slot == HV_NO_SLOT) return HV_NO_SLOT;
  if (auto st = maps_.set_thread(tid, t); !st) {
    if (auto freed = maps_.free_slot(t.slot); !freed) {
      ++stats_.errors;
      log::warn("discovery", "{}", freed.error().message);
    }
    return fail(st.error());
  }
  return t.slot;
}

// Gives an emulator or I/O thread a slot, else lists it as waiting for one.
// False only when no slot was free.
bool VcpuTracker::slot_other(TrackedInstance& inst, TrackedThread t) {
  hv_thread ht{};
  ht.role = t.role;
  ht.tgid = static_cast<uint32_t>(inst.pid);
  ht.instance = inst.number;
  auto slot = take_slot(static_cast<uint32_t>(t.tid), ht);
  if (!slot) {
    ++stats_.errors;
    log::warn("discovery", "{}", slot.error().message);
    return true;
  }
  if (*slot == HV_NO_SLOT) {
    wait_for_slot(inst, {t.tid, t.role, t.index});
    return false;
  }
  t.slot = *slot;
  std::erase_if(inst.waiting, [&](const WaitingThread& w) { return w.tid == t.tid; });
  inst.others.push_back(t);
  return true;
}

// Counted once per wait, however many polls it lasts.
void VcpuTracker::wait_for_slot(TrackedInstance& inst, const WaitingThread& w) {
  if (std::any_of(inst.waiting.begin(), inst.waiting.end(),
                  [&](const WaitingThread& o) { return o.tid == w.tid; }))
    return;
  inst.waiting.push_back(w);
  ++stats_.no_slot;
  log::warn("discovery", "no free slot (--max-vcpus {}) for thread {} of {}: waiting for one",
            maps_.slot_count(), w.tid, inst.instance_id);
}

Status VcpuTracker::set_thread_flags(pid_t tid, uint32_t flags) {
  std::lock_guard lock(mu_);
  if (flags_.count(tid) && flags_[tid] == flags) return {};
  for (auto& [_, inst] : instances_) {
    hv_thread ht{};
    ht.tgid = static_cast<uint32_t>(inst.pid);
    ht.instance = inst.number;
    ht.flags = flags;
    bool found = false;
    for (const auto& v : inst.vcpus) {
      if (v.tid != tid) continue;
      ht.slot = v.slot;
      ht.role = HV_ROLE_VCPU;
      ht.vcpu_index = v.index >= 0 ? static_cast<uint32_t>(v.index) : 0;
      found = true;
    }
    for (const auto& o : inst.others) {
      if (o.tid != tid) continue;
      ht.slot = o.slot;
      ht.role = o.role;
      found = true;
    }
    if (!found) continue;
    if (auto st = maps_.set_thread(static_cast<uint32_t>(tid), ht); !st) return st;
    flags_[tid] = flags;
    return {};
  }
  return fail("thread " + std::to_string(tid) + " is not tracked");
}

void VcpuTracker::refresh_identities() {
  std::lock_guard lock(mu_);
  for (auto& [_, inst] : instances_) refresh_identity(inst);
}

namespace {

// The hv_threads entry of a named vCPU thread (kernel- or agent-allocated slot).
hv_thread vcpu_thread(const TrackedInstance& inst, const TrackedVcpu& v) {
  hv_thread t{};
  t.slot = v.slot;
  t.role = HV_ROLE_VCPU;
  t.tgid = static_cast<uint32_t>(inst.pid);
  t.instance = inst.number;
  t.vcpu_index = v.index >= 0 ? static_cast<uint32_t>(v.index) : 0;
  return t;
}

}  // namespace

// A KVM vCPU thread the BPF side found no free slot for. Its instance is
// listed all the same; once this report is drained, the thread's next KVM
// event pops a slot if one is free and reports it again, so the agent only
// keeps it waiting (an agent-side slot would race with that one).
void VcpuTracker::add_waiting_vcpu(uint32_t tid, const hv_new_thread& nt) {
  pid_t tgid = static_cast<pid_t>(nt.tgid);
  TrackedInstance* inst = instance_for(tgid);
  if (!inst || !proc_.thread_alive(tgid, static_cast<pid_t>(tid))) {
    ++stats_.vanished;
    return;
  }
  WaitingThread w{static_cast<pid_t>(tid), HV_ROLE_VCPU, nt.vcpu_idx};
  if (auto comm = proc_.thread_comm(tgid, static_cast<pid_t>(tid))) {
    if (auto idx = vcpu_index_from_comm(*comm)) w.index = *idx;
  }
  wait_for_slot(*inst, w);
}

void VcpuTracker::add_vcpu(uint32_t tid, const hv_new_thread& nt) {
  pid_t tgid = static_cast<pid_t>(nt.tgid);
  TrackedInstance* inst = instance_for(tgid);
  if (!inst || !proc_.thread_alive(tgid, static_cast<pid_t>(tid))) {
    ++stats_.vanished;
    TrackedVcpu gone{static_cast<pid_t>(tid), nt.slot, -1, nt.vcpu_id};
    release(gone, inst);
    return;
  }
  TrackedVcpu v{static_cast<pid_t>(tid), nt.slot, -1, nt.vcpu_id};
  // vCPU index: QEMU's thread name, else the kernel's vcpu_idx, else the
  // kvm-vcpu fd the thread is running KVM_RUN on.
  if (auto comm = proc_.thread_comm(tgid, static_cast<pid_t>(tid))) {
    if (auto idx = vcpu_index_from_comm(*comm)) v.index = *idx;
  }
  if (v.index < 0 && nt.vcpu_idx >= 0) v.index = nt.vcpu_idx;
  if (v.index < 0) {
    if (auto idx = proc_.vcpu_fd_index(tgid, static_cast<pid_t>(tid))) v.index = *idx;
  }
  if (auto st = maps_.set_thread(tid, vcpu_thread(*inst, v)); !st) {
    ++stats_.errors;
    log::warn("discovery", "{}", st.error().message);
  }
  std::erase_if(inst->waiting, [&](const WaitingThread& w) { return w.tid == v.tid; });
  inst->vcpus.push_back(v);
  ++stats_.threads_named;
  log::debug("discovery", "vcpu {} of {}: tid {} slot {}", v.index, inst->instance_id, tid, v.slot);
}

void VcpuTracker::adopt_tcg_vcpus(const std::vector<model::Instance>& known) {
  for (const auto& k : known) {
    if (k.pid <= 0) continue;
    auto it = instances_.find(k.pid);
    for (const auto& t : k.vcpu_threads) {
      if (it != instances_.end() &&
          std::any_of(it->second.vcpus.begin(), it->second.vcpus.end(),
                      [&](const TrackedVcpu& v) { return v.tid == t.tid; }))
        continue;
      auto comm = proc_.thread_comm(k.pid, t.tid);
      if (!comm || !is_tcg_vcpu_comm(*comm)) continue;
      TrackedInstance* inst = instance_for(k.pid);
      if (!inst) break;  // the VMM is gone
      it = instances_.find(k.pid);
      if (!inst->tcg)
        log::info("discovery", "instance {} runs under TCG: scheduling and pinning only, no VM exits",
                  inst->instance_id);
      inst->tcg = true;
      // Without a free slot it waits, taken again here on every poll.
      TrackedVcpu v{t.tid, HV_NO_SLOT, t.index, -1};
      auto slot = take_slot(static_cast<uint32_t>(t.tid), vcpu_thread(*inst, v));
      if (!slot) {
        ++stats_.errors;
        log::warn("discovery", "{}", slot.error().message);
        continue;
      }
      if (*slot == HV_NO_SLOT) {
        wait_for_slot(*inst, {t.tid, HV_ROLE_VCPU, t.index});
        continue;
      }
      v.slot = *slot;
      std::erase_if(inst->waiting, [&](const WaitingThread& w) { return w.tid == v.tid; });
      inst->vcpus.push_back(v);
      ++stats_.threads_named;
    }
  }
}

void VcpuTracker::release(const TrackedVcpu& v, TrackedInstance* fold_into) {
  if (auto st = maps_.delete_thread(static_cast<uint32_t>(v.tid)); !st) ++stats_.errors;
  flags_.erase(v.tid);
  if (v.slot == HV_NO_SLOT) return;
  if (fold_into) {
    if (const hv_vcpu* s = maps_.slot(v.slot)) accumulate(fold_into->retired[v.index], *s);
    if (const hv_sched* s = maps_.sched(v.slot)) accumulate(fold_into->retired_sched[v.index], *s);
  }
  if (auto st = maps_.free_slot(v.slot); !st) {
    ++stats_.errors;
    log::warn("discovery", "{}", st.error().message);
  }
}

void VcpuTracker::retire_gone() {
  for (auto it = instances_.begin(); it != instances_.end();) {
    TrackedInstance& inst = it->second;
    auto start = proc_.start_time(inst.pid);
    auto release_other = [&](const TrackedThread& o) {
      if (auto st = maps_.delete_thread(static_cast<uint32_t>(o.tid)); !st) ++stats_.errors;
      flags_.erase(o.tid);
      if (auto st = maps_.free_slot(o.slot); !st) {
        ++stats_.errors;
        log::warn("discovery", "{}", st.error().message);
      }
    };
    if (!start || *start != inst.start_time) {
      for (const auto& v : inst.vcpus) release(v, nullptr);
      for (const auto& o : inst.others) release_other(o);
      stats_.threads_retired += inst.vcpus.size();
      log::info("discovery", "instance {} pid {} exited", inst.instance_id, inst.pid);
      it = instances_.erase(it);
      continue;
    }
    std::erase_if(inst.vcpus, [&](const TrackedVcpu& v) {
      if (proc_.thread_alive(inst.pid, v.tid)) return false;
      release(v, &inst);
      ++stats_.threads_retired;
      return true;
    });
    std::erase_if(inst.others, [&](const TrackedThread& o) {
      if (proc_.thread_alive(inst.pid, o.tid)) return false;
      release_other(o);
      return true;
    });
    std::erase_if(inst.waiting,
                  [&](const WaitingThread& w) { return !proc_.thread_alive(inst.pid, w.tid); });
    ++it;
  }
}

// Emulator and I/O threads take the slots freed since the last poll. Run
// before retire_gone(): the slots it frees now go to KVM vCPU threads first,
// whose next event takes one, until the next poll.
void VcpuTracker::retry_waiting() {
  for (auto& [_, inst] : instances_) {
    const std::vector<WaitingThread> waiting = inst.waiting;  // slot_other edits the list
    for (const auto& w : waiting) {
      if (w.role == HV_ROLE_VCPU) continue;  // the BPF side or adopt_tcg_vcpus() retries these
      if (!slot_other(inst, {w.tid, HV_NO_SLOT, w.role, w.index})) return;  // none left
    }
  }
}

void VcpuTracker::poll() {
  auto fresh = maps_.drain_new_threads();
  KnownVmms known;
  {
    std::lock_guard lock(mu_);
    known = known_;
  }
  // Outside the lock: the source may call back into the tracker.
  const std::vector<model::Instance> vmms = known ? known() : std::vector<model::Instance>{};
  std::lock_guard lock(mu_);
  if (!fresh) {
    ++stats_.errors;
    log::warn("discovery", "{}", fresh.error().message);
  } else {
    for (const auto& nt : *fresh) {
      if (nt.info.slot == HV_NO_SLOT)
        add_waiting_vcpu(nt.tid, nt.info);
      else
        add_vcpu(nt.tid, nt.info);
    }
  }
  adopt_tcg_vcpus(vmms);
  retry_waiting();
  retire_gone();
}

model::Instance as_instance(pid_t pid, const TrackedInstance& ti) {
  model::Instance i;
  i.instance_id = ti.instance_id;
  i.instance_name = ti.instance_name;
  i.source = ti.source;
  i.pid = pid;
  for (const auto& v : ti.vcpus) i.vcpu_threads.push_back({v.tid, v.index});
  for (const auto& o : ti.others) {
    if (o.role == HV_ROLE_IOTHREAD)
      i.iothreads.push_back({o.tid, o.index});
    else
      i.emulator_threads.push_back({o.tid, -1});
  }
  i.vcpus = static_cast<int>(ti.vcpus.size());
  return i;
}

}  // namespace hvtel::discovery
