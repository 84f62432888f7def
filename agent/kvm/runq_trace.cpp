#include "kvm/runq_trace.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "trace_runq.skel.h"

namespace hvtel::kvm {

std::vector<RunqThread> runq_threads(const discovery::ProcFs& proc, pid_t tgid, int vcpu) {
  std::vector<RunqThread> out;
  std::vector<pid_t> pids = tgid ? std::vector<pid_t>{tgid} : proc.processes();
  for (pid_t pid : pids) {
    for (pid_t tid : proc.threads(pid)) {
      int idx = thread_vcpu_index(proc, pid, tid).value_or(-1);
      if (idx < 0 || (vcpu >= 0 && idx != vcpu)) continue;
      out.push_back({pid, tid, idx});
    }
  }
  std::sort(out.begin(), out.end(), [](const RunqThread& a, const RunqThread& b) {
    return std::pair(a.tgid, a.tid) < std::pair(b.tgid, b.tid);
  });
  return out;
}

RunqRecord describe(const hv_trace_runq& e, VmmNamer& names) {
  RunqRecord r;
  static_cast<TracedThread&>(r) = name_thread(e.ts_ns, e.latency_ns, e.tgid, e.tid, e.vcpu_idx, e.cpu, names);
  r.kind = e.kind == HV_RUNQ_PREEMPT ? "preempt" : e.kind == HV_RUNQ_WAKEUP ? "wakeup" : "unknown";
  return r;
}

std::string format_runq_text(const RunqRecord& r) {
  return fmt::format("{:<20} vcpu {:<3} cpu {:<4} {:<8} {}", r.instance_name,
                     r.vcpu < 0 ? std::string("?") : std::to_string(r.vcpu), r.cpu, r.kind,
                     bpf::format_latency(r.latency_ns));
}

std::string format_runq_line(const RunqRecord& r, int64_t wall_offset_ns) {
  return bpf::format_wall_time(r.ts_ns, wall_offset_ns) + " " + format_runq_text(r);
}

nlohmann::ordered_json runq_fields(const RunqRecord& r, uint64_t dropped) {
  nlohmann::ordered_json j;
  j["instance_id"] = r.instance_id;
  j["instance_name"] = r.instance_name;
  j["pid"] = r.pid;
  j["tid"] = r.tid;
  j["vcpu"] = r.vcpu;
  j["cpu"] = r.cpu;
  j["kind"] = r.kind;
  j["latency_ns"] = r.latency_ns;
  j["dropped"] = dropped;
  return j;
}

std::string runq_json(const RunqRecord& r, int64_t wall_offset_ns, uint64_t dropped) {
  return bpf::trace_json("runq", r.ts_ns, wall_offset_ns, runq_fields(r, dropped));
}

std::string format_runq_drop_line(const bpf::TraceCounts& c, const bpf::TraceConfig& cfg) {
  // The runq object has no pending map that can fill (the thread map is sized by the tracer).
  return bpf::format_drop_line(c, cfg, "waits not timed");
}

// ---- the BPF side --------------------------------------------------------------

Result<std::unique_ptr<RunqTracer>> RunqTracer::start(const bpf::TraceConfig& cfg,
                                                      const discovery::ProcFs& proc) {
  bpf::ObjectSpec spec;
  spec.name = "trace_runq";
  spec.elf = trace_runq::elf_bytes(&spec.size);
  spec.hooks = {
      bpf::trace_hook("sched", "sched_switch", "hv_trace_rq_switch_btf", "hv_trace_rq_switch_raw"),
      bpf::trace_hook("sched", "sched_wakeup", "hv_trace_rq_wakeup_btf", "hv_trace_rq_wakeup_raw"),
      bpf::trace_hook("sched", "sched_wakeup_new", "hv_trace_rq_wakenew_btf", "hv_trace_rq_wakenew_raw"),
  };
  // Without sched_switch no wait ends; a missing wakeup hook would show preemptions only, so both are needed.
  auto object = bpf::TraceObject::start(std::move(spec), cfg, sizeof(hv_trace_runq), "sched_switch");
  if (!object) return fail(object.error());
  if ((*object)->attach_summary().find("sched_wakeup=none") != std::string::npos)
    return fail("trace_runq: sched_wakeup could not be attached (" + (*object)->attach_summary() + ")");
  auto threads = (*object)->object().map("hv_runq_threads");
  if (!threads) return fail(threads.error());
  std::unique_ptr<RunqTracer> t(new RunqTracer(std::move(*object), cfg, proc, bpf_map__fd(*threads)));
  if (auto n = t->refresh(); !n) return fail(n.error());
  return t;
}

Result<size_t> RunqTracer::refresh() {
  auto now = runq_threads(proc_, cfg_.tgid, cfg_.vcpu);
  for (const auto& gone : followed_) {
    if (std::binary_search(now.begin(), now.end(), gone, [](const RunqThread& a, const RunqThread& b) {
          return std::pair(a.tgid, a.tid) < std::pair(b.tgid, b.tid);
        }))
      continue;
    __u32 tid = static_cast<__u32>(gone.tid);
    bpf_map_delete_elem(threads_fd_, &tid);  // ENOENT is fine: it is gone either way
  }
  size_t n = 0;
  for (const auto& t : now) {
    __u32 tid = static_cast<__u32>(t.tid);
    hv_trace_runq_thread v{};
    v.tgid = static_cast<__u32>(t.tgid);
    v.vcpu_idx = t.vcpu;
    // NOEXIST: a thread already followed keeps the wait it is in.
    if (bpf_map_update_elem(threads_fd_, &tid, &v, BPF_NOEXIST) != 0 && errno != EEXIST) {
      if (errno == E2BIG || errno == ENOMEM)
        return fail(fmt::format("trace_runq: more than {} vCPU threads to follow", HV_TRACE_RUNQ_THREADS));
      return fail_errno(errno, fmt::format("trace_runq: follow thread {}", t.tid));
    }
    ++n;
  }
  followed_ = std::move(now);
  return n;
}

Status RunqTracer::poll(int timeout_ms, const std::function<void(const hv_trace_runq&)>& on_event) {
  return object_->poll_as<hv_trace_runq>(timeout_ms, on_event);
}

}  // namespace hvtel::kvm
