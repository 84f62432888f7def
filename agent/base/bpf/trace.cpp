#include "base/bpf/trace.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <vector>

#include "base/bpf/percpu.h"

namespace hvtel::bpf {

Result<hv_trace_config> to_kernel_config(const TraceConfig& c) {
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
  k.filter_map = c.filter_map ? 1 : 0;
  return k;
}

TraceCounts counts_from(std::span<const uint64_t> v) {
  TraceCounts c;
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

std::string trace_json(std::string_view type, uint64_t ts_ns, int64_t offset_ns,
                       const nlohmann::ordered_json& fields) {
  nlohmann::ordered_json j;
  j["type"] = type;
  j["time_ns"] = static_cast<int64_t>(ts_ns) + offset_ns;
  j.update(fields);
  return j.dump();
}

std::string format_wall_time(uint64_t ts_ns, int64_t offset_ns) {
  int64_t t = static_cast<int64_t>(ts_ns) + offset_ns;
  time_t secs = static_cast<time_t>(t / 1000000000);
  tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:02}:{:02}:{:02}.{:06}", tm.tm_hour, tm.tm_min, tm.tm_sec, (t % 1000000000) / 1000);
}

std::string format_latency(uint64_t ns) {
  if (ns == 0) return "-";
  if (ns < 10000) return fmt::format("{}ns", ns);
  if (ns < 10000000) return fmt::format("{:.1f}us", static_cast<double>(ns) / 1e3);
  return fmt::format("{:.1f}ms", static_cast<double>(ns) / 1e6);
}

std::string format_drop_line(const TraceCounts& c, const TraceConfig& cfg, std::string_view untimed_what) {
  std::string limit = cfg.rate ? fmt::format("rate limit {}/s per CPU", cfg.rate) : "no rate limit";
  std::string line = fmt::format("# {} events, {} dropped ({}: {}, ring buffer full: {})", c.emitted,
                                 c.dropped(), limit, c.rate_limited, c.ring_full);
  if (c.untimed) line += fmt::format(", {} {}", c.untimed, untimed_what);
  return line;
}

std::string drops_json(const TraceCounts& c, std::string_view type) {
  nlohmann::ordered_json j;
  j["type"] = std::string(type);
  j["events"] = c.emitted;
  j["dropped"] = c.dropped();
  j["rate_limited"] = c.rate_limited;
  j["ring_full"] = c.ring_full;
  j["untimed"] = c.untimed;
  return j.dump();
}

std::string rate_text(const TraceConfig& cfg) {
  return cfg.rate ? fmt::format("at most {}/s per CPU, burst {}", cfg.rate, cfg.burst)
                  : std::string("no rate limit");
}

// ---- the BPF side --------------------------------------------------------------

Hook trace_hook(const char* system, const char* tp, const char* btf_prog, const char* raw_prog) {
  return Hook{tp, system, tp, {{AttachKind::kTpBtf, btf_prog}, {AttachKind::kRawTp, raw_prog}}};
}

struct TraceObject::Impl {
  LoadedObject loaded;
  ring_buffer* ring = nullptr;
  int counters_fd = -1;
  size_t record_size = 0;
  const std::function<void(const void*)>* on_record = nullptr;
  explicit Impl(LoadedObject l) : loaded(std::move(l)) {}
  ~Impl() {
    if (ring) ring_buffer__free(ring);
  }
};

namespace {

int on_ring_sample(void* ctx, void* data, size_t size) {
  auto* impl = static_cast<TraceObject::Impl*>(ctx);
  if (size < impl->record_size || !impl->on_record) return 0;
  (*impl->on_record)(data);
  return 0;
}

}  // namespace

TraceObject::TraceObject(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TraceObject::~TraceObject() = default;

const BpfObject& TraceObject::object() const { return impl_->loaded.object; }

Result<std::unique_ptr<TraceObject>> TraceObject::start(ObjectSpec spec, const TraceConfig& cfg,
                                                        size_t record_size, std::string_view required) {
  auto kcfg = to_kernel_config(cfg);
  if (!kcfg) return fail(kcfg.error());
  const hv_trace_config k = *kcfg;
  const std::string name = spec.name;
  spec.configure = [k, name, next = std::move(spec.configure)](BpfObject& obj) -> Status {
    auto rodata = obj.map(".rodata");
    if (!rodata) return fail(rodata.error());
    size_t size = 0;
    const void* init = bpf_map__initial_value(*rodata, &size);
    // hv_trace_cfg is the only .rodata variable, so it sits at offset 0.
    if (!init || size != sizeof(k)) return fail(name + ": .rodata is not the filter alone");
    // libbpf 1.1 hands out .rodata read-only: copy, patch, set back.
    std::vector<char> data(static_cast<const char*>(init), static_cast<const char*>(init) + size);
    std::memcpy(data.data(), &k, sizeof(k));
    if (int err = bpf_map__set_initial_value(*rodata, data.data(), data.size()); err)
      return fail_errno(err, name + ": set the filter");
    return next ? next(obj) : Status{};
  };
  KernelBtf btf;
  auto loaded = load_object(spec, btf);
  if (!loaded) return fail(loaded.error().context("load " + name));
  std::string summary;
  bool have_required = false;
  for (const auto& p : loaded->probes) {
    summary += fmt::format("{}{}={}", summary.empty() ? "" : " ", p.probe,
                           p.attached && p.attach ? attach_name(*p.attach) : "none");
    have_required = have_required || (p.attached && p.probe == required);
  }
  if (!have_required) return fail(fmt::format("{}: {} could not be attached ({})", name, required, summary));
  auto impl = std::make_unique<Impl>(std::move(*loaded));
  impl->record_size = record_size;
  auto ring_map = impl->loaded.object.map("hv_trace_ring");
  auto cnt_map = impl->loaded.object.map("hv_trace_counters");
  if (!ring_map) return fail(ring_map.error());
  if (!cnt_map) return fail(cnt_map.error());
  impl->counters_fd = bpf_map__fd(*cnt_map);
  impl->ring = ring_buffer__new(bpf_map__fd(*ring_map), on_ring_sample, impl.get(), nullptr);
  if (!impl->ring) return fail_errno(errno, name + ": open the ring buffer");
  auto t = std::unique_ptr<TraceObject>(new TraceObject(std::move(impl)));
  t->attach_summary_ = std::move(summary);
  return t;
}

Status TraceObject::poll(int timeout_ms, const std::function<void(const void*)>& on_record) {
  impl_->on_record = &on_record;
  int n = ring_buffer__poll(impl_->ring, timeout_ms);
  impl_->on_record = nullptr;
  if (n < 0 && n != -EINTR) return fail_errno(-n, impl_->loaded.object.name() + ": poll the ring buffer");
  return {};
}

Result<TraceCounts> TraceObject::counts() const {
  std::array<uint64_t, HV_TRACE_CNT_MAX> v{};
  if (auto st = sum_percpu_array(impl_->counters_fd, v); !st)
    return fail(st.error().context(impl_->loaded.object.name() + " counters"));
  return counts_from(v);
}

}  // namespace hvtel::bpf
