// What every on-demand trace object (`hvtel trace exits`, `hvtel trace runq`)
// shares: the kernel-side filter and rate limit (struct hv_trace_config), the
// object's lifecycle (loaded and attached by start(), detached and unloaded on
// destruction), its ring buffer and drop counters, and the formatting of
// times, latencies and drop reports. Each trace adds its hooks, its record
// and what names it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/bpf/object.h"
#include "base/util/result.h"
#include "hvtel/abi.h"

namespace hvtel::bpf {

struct TraceConfig {
  pid_t tgid = 0;  // VMM process; 0: every VMM
  int vcpu = -1;   // vCPU index; -1: every vCPU
  uint64_t min_latency_ns = 0;
  uint64_t rate = 1000;  // events/s per CPU; 0: unlimited
  uint64_t burst = 1000;
  bool only_user = false;  // exits only: those handed to the VMM
  bool filter_map = false;  // upcalls only: the object's filter map chooses (set by the tracer)
};

// The kernel-side struct, with the limits checked.
Result<hv_trace_config> to_kernel_config(const TraceConfig& c);

// Sums of a trace object's per-CPU counters (enum hv_trace_counter).
struct TraceCounts {
  uint64_t emitted = 0;
  uint64_t rate_limited = 0;
  uint64_t ring_full = 0;
  uint64_t untimed = 0;  // events that could not be timed (the object's pending map was full)
  uint64_t dropped() const { return rate_limited + ring_full; }
};
TraceCounts counts_from(std::span<const uint64_t> per_counter);

// "250us", "1.5ms", "2s", "800ns"; a bare number is nanoseconds.
Result<uint64_t> parse_duration_ns(std::string_view s);
// "10:00:00.123456": a monotonic timestamp plus `offset_ns` (to Unix time), UTC.
std::string format_wall_time(uint64_t ts_ns, int64_t offset_ns);
// One NDJSON trace record: {"type":type,"time_ns":ts_ns + offset_ns} followed by `fields` (a JSON
// object, in its order).
std::string trace_json(std::string_view type, uint64_t ts_ns, int64_t offset_ns,
                       const nlohmann::ordered_json& fields);
// "800ns", "61.2us", "12.5ms"; 0 is unknown: "-".
std::string format_latency(uint64_t ns);
// "# 3400 events, 12 dropped (rate limit 1000/s per CPU: 12, ring buffer full: 0)", and
// ", N <untimed_what>" when some events could not be timed.
std::string format_drop_line(const TraceCounts& c, const TraceConfig& cfg, std::string_view untimed_what);
// {"type":"drops"|"summary","events":..,"dropped":..,"rate_limited":..,"ring_full":..,"untimed":..}
std::string drops_json(const TraceCounts& c, std::string_view type);
// "at most 1000/s per CPU, burst 1000" or "no rate limit".
std::string rate_text(const TraceConfig& cfg);

// A tracepoint hook of a trace object: tp_btf, else raw_tp.
Hook trace_hook(const char* system, const char* tp, const char* btf_prog, const char* raw_prog);

// A loaded and attached trace object: the filter patched into its .rodata
// (hv_trace_cfg, its only .rodata variable), its ring hv_trace_ring carrying
// records of `record_size` bytes, its counters hv_trace_counters.
class TraceObject {
 public:
  // `required` names a hook that must attach (the others are optional).
  static Result<std::unique_ptr<TraceObject>> start(ObjectSpec spec, const TraceConfig& cfg,
                                                    size_t record_size, std::string_view required);
  ~TraceObject();
  TraceObject(const TraceObject&) = delete;
  TraceObject& operator=(const TraceObject&) = delete;

  // Waits up to timeout_ms and hands every record in the ring to `on_record`.
  Status poll(int timeout_ms, const std::function<void(const void* record)>& on_record);
  // The same, with each record copied out as `Record` (the ring's records are of its size).
  template <class Record>
  Status poll_as(int timeout_ms, const std::function<void(const Record&)>& on_record) {
    return poll(timeout_ms, [&](const void* data) {
      Record r;
      std::memcpy(&r, data, sizeof(r));
      on_record(r);
    });
  }
  Result<TraceCounts> counts() const;
  // "kvm_exit=tp_btf kvm_entry=raw_tp" (hooks not attached: "=none").
  const std::string& attach_summary() const { return attach_summary_; }
  const BpfObject& object() const;

  struct Impl;  // libbpf state, only in the .cpp

 private:
  explicit TraceObject(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string attach_summary_;
};

}  // namespace hvtel::bpf
