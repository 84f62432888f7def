#include "base/bpf/vcpu_maps.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "base/bpf/object.h"
#include "base/bpf/percpu.h"

namespace hvtel::bpf {

namespace {

// Address space for a whole slot array, backed by nothing until mapped(): no RSS, no commit charge.
void* reserve(size_t len) {
  return mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

// Maps [from, to) of a BPF array's values over the same range of its reservation at `base`.
bool map_range(void* base, int fd, size_t from, size_t to) {
  if (to <= from) return true;
  void* p = mmap(static_cast<char*>(base) + from, to - from, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                 fd, static_cast<off_t>(from));
  return p != MAP_FAILED;
}

}  // namespace

Result<std::unique_ptr<KernelVcpuMaps>> KernelVcpuMaps::attach(const BpfObject& obj) {
  std::unique_ptr<KernelVcpuMaps> m(new KernelVcpuMaps());
  auto fd_of = [&](const char* name) -> Result<int> {
    auto map = obj.map(name);
    if (!map) return fail(map.error());
    return bpf_map__fd(*map);
  };
  auto threads = fd_of("hv_threads");
  auto fresh = fd_of("hv_new_threads");
  auto freeq = fd_of("hv_free_slots");
  auto counters = fd_of("hv_counters");
  auto vcpu_map = obj.map("hv_vcpu");
  if (!threads || !fresh || !freeq || !counters || !vcpu_map)
    return fail("vcpu_exits object lacks a shared map");
  m->threads_fd_ = *threads;
  m->new_fd_ = *fresh;
  m->free_fd_ = *freeq;
  m->counters_fd_ = *counters;
  m->slots_ = bpf_map__max_entries(*vcpu_map);

  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  m->mmap_len_ = (sizeof(hv_vcpu) * m->slots_ + page - 1) / page * page;
  void* p = reserve(m->mmap_len_);
  if (p == MAP_FAILED) return fail_errno(errno, "reserve hv_vcpu");
  m->vcpus_ = static_cast<hv_vcpu*>(p);
  m->vcpu_fd_ = bpf_map__fd(*vcpu_map);

  auto control = obj.map("hv_control");
  if (!control) return fail(control.error());
  m->control_len_ = page;
  void* c = mmap(nullptr, m->control_len_, PROT_READ | PROT_WRITE, MAP_SHARED,
                 bpf_map__fd(*control), 0);
  if (c == MAP_FAILED) return fail_errno(errno, "mmap hv_control");
  m->control_ = static_cast<hv_control*>(c);

  // The .bss global hv_exit_vendor: mmap the map itself.
  // libbpf only remaps its own copy onto the map for skeleton loads, so
  // bpf_map__initial_value() is not the kernel's memory here.
  bpf_map* map;
  bpf_object__for_each_map(map, obj.get()) {
    std::string_view n = bpf_map__name(map);
    if (n.size() <= 4 || n.substr(n.size() - 4) != ".bss") continue;
    size_t len = (bpf_map__value_size(map) + page - 1) / page * page;
    void* b = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
    if (b == MAP_FAILED) return fail_errno(errno, "mmap " + std::string(n));
    m->bss_ = static_cast<char*>(b);
    m->bss_len_ = len;
    // Offsets of the globals come from the object's BTF datasec.
    const btf* bt = bpf_object__btf(obj.get());
    int sec = bt ? btf__find_by_name_kind(bt, ".bss", BTF_KIND_DATASEC) : -1;
    if (sec <= 0) return fail("vcpu_exits has no .bss BTF");
    const btf_type* t = btf__type_by_id(bt, static_cast<uint32_t>(sec));
    const btf_var_secinfo* vs = btf_var_secinfos(t);
    for (uint16_t i = 0; i < btf_vlen(t); ++i, ++vs) {
      std::string_view var = btf__name_by_offset(bt, btf__type_by_id(bt, vs->type)->name_off);
      if (var == "hv_exit_vendor")
        m->vendor_ = reinterpret_cast<const volatile uint32_t*>(m->bss_ + vs->offset);
    }
  }
  if (!m->vendor_) return fail("vcpu_exits .bss global hv_exit_vendor not found");
  // Pushed from the top, so slot 0 is taken first.
  for (uint32_t s = m->slots_; s-- > 0;) {
    if (bpf_map_update_elem(m->free_fd_, nullptr, &s, 0))
      return fail_errno(errno, "fill hv_free_slots");
  }
  return m;
}

void KernelVcpuMaps::set_vmm_timing(bool on) {
  __atomic_store_n(&control_->vmm_timing_off, on ? 0u : 1u, __ATOMIC_SEQ_CST);
}

void KernelVcpuMaps::set_switch_cache(bool on) {
  __atomic_store_n(&control_->switch_cache, on ? 1u : 0u, __ATOMIC_SEQ_CST);
}

KernelVcpuMaps::~KernelVcpuMaps() {
  if (vcpus_) munmap(vcpus_, mmap_len_);
  if (bss_) munmap(bss_, bss_len_);
  if (control_) munmap(control_, control_len_);
  if (pcpu_) munmap(pcpu_, pcpu_len_);
  if (sched_) munmap(sched_, sched_len_);
}

Status KernelVcpuMaps::attach_sched(const BpfObject& sched_obj) {
  auto m = sched_obj.map("hv_sched");
  if (!m) return fail(m.error());
  if (bpf_map__max_entries(*m) != slots_) return fail("hv_sched and hv_vcpu sizes differ");
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  sched_len_ = (sizeof(hv_sched) * slots_ + page - 1) / page * page;
  void* p = reserve(sched_len_);
  if (p == MAP_FAILED) return fail_errno(errno, "reserve hv_sched");
  {
    // Slots already in use get their hv_sched mapped now.
    std::lock_guard lock(map_mu_);
    sched_fd_ = bpf_map__fd(*m);
    sched_mapped_len_ = (sizeof(hv_sched) * mapped_.load() + page - 1) / page * page;
    if (!map_range(p, sched_fd_, 0, sched_mapped_len_)) {
      int err = errno;
      munmap(p, sched_len_);
      return fail_errno(err, "mmap hv_sched");
    }
    sched_ = static_cast<hv_sched*>(p);
  }

  auto pc = sched_obj.map("hv_pcpu");
  auto ev = sched_obj.map("hv_events");
  auto allow = sched_obj.map("hv_affinity_allow");
  if (!pc || !ev || !allow) return fail("vcpu_sched object lacks hv_pcpu/hv_events/hv_affinity_allow");
  pcpu_len_ = (sizeof(hv_pcpu) * HV_MAX_CPUS + page - 1) / page * page;
  p = mmap(nullptr, pcpu_len_, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(*pc), 0);
  if (p == MAP_FAILED) return fail_errno(errno, "mmap hv_pcpu");
  pcpu_ = static_cast<hv_pcpu*>(p);
  events_fd_ = bpf_map__fd(*ev);
  allow_fd_ = bpf_map__fd(*allow);
  return {};
}

Status KernelVcpuMaps::allow_affinity_tgid(uint32_t tgid) {
  uint8_t one = 1;
  if (allow_fd_ < 0) return fail("vcpu_sched not loaded");
  if (bpf_map_update_elem(allow_fd_, &tgid, &one, BPF_ANY))
    return fail_errno(errno, "update hv_affinity_allow");
  return {};
}

Status KernelVcpuMaps::disallow_affinity_tgid(uint32_t tgid) {
  if (allow_fd_ < 0) return fail("vcpu_sched not loaded");
  if (bpf_map_delete_elem(allow_fd_, &tgid) && errno != ENOENT)
    return fail_errno(errno, "delete hv_affinity_allow");
  return {};
}

uint32_t KernelVcpuMaps::alloc_slot() {
  uint32_t s = HV_NO_SLOT;
  if (bpf_map_lookup_and_delete_elem(free_fd_, nullptr, &s)) return HV_NO_SLOT;
  return s;
}

bool KernelVcpuMaps::mapped(uint32_t s) const {
  if (s < mapped_.load(std::memory_order_acquire)) return true;
  std::lock_guard lock(map_mu_);
  uint32_t have = mapped_.load(std::memory_order_relaxed);
  if (s < have) return true;
  // Grow by half again at least (64 slots at first), so a host filling up maps a few times, not per vCPU.
  uint32_t want = std::min(slots_, std::max({s + 1, have + have / 2, 64u}));
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto round = [page](size_t n) { return (n + page - 1) / page * page; };
  size_t vlen = std::min(mmap_len_, round(sizeof(hv_vcpu) * want));
  if (!map_range(vcpus_, vcpu_fd_, vcpus_mapped_len_, vlen)) return false;
  vcpus_mapped_len_ = vlen;
  if (sched_) {
    size_t slen = std::min(sched_len_, round(sizeof(hv_sched) * want));
    if (!map_range(sched_, sched_fd_, sched_mapped_len_, slen)) return false;
    sched_mapped_len_ = slen;
  }
  mapped_.store(want, std::memory_order_release);
  return true;
}

uint32_t KernelVcpuMaps::mapped_slots() const { return mapped_.load(std::memory_order_acquire); }

const hv_sched* KernelVcpuMaps::sched(uint32_t s) const {
  return s < slots_ && sched_ && mapped(s) ? &sched_[s] : nullptr;
}

const hv_vcpu* KernelVcpuMaps::slot(uint32_t s) const {
  return s < slots_ && mapped(s) ? &vcpus_[s] : nullptr;
}

Result<std::vector<NewThread>> KernelVcpuMaps::drain_new_threads() {
  std::vector<NewThread> out;
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  std::vector<uint32_t> keys;
  while (bpf_map_get_next_key(new_fd_, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  for (uint32_t tid : keys) {
    NewThread nt{tid, {}};
    if (bpf_map_lookup_elem(new_fd_, &tid, &nt.info) == 0) out.push_back(nt);
    bpf_map_delete_elem(new_fd_, &tid);
  }
  return out;
}

void KernelVcpuMaps::bump_gen() {
  __atomic_fetch_add(&control_->threads_gen, 1, __ATOMIC_SEQ_CST);
}

Status KernelVcpuMaps::set_thread(uint32_t tid, const hv_thread& t) {
  if (bpf_map_update_elem(threads_fd_, &tid, &t, BPF_ANY))
    return fail_errno(errno, "update hv_threads tid " + std::to_string(tid));
  bump_gen();  // the slot of a cached thread may have changed
  return {};
}

Status KernelVcpuMaps::delete_thread(uint32_t tid) {
  if (bpf_map_delete_elem(threads_fd_, &tid) && errno != ENOENT)
    return fail_errno(errno, "delete hv_threads tid " + std::to_string(tid));
  bump_gen();
  return {};
}

Status KernelVcpuMaps::free_slot(uint32_t s) {
  if (s >= slots_) return fail("free_slot: slot out of range");
  if (!mapped(s)) return fail_errno(errno, "mmap hv_vcpu slot " + std::to_string(s));
  std::memset(&vcpus_[s], 0, sizeof(hv_vcpu));
  if (sched_) std::memset(&sched_[s], 0, sizeof(hv_sched));
  if (bpf_map_update_elem(free_fd_, nullptr, &s, 0))
    return fail_errno(errno, "push hv_free_slots");
  return {};
}

uint32_t KernelVcpuMaps::vendor() const { return vendor_ ? *vendor_ : uint32_t{HV_VENDOR_UNKNOWN}; }

Result<std::array<uint64_t, HV_CNT_MAX>> KernelVcpuMaps::counters() const {
  std::array<uint64_t, HV_CNT_MAX> out{};
  if (auto st = sum_percpu_array(counters_fd_, out); !st) return fail(st.error().context("hv_counters"));
  return out;
}

}  // namespace hvtel::bpf
