#include "kvm/exit_trace.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <ctime>
#include <vector>

#include "base/bpf/object.h"
#include "base/bpf/percpu.h"
#include "base/util/strings.h"
#include "kvm/exit_reasons.h"
#include "trace_exits.skel.h"

namespace hvtel::kvm {

Result<hv_trace_config> to_kernel_config(const ExitTraceConfig& c) {
  if (c.rate > HV_TRACE_MAX_RATE)
    return fail(fmt::format("rate {} is over the limit of {} events/s per CPU", c.rate, HV_TRACE_MAX_RATE));
  if (c.rate && (c.burst < 1 || c.burst > HV_TRACE_MAX_BURST))
    return fail(fmt::format("burst {} is outside 1..{}", c.burst, HV_TRACE_MAX_BURST));
  if (c.vcpu < -1) return fail(fmt::format("vCPU index {} is negative", c.vcpu));
  if (c.tgid < 0) return fail(fmt::format("pid {} is negative", c.tgid));
  hv_trace_config k{};
  k.tgid = static_cast<uint32_t>(c.tgid);
  k.vcpu_idx = c.vcpu;
  k.min_latency_ns = c.min_latency_ns;
  k.rate = c.rate;
  k.burst = c.burst;
  k.only_user = c.only_user ? 1 : 0;
  return k;
}

ExitTraceCounts counts_from(std::span<const uint64_t> v) {
  ExitTraceCounts c;
  auto at = [&](size_t i) { return i < v.size() ? v[i] : 0; };
  c.emitted = at(HV_TRACE_CNT_EMITTED);
  c.rate_limited = at(HV_TRACE_CNT_RATE_LIMITED);
  c.ring_full = at(HV_TRACE_CNT_RING_FULL);
  c.untimed = at(HV_TRACE_CNT_INFLIGHT_FULL);
  return c;
}

Result<uint64_t> parse_duration_ns(std::string_view s) {
  const std::string_view orig = s;
  size_t num_end = 0;
  while (num_end < s.size() && ((s[num_end] >= '0' && s[num_end] <= '9') || s[num_end] == '.')) ++num_end;
  std::string_view num = s.substr(0, num_end), unit = s.substr(num_end);
  double scale = 0;
  if (unit.empty() || unit == "ns")
    scale = 1;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "s")
    scale = 1e9;
  if (num.empty() || scale == 0 || std::count(num.begin(), num.end(), '.') > 1)
    return fail(fmt::format("bad duration \"{}\": expected a number with ns, us, ms or s", orig));
  double v = std::strtod(std::string(num).c_str(), nullptr) * scale;
  if (!(v >= 0) || v > 1e18) return fail(fmt::format("duration \"{}\" is out of range", orig));
  return static_cast<uint64_t>(std::llround(v));
}

const discovery::VmmIdentity& ExitNamer::instance(pid_t tgid) {
  if (lookup_)
    if (auto id = lookup_(tgid)) return instances_[tgid] = std::move(*id);
  auto it = instances_.find(tgid);
  if (it != instances_.end()) return it->second;
  auto argv = proc_.cmdline(tgid);
  auto comm = proc_.comm(tgid);
  discovery::VmmIdentity id;
  if (argv || comm) {
    id = discovery::identity_from_cmdline(argv ? *argv : std::vector<std::string>{},
                                          comm ? *comm : std::string(), tgid);
  } else {
    // Gone before it was named (a short-lived VMM): the pid is all there is.
    id.instance_id = "pid-" + std::to_string(tgid);
    id.instance_name = id.instance_id;
  }
  return instances_.emplace(tgid, std::move(id)).first->second;
}

int ExitNamer::vcpu(pid_t tgid, pid_t tid, int32_t kernel_idx) {
  if (kernel_idx >= 0) return kernel_idx;
  auto it = vcpus_.find(tid);
  if (it != vcpus_.end()) return it->second;
  int v = -1;
  if (auto comm = proc_.thread_comm(tgid, tid))
    if (auto n = discovery::vcpu_index_from_comm(*comm)) v = *n;
  if (v < 0)
    if (auto n = proc_.vcpu_fd_index(tgid, tid)) v = *n;
  // Unknown is not cached: the thread may be named later, or be back in KVM_RUN.
  if (v >= 0) vcpus_[tid] = v;
  return v;
}

ExitRecord describe(const hv_trace_exit& e, ExitNamer& names) {
  ExitRecord r;
  r.ts_ns = e.ts_ns;
  r.latency_ns = e.latency_ns;
  r.pid = static_cast<pid_t>(e.tgid);
  r.tid = static_cast<pid_t>(e.tid);
  const auto& id = names.instance(r.pid);
  r.instance_id = id.instance_id;
  r.instance_name = id.instance_name;
  r.vcpu = names.vcpu(r.pid, r.tid, e.vcpu_idx);
  r.cpu = e.cpu;
  if (e.vendor != HV_VENDOR_UNKNOWN) {
    r.vendor = vendor_name(e.vendor);
    r.reason = exit_reason_name(e.vendor, e.reason_index);
  }
  if (e.end == HV_TRACE_END_USER) r.vmm_reason = userspace_exit_name(e.user_reason);
  return r;
}

