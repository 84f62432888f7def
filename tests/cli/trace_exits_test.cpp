// `hvtel trace exits` without a kernel: the token bucket the BPF program runs
// (hv_trace_bucket_take, shared through abi.h), the filter limits, naming
// with a fake procfs, the line and NDJSON formats, and --instance resolution.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "hvtel/abi.h"
#include "kvm/exit_trace.h"
#include "kvm/runq_trace.h"

namespace hvtel::kvm {
namespace {

constexpr uint64_t kSec = 1000000000ULL;

// Events at `n` instants `step_ns` apart through one bucket; how many pass.
uint64_t passed(hv_trace_bucket& b, uint64_t start_ns, uint64_t step_ns, int n, uint64_t rate,
                uint64_t burst) {
  uint64_t ok = 0;
  for (int i = 0; i < n; ++i) ok += hv_trace_bucket_take(&b, start_ns + i * step_ns, rate, burst);
  return ok;
}

TEST(TraceBucket, StartsFullAndRefillsAtTheRate) {
  hv_trace_bucket b{};
  // A burst of 5 at one instant: 5 pass, the 6th is over.
  EXPECT_EQ(passed(b, 7 * kSec, 0, 6, 10, 5), 5u);
  // 10/s: one token per 100 ms, none before.
  EXPECT_EQ(hv_trace_bucket_take(&b, 7 * kSec + 99999999, 10, 5), 0u);
  EXPECT_EQ(hv_trace_bucket_take(&b, 7 * kSec + 100000000, 10, 5), 1u);
  EXPECT_EQ(hv_trace_bucket_take(&b, 7 * kSec + 100000001, 10, 5), 0u);
}

TEST(TraceBucket, AnIdleBucketHoldsAtMostTheBurst) {
  hv_trace_bucket b{};
  EXPECT_EQ(passed(b, kSec, 0, 3, 1000, 3), 3u);
  // An hour later (elapsed capped at 16 s, credit at the burst): 3 again, not 3.6M.
  EXPECT_EQ(passed(b, 3601 * kSec, 0, 10, 1000, 3), 3u);
}

TEST(TraceBucket, RateZeroIsUnlimited) {
  hv_trace_bucket b{};
  EXPECT_EQ(passed(b, kSec, 0, 100000, 0, 1), 100000u);
}

TEST(TraceBucket, EmittedPlusLimitedIsEveryMatchingEvent) {
  // 1000 exits 1 us apart at 1000/s, burst 100: the 0.999 ms span earns 0.999
  // of a token, so exactly the burst passes and 900 are counted as limited.
  hv_trace_bucket b{};
  uint64_t ok = passed(b, kSec, 1000, 1000, 1000, 100);
  EXPECT_EQ(ok, 100u);
  EXPECT_EQ(1000 - ok, 900u);
  // 1 ms later the span is 1.000 ms past the last event's predecessor: one more.
  EXPECT_EQ(hv_trace_bucket_take(&b, kSec + 999000 + 1000000, 1000, 100), 1u);
}

TEST(TraceBucket, TheMaximumRateAndBurstDoNotOverflow) {
  hv_trace_bucket b{};
  // Full at HV_TRACE_MAX_BURST, 16 s of HV_TRACE_MAX_RATE refill still < 2^64.
  EXPECT_EQ(passed(b, kSec, 0, 1000001, HV_TRACE_MAX_RATE, HV_TRACE_MAX_BURST), HV_TRACE_MAX_BURST);
  EXPECT_EQ(b.credit, 0u);
  EXPECT_EQ(hv_trace_bucket_take(&b, 100 * kSec, HV_TRACE_MAX_RATE, HV_TRACE_MAX_BURST), 1u);
  EXPECT_EQ(b.credit, (HV_TRACE_MAX_BURST - 1) * kSec);
}

TEST(TraceConfig, LimitsAreCheckedBeforeLoad) {
  ExitTraceConfig c;
  c.tgid = 4242;
  c.vcpu = 3;
  c.min_latency_ns = 250000;
  c.rate = 500;
  c.burst = 20;
  c.only_user = true;
  auto k = to_kernel_config(c);
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(k->tgid, 4242u);
  EXPECT_EQ(k->vcpu_idx, 3);
  EXPECT_EQ(k->min_latency_ns, 250000u);
  EXPECT_EQ(k->rate, 500u);
  EXPECT_EQ(k->burst, 20u);
  EXPECT_EQ(k->only_user, 1u);
  c.rate = HV_TRACE_MAX_RATE + 1;
  ASSERT_FALSE(to_kernel_config(c));
  EXPECT_EQ(to_kernel_config(c).error().message,
            "rate 10000001 is over the limit of 10000000 events/s per CPU");
  c.rate = 10;
  c.burst = 0;
  EXPECT_EQ(to_kernel_config(c).error().message, "burst 0 is outside 1..1000000");
  c.rate = 0;  // unlimited: the burst does not matter
  EXPECT_TRUE(to_kernel_config(c));
}

TEST(TraceCounts, ReadByEnumIndex) {
  const uint64_t v[HV_TRACE_CNT_MAX] = {10, 20, 3, 4};
  auto c = counts_from(v);
  EXPECT_EQ(c.emitted, 10u);
  EXPECT_EQ(c.rate_limited, 20u);
  EXPECT_EQ(c.ring_full, 3u);
  EXPECT_EQ(c.untimed, 4u);
  EXPECT_EQ(c.dropped(), 23u);
}

TEST(TraceDuration, UnitsAndErrors) {
  EXPECT_EQ(parse_duration_ns("250us"), 250000u);
  EXPECT_EQ(parse_duration_ns("1.5ms"), 1500000u);
  EXPECT_EQ(parse_duration_ns("2s"), 2000000000u);
  EXPECT_EQ(parse_duration_ns("800ns"), 800u);
  EXPECT_EQ(parse_duration_ns("800"), 800u);
  for (const char* bad : {"", "ms", "1x", "1.2.3us", "-5us", "1 ms"}) {
    auto r = parse_duration_ns(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message,
              std::string("bad duration \"") + bad + "\": expected a number with ns, us, ms or s");
  }
}

// A procfs with two VMMs (one with a -name, one without) and a shell.
class FakeProc : public discovery::ProcFs {
 public:
  FakeProc() : ProcFs("/nonexistent") {}
  Result<std::vector<std::string>> cmdline(pid_t pid) const override {
    auto it = argv_.find(pid);
    if (it == argv_.end()) return fail("gone");
    return it->second;
  }
  Result<std::string> comm(pid_t pid) const override {
    auto it = comm_.find(pid);
    if (it == comm_.end()) return fail("gone");
    return it->second;
  }
  Result<std::string> thread_comm(pid_t, pid_t tid) const override {
    auto it = tcomm_.find(tid);
    if (it == tcomm_.end()) return fail("gone");
    return it->second;
  }
  std::optional<int> vcpu_fd_index(pid_t, pid_t tid) const override {
    return tid == 305 ? std::optional<int>(5) : std::nullopt;
  }
  std::vector<pid_t> processes() const override { return {100, 200, 300}; }
  std::vector<pid_t> threads(pid_t pid) const override {
    auto it = threads_.find(pid);
    return it == threads_.end() ? std::vector<pid_t>{} : it->second;
  }

