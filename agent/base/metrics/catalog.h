// The metric catalogue: every metric hvtel exports, described once, here.
// Collectors only fill values and labels (FamilyBuilder). Names and labels are
// public interface (docs/metrics.md documents each one, checked by
// Catalog.EveryMetricIsDocumented); keep Prometheus conventions: base units,
// _total for counters, _seconds.
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

// ---- Instances: libvirt and Nova (libvirt_collector.cpp) ----
inline constexpr MetricDesc kInstanceInfo{
    "hvtel_instance_info",
    "Instance identity (libvirt and Nova metadata, else the VMM's command line); join on "
    "instance_id.", MetricType::Gauge};
inline constexpr MetricDesc kInstanceVcpus{
    "hvtel_instance_vcpus", "Online vCPUs configured for the instance.", MetricType::Gauge};
inline constexpr MetricDesc kLibvirtUp{
    "hvtel_libvirt_up", "1 while the read-only libvirt connection is open.", MetricType::Gauge};
inline constexpr MetricDesc kLibvirtErrors{
    "hvtel_libvirt_errors_total",
    "libvirt inventory problems by kind (parse, metadata, thread_map, rpc, connect).",
    MetricType::Counter};
inline constexpr MetricDesc kLibvirtEvents{
    "hvtel_libvirt_events_total", "libvirt domain events received, by type.", MetricType::Counter};
inline constexpr MetricDesc kLibvirtReconnects{
    "hvtel_libvirt_reconnects_total",
    "Successful reconnections after the libvirt connection was lost.", MetricType::Counter};
inline constexpr MetricDesc kLibvirtResyncs{
    "hvtel_libvirt_resyncs_total", "Full libvirt inventories.", MetricType::Counter};

// ---- Pinning violations (pinning/violations.cpp) ----
inline constexpr MetricDesc kPinningViolations{
    "hvtel_pinning_violations_total",
    "Pinning violations per instance and class: static classes count each inactive-to-active "
    "transition, kernel classes count detected events.", MetricType::Counter};
inline constexpr MetricDesc kPinningViolationSeconds{
    "hvtel_pinning_violation_seconds_total",
    "Time an instance spent in a pinning violation of a class (static: while active between "
    "reconciles; kernel: runtime reported by the BPF side).", MetricType::Counter};
inline constexpr MetricDesc kPinningViolationActive{
    "hvtel_pinning_violation_active",
    "1 while a static pinning violation (affinity_drift, dedicated_overlap, "
    "emulator_policy_mismatch, shared_on_dedicated, thread_policy, floating_stacking, numa_misplaced, "
    "pinned_cpu_unavailable) holds for an instance.",
    MetricType::Gauge};
inline constexpr MetricDesc kPcpuForeignSeconds{
    "hvtel_pcpu_foreign_seconds_total",
    "Runtime of non-owner tasks on a pCPU dedicated to an instance, by intruder kind.",
    MetricType::Counter};
inline constexpr MetricDesc kPinningEventsDropped{
    "hvtel_pinning_events_dropped_total",
    "Pinning violation events dropped by the per-(instance, class) rate limit.",
    MetricType::Counter};
inline constexpr MetricDesc kPinningOrphanUpdates{
    "hvtel_pinning_orphan_updates_total",
    "Kernel counts, foreign time or events for instances without tracked intent, dropped.",
    MetricType::Counter};
inline constexpr MetricDesc kPinningConfigErrors{
    "hvtel_pinning_config_errors_total",
    "Pinning config files (nova.conf, inventory) that failed to load or parse.",
    MetricType::Counter};

