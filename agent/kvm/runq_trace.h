// On-demand run-queue tracing (`hvtel trace runq`): the trace_runq BPF object,
// loaded and attached only while someone follows, and what turns its raw
// events into named lines. One event per wait of a followed vCPU thread, from
// its wakeup or preemption to the switch that runs it. The followed threads
// are the kernel's filter: the tracer puts the vCPU threads of the asked
// instance and vCPU into the object's thread map, from procfs, and keeps that
// map up to date while it runs. Lifecycle, rate limit, counters and drop
// reports are those of every trace (base/bpf/trace.h); names as in the exit trace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bpf/trace.h"
#include "base/util/result.h"
#include "discovery/procfs.h"
#include "hvtel/abi.h"
#include "kvm/exit_trace.h"

namespace hvtel::kvm {

// A vCPU thread the run-queue trace follows.
struct RunqThread {
  pid_t tgid = 0;
  pid_t tid = 0;
  int vcpu = -1;
  bool operator==(const RunqThread&) const = default;
};

// The vCPU threads of `tgid` (0: of every process) with index `vcpu` (-1:
// any): threads named "CPU n/KVM" (QEMU with debug-threads=on), else blocked
// in KVM_RUN on a vCPU fd. Sorted by tgid, tid.
std::vector<RunqThread> runq_threads(const discovery::ProcFs& proc, pid_t tgid, int vcpu);

// One run-queue wait, named.
// ts_ns is when it went on-CPU, cpu the pCPU it went on.
struct RunqRecord : TracedThread {
  std::string kind;  // "wakeup", "preempt"
};
RunqRecord describe(const hv_trace_runq& e, VmmNamer& names);

// "instance-0000002a    vcpu 1   cpu 7   preempt  1.2ms": the line without its time.
std::string format_runq_text(const RunqRecord& r);
std::string format_runq_line(const RunqRecord& r, int64_t wall_offset_ns);
// The fields of one wait, as NDJSON (with "type":"runq" and "time_ns") and in the agent's events.
nlohmann::ordered_json runq_fields(const RunqRecord& r, uint64_t dropped);
std::string runq_json(const RunqRecord& r, int64_t wall_offset_ns, uint64_t dropped);
std::string format_runq_drop_line(const bpf::TraceCounts& c, const bpf::TraceConfig& cfg);

// The loaded and attached trace_runq object; detached and unloaded on destruction.
class RunqTracer {
 public:
  // Follows the vCPU threads of cfg.tgid (0: every VMM) and cfg.vcpu (-1: every vCPU).
  static Result<std::unique_ptr<RunqTracer>> start(const bpf::TraceConfig& cfg,
                                                   const discovery::ProcFs& proc);

  // Puts vCPU threads that appeared since into the kernel's thread map and
  // takes out those gone; returns how many are followed.
  Result<size_t> refresh();
  Status poll(int timeout_ms, const std::function<void(const hv_trace_runq&)>& on_event);
  Result<bpf::TraceCounts> counts() const { return object_->counts(); }
  // "sched_switch=tp_btf sched_wakeup=tp_btf sched_wakeup_new=tp_btf".
  const std::string& attach_summary() const { return object_->attach_summary(); }

 private:
  RunqTracer(std::unique_ptr<bpf::TraceObject> object, bpf::TraceConfig cfg, const discovery::ProcFs& proc,
             int threads_fd)
      : object_(std::move(object)), cfg_(cfg), proc_(proc), threads_fd_(threads_fd) {}
  std::unique_ptr<bpf::TraceObject> object_;
  const bpf::TraceConfig cfg_;
  const discovery::ProcFs& proc_;
  int threads_fd_;
  std::vector<RunqThread> followed_;
};

}  // namespace hvtel::kvm