  std::map<pid_t, std::vector<std::string>> argv_{
      {100,
       {"qemu-system-x86_64", "-name", "guest=instance-0000002a,debug-threads=on", "-uuid",
        "1c0b3b6e-8f3a-4a43-9f6e-0123456789ab"}},
      {200, {"hvtel-testvmm", "-n", "2"}},
      {300, {"bash"}}};
  std::map<pid_t, std::string> comm_{{100, "qemu-system-x86"}, {200, "hvtel-testvmm"}, {300, "bash"}};
  std::map<pid_t, std::string> tcomm_{{101, "CPU 1/KVM"}, {201, "hvtel-testvmm"}};
  std::map<pid_t, std::vector<pid_t>> threads_{{100, {100, 101, 102}}, {200, {200, 201}}, {300, {300, 305}}};
};

hv_trace_exit svm_io_exit() {
  hv_trace_exit e{};
  e.ts_ns = 5 * kSec + 123456789;
  e.latency_ns = 2345;
  e.raw_reason = 0x7b;
  e.tgid = 100;
  e.tid = 101;
  e.vcpu_idx = 1;
  e.cpu = 7;
  e.vendor = HV_VENDOR_SVM;
  e.reason_index = hv_reason_index(HV_VENDOR_SVM, 0x7b);
  e.end = HV_TRACE_END_USER;
  e.user_reason = 2;  // KVM_EXIT_IO
  return e;
}

TEST(TraceDescribe, NamesTheInstanceTheReasonsAndTheVcpu) {
  FakeProc proc;
  VmmNamer names(proc);
  auto r = describe(svm_io_exit(), names);
  EXPECT_EQ(r.instance_id, "1c0b3b6e-8f3a-4a43-9f6e-0123456789ab");
  EXPECT_EQ(r.instance_name, "instance-0000002a");
  EXPECT_EQ(r.pid, 100);
  EXPECT_EQ(r.tid, 101);
  EXPECT_EQ(r.vcpu, 1);
  EXPECT_EQ(r.cpu, 7u);
  EXPECT_EQ(r.vendor, "svm");
  EXPECT_EQ(r.reason, "ioio");
  EXPECT_EQ(r.vmm_reason, "io");
  EXPECT_EQ(r.latency_ns, 2345u);
}

TEST(TraceDescribe, WithoutKvmExitTheVcpuComesFromTheThread) {
  // PVM: only kvm_userspace_exit fired, so no vendor reason and no vcpu_idx.
  FakeProc proc;
  VmmNamer names(proc);
  hv_trace_exit e{};
  e.tgid = 100;
  e.tid = 101;
  e.vcpu_idx = -1;
  e.end = HV_TRACE_END_USER;
  e.user_reason = 5;  // KVM_EXIT_HLT
  auto r = describe(e, names);
  EXPECT_EQ(r.vcpu, 1);  // "CPU 1/KVM"
  EXPECT_EQ(r.vendor, "");
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(r.vmm_reason, "hlt");
  EXPECT_TRUE(passes_vcpu_filter(r, 1));
  EXPECT_FALSE(passes_vcpu_filter(r, 0));
  EXPECT_TRUE(passes_vcpu_filter(r, -1));
  // No name: the vCPU fd the thread runs KVM_RUN on.
  e.tid = 305;
  EXPECT_EQ(describe(e, names).vcpu, 5);
  // Neither: unknown.
  e.tid = 201;
  e.tgid = 200;
  auto u = describe(e, names);
  EXPECT_EQ(u.vcpu, -1);
  EXPECT_EQ(u.instance_id, "pid-200");
  EXPECT_EQ(u.instance_name, "hvtel-testvmm");
  EXPECT_FALSE(passes_vcpu_filter(u, 0));
}

TEST(TraceDescribe, TheAgentsIdentityWinsOverProcfs) {
  // Through the agent: its tracker knows the Nova instance (libvirt) by VMM pid.
  FakeProc proc;
  int asked = 0;
  VmmNamer names(proc, [&](pid_t pid) -> std::optional<discovery::VmmIdentity> {
    ++asked;
    if (pid != 100 || asked < 2) return std::nullopt;  // learnt on the second exit
    return discovery::VmmIdentity{"6f1c0b3b-0000-4000-8000-00000000abcd", "web-frontend-1"};
  });
  auto first = describe(svm_io_exit(), names);
  EXPECT_EQ(first.instance_name, "instance-0000002a");  // procfs until the agent knows it
  auto second = describe(svm_io_exit(), names);
  EXPECT_EQ(second.instance_id, "6f1c0b3b-0000-4000-8000-00000000abcd");
  EXPECT_EQ(second.instance_name, "web-frontend-1");
  EXPECT_EQ(asked, 2);
}

TEST(TraceDescribe, AVmmGoneBeforeItWasNamedKeepsItsPid) {
  FakeProc proc;
  VmmNamer names(proc);
  hv_trace_exit e = svm_io_exit();
  e.tgid = 999;
  auto r = describe(e, names);
  EXPECT_EQ(r.instance_id, "pid-999");
  EXPECT_EQ(r.instance_name, "pid-999");
}

TEST(TraceFormat, OneLinePerExit) {
  FakeProc proc;
  VmmNamer names(proc);
  auto r = describe(svm_io_exit(), names);
  EXPECT_EQ(format_exit_line(r, 0),
            "00:00:05.123456 instance-0000002a    vcpu 1   ioio -> vmm io               2345ns");
  hv_trace_exit e = svm_io_exit();
  e.end = HV_TRACE_END_ENTRY;
  e.user_reason = 0;
  e.latency_ns = 12345678;
  e.reason_index = hv_reason_index(HV_VENDOR_SVM, 0x78);
  EXPECT_EQ(format_exit_line(describe(e, names), 3600 * static_cast<int64_t>(kSec)),
            "01:00:05.123456 instance-0000002a    vcpu 1   hlt                          12.3ms");
  e.latency_ns = 0;
  e.vendor = HV_VENDOR_UNKNOWN;
  e.end = HV_TRACE_END_USER;
  e.user_reason = 5;
  EXPECT_EQ(format_exit_line(describe(e, names), 0),
            "00:00:05.123456 instance-0000002a    vcpu 1   - -> vmm hlt                 -");
}

TEST(TraceFormat, NdjsonCarriesEveryFieldAndTheDropsSoFar) {
  FakeProc proc;
  VmmNamer names(proc);
  auto r = describe(svm_io_exit(), names);
  EXPECT_EQ(exit_json(r, 1000, 17),
            R"({"type":"exit","time_ns":5123457789,"instance_id":"1c0b3b6e-8f3a-4a43-9f6e-0123456789ab",)"
            R"("instance_name":"instance-0000002a","pid":100,"tid":101,"vcpu":1,"cpu":7,"vendor":"svm",)"
            R"("reason":"ioio","vmm_reason":"io","latency_ns":2345,"dropped":17})");
  r.vendor.clear();
  r.reason.clear();
  r.vmm_reason.clear();
  auto j = nlohmann::json::parse(exit_json(r, 0, 0));
  EXPECT_TRUE(j["vendor"].is_null());
  EXPECT_TRUE(j["reason"].is_null());
  EXPECT_TRUE(j["vmm_reason"].is_null());
}

TEST(TraceFormat, DropReports) {
  ExitTraceCounts c;
  c.emitted = 3400;
  c.rate_limited = 12;
  c.ring_full = 1;
  ExitTraceConfig cfg;
  cfg.rate = 1000;
  EXPECT_EQ(format_drop_line(c, cfg),
            "# 3400 events, 13 dropped (rate limit 1000/s per CPU: 12, ring buffer full: 1)");
  c.untimed = 2;
  cfg.rate = 0;
  EXPECT_EQ(format_drop_line(c, cfg),
            "# 3400 events, 13 dropped (no rate limit: 12, ring buffer full: 1), 2 exits not timed "
            "(in-flight map full)");
  EXPECT_EQ(drops_json(c, "summary"),
            R"({"type":"summary","events":3400,"dropped":13,"rate_limited":12,"ring_full":1,"untimed":2})");
}

TEST(TraceInstance, ByIdNameOrPid) {
  FakeProc proc;
  EXPECT_EQ(find_vmm(proc, "1c0b3b6e-8f3a-4a43-9f6e-0123456789ab"), 100);
  EXPECT_EQ(find_vmm(proc, "instance-0000002a"), 100);
  EXPECT_EQ(find_vmm(proc, "pid-200"), 200);
  EXPECT_EQ(find_vmm(proc, "200"), 200);
}

TEST(TraceInstance, AProcessNameIsNotAnInstanceName) {
  FakeProc proc;
  // bash and the testvmm have no -name: their comm is no instance name.
  auto r = find_vmm(proc, "bash");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "no running VMM is instance \"bash\"");
  EXPECT_FALSE(find_vmm(proc, "hvtel-testvmm"));
}

TEST(TraceInstance, AmbiguousNamesAreAnError) {
  FakeProc proc;
  proc.argv_[200] = {"hvtel-testvmm", "-name", "guest=instance-0000002a"};
  auto r = find_vmm(proc, "instance-0000002a");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "instance \"instance-0000002a\" is ambiguous: 100 (1c0b3b6e-8f3a-4a43-9f6e-0123456789ab "
            "instance-0000002a) 200 (pid-200 instance-0000002a); give its id or pid");
}

