// The metric catalogue of the BPF-backed collectors (exits, scheduling, the
// agent's own): each described once, here. The pinning, libvirt and OVS
// collectors still describe theirs beside their code. Names and labels are
// public interface (docs/metrics.md documents each one); keep
// Prometheus conventions: base units, _total for counters, _seconds.
#pragma once

#include "base/metrics/family.h"

namespace hvtel::metrics::catalog {

using prometheus::MetricType;

// ---- VM exits (vcpu_exits.bpf.c) ----
inline constexpr MetricDesc kVcpuExits{
    "hvtel_vcpu_exits_total",
    "VM exits by vendor exit reason (kvm_exit), per instance.", MetricType::Counter};
inline constexpr MetricDesc kVcpuExitHandling{
    "hvtel_vcpu_exit_handling_seconds",
    "Time from a VM exit to the next VM entry of the same vCPU, by exit class "
    "(halt is guest idle time).", MetricType::Histogram};
inline constexpr MetricDesc kVcpuUserspaceExits{
    "hvtel_vcpu_userspace_exits_total",
    "Exits to the VMM (KVM_RUN returned to userspace) by KVM_EXIT reason.", MetricType::Counter};
inline constexpr MetricDesc kVcpuVmmHandling{
    "hvtel_vcpu_vmm_handling_seconds",
    "Time the VMM spent handling an exit: KVM_RUN return until the same vCPU thread "
    "re-enters KVM_RUN.", MetricType::Histogram};
inline constexpr MetricDesc kVcpuVmmSampleRatio{
    "hvtel_vcpu_vmm_handling_sample_ratio",
    "Share of exits to the VMM that hvtel_vcpu_vmm_handling_seconds observes: 1 when every "
    "exit is timed, window/period where the re-entry marker is sampled (hosts without "
    "kvm_entry), 0 while it cannot be attached.", MetricType::Gauge};
inline constexpr MetricDesc kVcpuThreads{
    "hvtel_vcpu_threads", "vCPU threads currently tracked, per instance.", MetricType::Gauge};

// ---- vCPU scheduling (vcpu_sched.bpf.c) ----
inline constexpr MetricDesc kVcpuRunqueueLatency{
    "hvtel_vcpu_runqueue_latency_seconds",
    "Time vCPU threads spent runnable before getting a pCPU (wakeup or preemption to "
    "switch-in), per instance.", MetricType::Histogram};
inline constexpr MetricDesc kVcpuRunSeconds{
    "hvtel_vcpu_run_seconds_total", "Time the vCPU thread spent on a pCPU.", MetricType::Counter};
inline constexpr MetricDesc kVcpuWaitSeconds{
    "hvtel_vcpu_wait_seconds_total",
    "Time the vCPU thread was runnable but waiting for a pCPU (host-side steal).",
    MetricType::Counter};
inline constexpr MetricDesc kVcpuPreemptions{
    "hvtel_vcpu_preemptions_total", "Involuntary context switches of the vCPU thread.",
    MetricType::Counter};
inline constexpr MetricDesc kVcpuMigrations{
    "hvtel_vcpu_migrations_total", "Moves of the vCPU thread between pCPUs.", MetricType::Counter};

// Exit latency histograms: 1 us .. 17 s in powers of 4.
inline constexpr Log2Buckets kLatencyBuckets{10, 2, 34};

// ---- Inventory ----
inline constexpr MetricDesc kInstances{
    "hvtel_instances", "Instances known, by discovery source.", MetricType::Gauge};

// ---- The agent itself ----
inline constexpr MetricDesc kBuildInfo{
    "hvtel_build_info", "Build information; always 1.", MetricType::Gauge};
inline constexpr MetricDesc kProbeAttached{
    "hvtel_probe_attached",
    "1 when the probe is attached, 0 when it is not (see hvtel status for why); "
    "attach is the attach point in use.", MetricType::Gauge};
inline constexpr MetricDesc kBpfStatsEnabled{
    "hvtel_bpf_stats_enabled",
    "1 when kernel.bpf_stats_enabled is on, so the program run counters are live.",
    MetricType::Gauge};
inline constexpr MetricDesc kBpfProgramRuns{
    "hvtel_bpf_program_runs_total",
    "Runs of each attached BPF program (needs kernel.bpf_stats_enabled=1).", MetricType::Counter};
inline constexpr MetricDesc kBpfProgramRunSeconds{
    "hvtel_bpf_program_run_seconds_total",
    "CPU time spent in each attached BPF program (needs kernel.bpf_stats_enabled=1).",
    MetricType::Counter};
inline constexpr MetricDesc kBpfLostEvents{
    "hvtel_bpf_lost_events_total",
    "Kernel events not counted, by reason: unknown_thread, slots_full, discovery_full, "
    "slot_invalid, ringbuf_full.", MetricType::Counter};
inline constexpr MetricDesc kVcpuSlots{
    "hvtel_vcpu_slots", "Capacity of the in-kernel per-vCPU arrays (--max-vcpus).",
    MetricType::Gauge};
inline constexpr MetricDesc kVcpuSlotsUsed{
    "hvtel_vcpu_slots_used", "Slots in use by tracked threads: vCPU, emulator and I/O threads.",
    MetricType::Gauge};
inline constexpr MetricDesc kVcpuSlotOverflow{
    "hvtel_vcpu_slot_overflow_threads",
    "Threads of the instance that found no free slot and wait for one; nothing of them is "
    "counted meanwhile.", MetricType::Gauge};
inline constexpr MetricDesc kDiscoveryEvents{
    "hvtel_discovery_threads_total",
    "Threads handled by discovery, by event: named, retired, vanished (gone before "
    "they could be named), no_slot (found no free slot), error.", MetricType::Counter};

// ---- The agent process: the Go client's standard process metrics, same names
// and help texts, so dashboards made for any exporter work unchanged ----
inline constexpr MetricDesc kProcessCpuSeconds{
    "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
    MetricType::Counter};
inline constexpr MetricDesc kProcessResidentMemory{
    "process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge};
inline constexpr MetricDesc kProcessVirtualMemory{
    "process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge};
inline constexpr MetricDesc kProcessOpenFds{
    "process_open_fds", "Number of open file descriptors.", MetricType::Gauge};
inline constexpr MetricDesc kProcessMaxFds{
    "process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge};
inline constexpr MetricDesc kProcessStartTime{
    "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
    MetricType::Gauge};

}  // namespace hvtel::metrics::catalog