bool passes_vcpu_filter(const ExitRecord& r, int vcpu) { return vcpu < 0 || r.vcpu == vcpu; }

namespace {

std::string wall_time(uint64_t ts_ns, int64_t offset_ns) {
  int64_t t = static_cast<int64_t>(ts_ns) + offset_ns;
  time_t secs = static_cast<time_t>(t / 1000000000);
  tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:02}:{:02}:{:02}.{:06}", tm.tm_hour, tm.tm_min, tm.tm_sec, (t % 1000000000) / 1000);
}

std::string latency_text(uint64_t ns) {
  if (ns == 0) return "-";
  if (ns < 10000) return fmt::format("{}ns", ns);
  if (ns < 10000000) return fmt::format("{:.1f}us", static_cast<double>(ns) / 1e3);
  return fmt::format("{:.1f}ms", static_cast<double>(ns) / 1e6);
}

}  // namespace

std::string format_exit_text(const ExitRecord& r) {
  std::string reason = r.reason.empty() ? "-" : r.reason;
  if (!r.vmm_reason.empty()) reason += " -> vmm " + r.vmm_reason;
  return fmt::format("{:<20} vcpu {:<3} {:<28} {}", r.instance_name,
                     r.vcpu < 0 ? std::string("?") : std::to_string(r.vcpu), reason,
                     latency_text(r.latency_ns));
}

std::string format_exit_line(const ExitRecord& r, int64_t wall_offset_ns) {
  return wall_time(r.ts_ns, wall_offset_ns) + " " + format_exit_text(r);
}

std::string exit_json(const ExitRecord& r, int64_t wall_offset_ns, uint64_t dropped) {
  nlohmann::ordered_json j;
  j["type"] = "exit";
  j["time_ns"] = static_cast<int64_t>(r.ts_ns) + wall_offset_ns;
  j["instance_id"] = r.instance_id;
  j["instance_name"] = r.instance_name;
  j["pid"] = r.pid;
  j["tid"] = r.tid;
  j["vcpu"] = r.vcpu;
  j["cpu"] = r.cpu;
  j["vendor"] = r.vendor.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.vendor);
  j["reason"] = r.reason.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.reason);
  j["vmm_reason"] =
      r.vmm_reason.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.vmm_reason);
  j["latency_ns"] = r.latency_ns;
  j["dropped"] = dropped;
  return j.dump();
}

std::string format_drop_line(const ExitTraceCounts& c, const ExitTraceConfig& cfg) {
  std::string limit = cfg.rate ? fmt::format("rate limit {}/s per CPU", cfg.rate) : "no rate limit";
  std::string line = fmt::format("# {} events, {} dropped ({}: {}, ring buffer full: {})", c.emitted,
                                 c.dropped(), limit, c.rate_limited, c.ring_full);
  if (c.untimed) line += fmt::format(", {} exits not timed (in-flight map full)", c.untimed);
  return line;
}

std::string drops_json(const ExitTraceCounts& c, std::string_view type) {
  nlohmann::ordered_json j;
  j["type"] = std::string(type);
  j["events"] = c.emitted;
  j["dropped"] = c.dropped();
  j["rate_limited"] = c.rate_limited;
  j["ring_full"] = c.ring_full;
  j["untimed"] = c.untimed;
  return j.dump();
}

Result<pid_t> find_vmm(const discovery::ProcFs& proc, const std::string& instance) {
  if (instance.empty()) return fail("no instance given");
  std::vector<pid_t> found;
  std::string candidates;
  const auto pid_arg = parse_u64(instance);
  for (pid_t pid : proc.processes()) {
    auto argv = proc.cmdline(pid);
    if (!argv || argv->empty()) continue;  // kernel threads, or gone
    auto comm = proc.comm(pid);
    auto id = discovery::identity_from_cmdline(*argv, comm ? *comm : std::string(), pid);
    bool has_name = false;
    for (const auto& a : *argv) has_name = has_name || a == "-name" || a == "--name";
    bool match = id.instance_id == instance || (pid_arg && static_cast<uint64_t>(pid) == *pid_arg) ||
                 (has_name && id.instance_name == instance);
    if (!match) continue;
    found.push_back(pid);
    candidates += fmt::format(" {} ({} {})", pid, id.instance_id, id.instance_name);
  }
  if (found.empty()) return fail(fmt::format("no running VMM is instance \"{}\"", instance));
  if (found.size() > 1)
    return fail(fmt::format("instance \"{}\" is ambiguous:{}; give its id or pid", instance, candidates));
  return found.front();
}

// ---- the BPF side --------------------------------------------------------------