// ---- hvtel trace runq: which threads it follows, and its lines ----------------

TEST(TraceRunq, FollowsTheVcpuThreadsOfTheInstanceAndVcpuAskedFor) {
  FakeProc proc;
  // 101 is named "CPU 1/KVM"; 305 runs KVM_RUN on kvm-vcpu:5; the rest are no vCPU threads.
  EXPECT_EQ(runq_threads(proc, 0, -1), (std::vector<RunqThread>{{100, 101, 1}, {300, 305, 5}}));
  EXPECT_EQ(runq_threads(proc, 100, -1), (std::vector<RunqThread>{{100, 101, 1}}));
  EXPECT_EQ(runq_threads(proc, 0, 5), (std::vector<RunqThread>{{300, 305, 5}}));
  EXPECT_EQ(runq_threads(proc, 100, 0), std::vector<RunqThread>{});
  EXPECT_EQ(runq_threads(proc, 200, -1), std::vector<RunqThread>{});
}

hv_trace_runq preempted_wait() {
  hv_trace_runq e{};
  e.ts_ns = 5 * kSec + 123456789;
  e.latency_ns = 1234567;
  e.tgid = 100;
  e.tid = 101;
  e.vcpu_idx = 1;
  e.cpu = 7;
  e.kind = HV_RUNQ_PREEMPT;
  return e;
}