// ---- OpenFlow tables (ovs/openflow/ovs_collector.cpp) ----
inline constexpr MetricDesc kOvsFlows{
    "hvtel_ovs_flows", "OpenFlow flows per bridge and table (flow monitor mirror)",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsFlowChanges{
    "hvtel_ovs_flow_changes_total", "OpenFlow flow changes seen by the flow monitor",
    MetricType::Counter};
inline constexpr MetricDesc kOvsMonitorUp{
    "hvtel_ovs_monitor_up",
    "1 when the bridge flow monitor is connected and past its initial snapshot",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsMonitorViewComplete{
    "hvtel_ovs_monitor_view_complete", "1 when the mirror is complete (not resyncing, not paused)",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsMonitorResyncs{
    "hvtel_ovs_monitor_resyncs_total", "Completed full flow snapshots (one per connection)",
    MetricType::Counter};
inline constexpr MetricDesc kOvsMonitorInfo{
    "hvtel_ovs_monitor_info",
    "1 per bridge, labelled with the flow monitor protocol its current or last connection "
    "negotiated", MetricType::Gauge};
inline constexpr MetricDesc kOvsMonitorVersionMismatches{
    "hvtel_ovs_monitor_version_mismatches_total",
    "Flow monitor connections that failed because the bridge allows no OpenFlow version hvtel "
    "offers", MetricType::Counter};

// ---- OVSDB (ovs/ovsdb/metrics.cpp) ----
inline constexpr MetricDesc kOvsdbUp{
    "hvtel_ovsdb_up", "1 when connected to ovsdb-server with the monitor in sync, else 0.",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsInterfaces{
    "hvtel_ovs_interfaces", "Interfaces on each OVS bridge (OVSDB Interface rows).",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsInterfaceInfo{
    "hvtel_ovs_interface_info",
    "1 for each OVS interface that carries a Neutron port (iface-id) or Nova instance (vm-uuid).",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsdbConnects{
    "hvtel_ovsdb_connects_total", "Successful connections to ovsdb-server (each one resyncs).",
    MetricType::Counter};
inline constexpr MetricDesc kOvsdbDisconnects{
    "hvtel_ovsdb_disconnects_total", "Connections to ovsdb-server lost or dropped after an error.",
    MetricType::Counter};
inline constexpr MetricDesc kOvsdbParseErrors{
    "hvtel_ovsdb_parse_errors_total",
    "Malformed JSON received from ovsdb-server (framing or syntax).", MetricType::Counter};
inline constexpr MetricDesc kOvsdbProtocolErrors{
    "hvtel_ovsdb_protocol_errors_total",
    "Well-formed JSON from ovsdb-server that is not a valid reply or update.",
    MetricType::Counter};
inline constexpr MetricDesc kOvsdbUpdates{
    "hvtel_ovsdb_updates_total", "OVSDB update notifications applied to the port model.",
    MetricType::Counter};

// ---- Dirty-flow rules (ovs/rules/rules_metrics.cpp, ovs/service/ovs_service.cpp) ----
inline constexpr MetricDesc kOvsDirtyFlows{
    "hvtel_ovs_dirty_flows",
    "Flows or ports currently violating a dirty-flow rule, per bridge and rule.",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsDirtyFlowRulesHeld{
    "hvtel_ovs_dirty_flow_rules_held",
    "1 while gating (incomplete view, churn) holds a bridge's flow rules at their last value.",
    MetricType::Gauge};
inline constexpr MetricDesc kOvsRuleEvaluations{
    "hvtel_ovs_rule_evaluations_total",
    "Dirty-flow rule evaluations completed (one per evaluate interval).", MetricType::Counter};
inline constexpr MetricDesc kOvsDirtyFlowEvents{
    "hvtel_ovs_dirty_flow_events_total",
    "Violations that newly appeared (each logged once), per bridge and rule.",
    MetricType::Counter};

// ---- OVS kernel datapath (ovs_dp.bpf.c, ovs/datapath/ovs_dp_collector.cpp) ----
inline constexpr MetricDesc kOvsUpcalls{
    "hvtel_ovs_upcalls_total",
    "Upcalls from the Open vSwitch kernel datapath to ovs-vswitchd, by input port and cmd "
    "(miss: no megaflow matched, action: userspace() action). miss summed over a datapath is "
    "its n_missed.", MetricType::Counter};
inline constexpr MetricDesc kOvsUpcallFailures{
    "hvtel_ovs_upcall_failures_total",
    "Upcalls the kernel datapath could not queue to userspace (no listener, socket queue "
    "full), by input port; summed over a datapath this is its n_lost.", MetricType::Counter};
inline constexpr MetricDesc kOvsDatapathFlowChanges{
    "hvtel_ovs_datapath_flow_changes_total",
    "Successful datapath flow-table commands (megaflow installs, action updates, deletes and "
    "flushes), by op: new, set, del.", MetricType::Counter};
inline constexpr MetricDesc kOvsDatapathFlowChangeErrors{
    "hvtel_ovs_datapath_flow_change_errors_total",
    "Datapath flow-table commands that returned an error, by op: new, set, del.",
    MetricType::Counter};
inline constexpr MetricDesc kOvsDatapathLostEvents{
    "hvtel_ovs_datapath_lost_events_total",
    "Datapath events hvtel could not count or attribute, by reason: upcall_map_full, "
    "flow_map_full, unattributed_failure.", MetricType::Counter};

// ---- The endpoint (base/web/web_server.cpp) ----
inline constexpr MetricDesc kWebConfigErrors{
    "hvtel_web_config_errors_total",
    "--web.config.file loads that failed (the previous configuration stays in force).",
    MetricType::Counter};

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

// Every entry above, for the checks that the catalogue is the whole interface.
inline constexpr const MetricDesc* kAll[] = {
    &kVcpuExits, &kVcpuExitHandling, &kVcpuUserspaceExits, &kVcpuVmmHandling, &kVcpuVmmSampleRatio,
    &kVcpuThreads, &kVcpuRunqueueLatency, &kVcpuRunSeconds, &kVcpuWaitSeconds, &kVcpuPreemptions,
    &kVcpuMigrations, &kInstances, &kBuildInfo, &kProbeAttached, &kBpfStatsEnabled,
    &kBpfProgramRuns, &kBpfProgramRunSeconds, &kBpfLostEvents, &kVcpuSlots, &kVcpuSlotsUsed,
    &kVcpuSlotOverflow, &kDiscoveryEvents, &kInstanceInfo, &kInstanceVcpus, &kLibvirtUp,
    &kLibvirtErrors, &kLibvirtEvents, &kLibvirtReconnects, &kLibvirtResyncs, &kPinningViolations,
    &kPinningViolationSeconds, &kPinningViolationActive, &kPcpuForeignSeconds,
    &kPinningEventsDropped, &kPinningOrphanUpdates, &kPinningConfigErrors, &kOvsFlows,
    &kOvsFlowChanges, &kOvsMonitorUp, &kOvsMonitorViewComplete, &kOvsMonitorResyncs,
    &kOvsMonitorInfo, &kOvsMonitorVersionMismatches, &kOvsdbUp, &kOvsInterfaces,
    &kOvsInterfaceInfo, &kOvsdbConnects, &kOvsdbDisconnects, &kOvsdbParseErrors,
    &kOvsdbProtocolErrors, &kOvsdbUpdates, &kOvsDirtyFlows, &kOvsDirtyFlowRulesHeld,
    &kOvsRuleEvaluations, &kOvsDirtyFlowEvents, &kOvsUpcalls, &kOvsUpcallFailures,
    &kOvsDatapathFlowChanges, &kOvsDatapathFlowChangeErrors, &kOvsDatapathLostEvents,
    &kWebConfigErrors, &kProcessCpuSeconds, &kProcessResidentMemory, &kProcessVirtualMemory,
    &kProcessOpenFds, &kProcessMaxFds, &kProcessStartTime,
};

// Groups --metrics-disable accepts besides single metric names (docs/metrics.md
// lists them): the families one switch of the operator's mind covers.
struct MetricGroup {
  const char* name;
  std::initializer_list<const MetricDesc*> members;
};
inline constexpr MetricGroup kGroups[] = {
    {"exits",
     {&kVcpuExits, &kVcpuExitHandling, &kVcpuUserspaceExits, &kVcpuVmmHandling, &kVcpuVmmSampleRatio}},
    {"exit_latency", {&kVcpuExitHandling, &kVcpuVmmHandling, &kVcpuVmmSampleRatio}},
    {"sched",
     {&kVcpuRunqueueLatency, &kVcpuRunSeconds, &kVcpuWaitSeconds, &kVcpuPreemptions, &kVcpuMigrations}},
    {"bpf_stats", {&kBpfStatsEnabled, &kBpfProgramRuns, &kBpfProgramRunSeconds}},
    {"ovs_datapath",
     {&kOvsUpcalls, &kOvsUpcallFailures, &kOvsDatapathFlowChanges, &kOvsDatapathFlowChangeErrors,
      &kOvsDatapathLostEvents}},
    {"process",
     {&kProcessCpuSeconds, &kProcessResidentMemory, &kProcessVirtualMemory, &kProcessOpenFds, &kProcessMaxFds,
      &kProcessStartTime}},
};

}  // namespace hvtel::metrics::catalog