struct ExitTracer::Impl {
  bpf::LoadedObject loaded;
  ring_buffer* ring = nullptr;
  int counters_fd = -1;
  const std::function<void(const hv_trace_exit&)>* on_event = nullptr;
  Impl(bpf::LoadedObject l) : loaded(std::move(l)) {}
  ~Impl() {
    if (ring) ring_buffer__free(ring);
  }
};

namespace {

bpf::Hook trace_hook(const char* tp, const char* btf, const char* raw) {
  return bpf::Hook{tp, "kvm", tp, {{bpf::AttachKind::kTpBtf, btf}, {bpf::AttachKind::kRawTp, raw}}};
}

int on_ring_sample(void* ctx, void* data, size_t size) {
  auto* impl = static_cast<ExitTracer::Impl*>(ctx);
  if (size < sizeof(hv_trace_exit) || !impl->on_event) return 0;
  hv_trace_exit e;
  std::memcpy(&e, data, sizeof(e));
  (*impl->on_event)(e);
  return 0;
}

}  // namespace

ExitTracer::ExitTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExitTracer::~ExitTracer() = default;

Result<std::unique_ptr<ExitTracer>> ExitTracer::start(const ExitTraceConfig& cfg) {
  auto kcfg = to_kernel_config(cfg);
  if (!kcfg) return fail(kcfg.error());
  bpf::ObjectSpec spec;
  spec.name = "trace_exits";
  spec.elf = trace_exits::elf_bytes(&spec.size);
  spec.hooks = {
      trace_hook("kvm_exit", "hv_trace_exit_btf", "hv_trace_exit_raw"),
      trace_hook("kvm_entry", "hv_trace_entry_btf", "hv_trace_entry_raw"),
      trace_hook("kvm_userspace_exit", "hv_trace_uexit_btf", "hv_trace_uexit_raw"),
  };
  const hv_trace_config k = *kcfg;
  spec.configure = [k](bpf::BpfObject& obj) -> Status {
    auto rodata = obj.map(".rodata");
    if (!rodata) return fail(rodata.error());
    size_t size = 0;
    const void* init = bpf_map__initial_value(*rodata, &size);
    // hv_trace_cfg is the only .rodata variable, so it sits at offset 0.
    if (!init || size != sizeof(k)) return fail("trace_exits: .rodata is not the filter alone");
    // libbpf 1.1 hands out .rodata read-only: copy, patch, set back.
    std::vector<char> data(static_cast<const char*>(init), static_cast<const char*>(init) + size);
    std::memcpy(data.data(), &k, sizeof(k));
    if (int err = bpf_map__set_initial_value(*rodata, data.data(), data.size()); err)
      return fail_errno(err, "trace_exits: set the filter");
    return {};
  };
  bpf::KernelBtf btf;
  auto loaded = bpf::load_object(spec, btf);
  if (!loaded) return fail(loaded.error().context("load trace_exits"));
  std::string summary;
  bool any = false;
  for (const auto& p : loaded->probes) {
    summary += fmt::format("{}{}={}", summary.empty() ? "" : " ", p.probe,
                           p.attached && p.attach ? bpf::attach_name(*p.attach) : "none");
    any = any || (p.attached && p.probe == "kvm_userspace_exit");
  }
  // Without kvm_userspace_exit no exit ends where the trace can see it (kvm_exit alone has no end).
  if (!any) return fail("trace_exits: kvm_userspace_exit could not be attached (" + summary + ")");
  auto impl = std::make_unique<Impl>(std::move(*loaded));
  auto ring_map = impl->loaded.object.map("hv_trace_ring");
  auto cnt_map = impl->loaded.object.map("hv_trace_counters");
  if (!ring_map) return fail(ring_map.error());
  if (!cnt_map) return fail(cnt_map.error());
  impl->counters_fd = bpf_map__fd(*cnt_map);
  impl->ring = ring_buffer__new(bpf_map__fd(*ring_map), on_ring_sample, impl.get(), nullptr);
  if (!impl->ring) return fail_errno(errno, "trace_exits: open the ring buffer");
  auto t = std::unique_ptr<ExitTracer>(new ExitTracer(std::move(impl)));
  t->attach_summary_ = std::move(summary);
  return t;
}

Status ExitTracer::poll(int timeout_ms, const std::function<void(const hv_trace_exit&)>& on_event) {
  impl_->on_event = &on_event;
  int n = ring_buffer__poll(impl_->ring, timeout_ms);
  impl_->on_event = nullptr;
  if (n < 0 && n != -EINTR) return fail_errno(-n, "trace_exits: poll the ring buffer");
  return {};
}

Result<ExitTraceCounts> ExitTracer::counts() const {
  std::array<uint64_t, HV_TRACE_CNT_MAX> v{};
  if (auto st = bpf::sum_percpu_array(impl_->counters_fd, v); !st)
    return fail(st.error().context("trace_exits counters"));
  return counts_from(v);
}

}  // namespace hvtel::kvm