TEST(TraceRunq, NamesAndFormatsOneWait) {
  FakeProc proc;
  VmmNamer names(proc);
  auto r = describe(preempted_wait(), names);
  EXPECT_EQ(r.instance_id, "1c0b3b6e-8f3a-4a43-9f6e-0123456789ab");
  EXPECT_EQ(r.instance_name, "instance-0000002a");
  EXPECT_EQ(r.vcpu, 1);
  EXPECT_EQ(r.cpu, 7u);
  EXPECT_EQ(r.kind, "preempt");
  EXPECT_EQ(format_runq_line(r, 0), "00:00:05.123456 instance-0000002a    vcpu 1   cpu 7    preempt  1234.6us");
  EXPECT_EQ(runq_json(r, 1000 * static_cast<int64_t>(kSec), 3),
            R"({"type":"runq","time_ns":1005123456789,"instance_id":"1c0b3b6e-8f3a-4a43-9f6e-0123456789ab",)"
            R"("instance_name":"instance-0000002a","pid":100,"tid":101,"vcpu":1,"cpu":7,"kind":"preempt",)"
            R"("latency_ns":1234567,"dropped":3})");
  auto e = preempted_wait();
  e.kind = HV_RUNQ_WAKEUP;
  e.latency_ns = 800;
  e.vcpu_idx = -1;  // not known when followed: named from the thread
  r = describe(e, names);
  EXPECT_EQ(r.kind, "wakeup");
  EXPECT_EQ(r.vcpu, 1);
  EXPECT_EQ(format_runq_text(r), "instance-0000002a    vcpu 1   cpu 7    wakeup   800ns");
}

TEST(TraceRunq, DropReport) {
  bpf::TraceCounts c;
  c.emitted = 5;
  c.rate_limited = 4000;
  bpf::TraceConfig cfg;
  cfg.rate = 1;
  EXPECT_EQ(format_runq_drop_line(c, cfg),
            "# 5 events, 4000 dropped (rate limit 1/s per CPU: 4000, ring buffer full: 0)");
}

}  // namespace
}  // namespace hvtel::kvm
