// On-demand exit tracing (`hvtel trace exits`): the trace_exits BPF object,
// loaded and attached only while someone follows, and what turns its raw
// events into named lines. Filtering and the rate limit run in the kernel
// (struct hv_trace_config); this side names, formats and reports the drops.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/bpf/trace.h"
#include "base/util/result.h"
#include "discovery/procfs.h"
#include "hvtel/abi.h"

namespace hvtel::kvm {

// The filter, rate limit, counters and formatting are those every trace shares.
using ExitTraceConfig = bpf::TraceConfig;
using ExitTraceCounts = bpf::TraceCounts;
using bpf::counts_from;
using bpf::drops_json;
using bpf::parse_duration_ns;
using bpf::to_kernel_config;

// Who a VMM process and its threads are, cached per pid and tid. The
// standalone trace knows what procfs shows (QEMU's -uuid, -name guest=, the
// "CPU n/KVM" thread names); Nova names come through the agent.
class VmmNamer {
 public:
  // A richer identity by VMM pid (the agent's tracker: Nova names from libvirt).
  using Lookup = std::function<std::optional<discovery::VmmIdentity>(pid_t tgid)>;

  explicit VmmNamer(const discovery::ProcFs& proc, Lookup lookup = {})
      : proc_(proc), lookup_(std::move(lookup)) {}
  // The lookup's answer when it has one (asked every time: it may learn the
  // VMM later), else procfs, cached.
  const discovery::VmmIdentity& instance(pid_t tgid);
  // The kernel's vcpu_idx when it had one, else from the thread's name or its vCPU fd; -1 if unknown.
  int vcpu(pid_t tgid, pid_t tid, int32_t kernel_idx);

 private:
  const discovery::ProcFs& proc_;
  Lookup lookup_;
  std::map<pid_t, discovery::VmmIdentity> instances_;
  std::map<pid_t, int> vcpus_;
};

// The vCPU index of a thread from procfs: its name ("CPU n/KVM"), else the
// kvm-vcpu fd it runs KVM_RUN on; nullopt if neither tells.
std::optional<int> thread_vcpu_index(const discovery::ProcFs& proc, pid_t tgid, pid_t tid);

// What every traced event of a vCPU thread has, named.
struct TracedThread {
  uint64_t ts_ns = 0;  // CLOCK_MONOTONIC
  uint64_t latency_ns = 0;
  std::string instance_id;
  std::string instance_name;
  pid_t pid = 0;
  pid_t tid = 0;
  int vcpu = -1;
  uint32_t cpu = 0;
};
// From a raw event's fields (vcpu_idx -1: named from the thread).
TracedThread name_thread(uint64_t ts_ns, uint64_t latency_ns, uint32_t tgid, uint32_t tid, int32_t vcpu_idx,
                         uint32_t cpu, VmmNamer& names);

// One exit, named.
struct ExitRecord : TracedThread {
  std::string vendor;      // "vmx", "svm", "pvm"; empty: kvm_exit did not fire
  std::string reason;      // guest exit reason; empty when unknown
  std::string vmm_reason;  // KVM_EXIT_* name when handed to the VMM, else empty
};
ExitRecord describe(const hv_trace_exit& e, VmmNamer& names);

// A vCPU filter for events whose vCPU the kernel did not know (PVM: no kvm_exit).
bool passes_vcpu_filter(const ExitRecord& r, int vcpu);

// "instance-0000002a    vcpu 1   ioio -> vmm io               2345ns": the line without its time.
std::string format_exit_text(const ExitRecord& r);
// `wall_offset_ns` turns the monotonic timestamp into Unix time.
std::string format_exit_line(const ExitRecord& r, int64_t wall_offset_ns);
std::string exit_json(const ExitRecord& r, int64_t wall_offset_ns, uint64_t dropped);
// "# 3400 events, 12 dropped (rate limit 1000/s per CPU: 12, ring buffer full: 0)".
std::string format_drop_line(const ExitTraceCounts& c, const ExitTraceConfig& cfg);

// Resolves --instance: an instance id (-uuid, "pid-N"), a -name, or a pid,
// among the running processes; an error names the candidates when ambiguous.
Result<pid_t> find_vmm(const discovery::ProcFs& proc, const std::string& instance);

// The loaded and attached trace object; detached and unloaded on destruction.
class ExitTracer {
 public:
  static Result<std::unique_ptr<ExitTracer>> start(const ExitTraceConfig& cfg);
  ExitTracer(const ExitTracer&) = delete;
  ExitTracer& operator=(const ExitTracer&) = delete;

  // Waits up to timeout_ms and hands every event in the ring to `on_event`.
  Status poll(int timeout_ms, const std::function<void(const hv_trace_exit&)>& on_event);
  Result<ExitTraceCounts> counts() const { return object_->counts(); }
  // "kvm_exit=tp_btf kvm_entry=tp_btf kvm_userspace_exit=tp_btf" (hooks not attached: "=none").
  const std::string& attach_summary() const { return object_->attach_summary(); }

 private:
  explicit ExitTracer(std::unique_ptr<bpf::TraceObject> object) : object_(std::move(object)) {}
  std::unique_ptr<bpf::TraceObject> object_;
};

}  // namespace hvtel::kvm
