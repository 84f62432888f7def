#include "app/agent_collector.h"

#include <map>

#include "hvtel/version.h"
#include "base/metrics/catalog.h"
#include "base/util/files.h"
#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::app {

using metrics::append;
using metrics::FamilyBuilder;
using metrics::Labels;
namespace catalog = metrics::catalog;

std::vector<prometheus::MetricFamily> AgentCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;

  FamilyBuilder build(catalog::kBuildInfo);
  build.add({{"version", HVTEL_VERSION}, {"abi", std::to_string(HV_ABI_VERSION)}}, 1);
  append(out, std::move(build));

  const auto probes = probe_source_ ? probe_source_() : probes_;
  const auto programs = program_source_ ? program_source_() : programs_;
  FamilyBuilder attached(catalog::kProbeAttached);
  for (const auto& p : probes) {
    attached.add({{"probe", p.probe}, {"attach", p.attach ? bpf::attach_name(*p.attach) : "none"}},
                 p.attached ? 1 : 0);
  }
  append(out, std::move(attached));

  bool stats_on = false;
  if (auto s = read_file("/proc/sys/kernel/bpf_stats_enabled")) stats_on = trim(*s) == "1";
  FamilyBuilder enabled(catalog::kBpfStatsEnabled);
  enabled.add({}, stats_on ? 1 : 0);
  append(out, std::move(enabled));

  FamilyBuilder runs(catalog::kBpfProgramRuns);
  FamilyBuilder run_seconds(catalog::kBpfProgramRunSeconds);
  // Disabled families cost no bpf() reads.
  const bool want_stats =
      selection_.enabled(catalog::kBpfProgramRuns) || selection_.enabled(catalog::kBpfProgramRunSeconds);
  for (const auto& s : want_stats ? bpf::read_prog_stats(programs) : std::vector<bpf::ProgStats>{}) {
    runs.add({{"program", s.name}}, static_cast<double>(s.run_cnt));
    run_seconds.add({{"program", s.name}}, static_cast<double>(s.run_time_ns) / 1e9);
  }
  append(out, std::move(runs));
  append(out, std::move(run_seconds));

  auto counters = selection_.enabled(catalog::kBpfLostEvents)
                      ? maps_.counters()
                      : Result<std::array<uint64_t, HV_CNT_MAX>>(fail("disabled"));
  if (counters) {
    const auto* c = &*counters;
    FamilyBuilder lost(catalog::kBpfLostEvents);
    lost.add({{"reason", "unknown_thread"}}, static_cast<double>((*c)[HV_CNT_UNKNOWN_THREAD]));
    lost.add({{"reason", "slots_full"}}, static_cast<double>((*c)[HV_CNT_SLOTS_FULL]));
    lost.add({{"reason", "discovery_full"}}, static_cast<double>((*c)[HV_CNT_NEW_THREAD_FULL]));
    lost.add({{"reason", "slot_invalid"}}, static_cast<double>((*c)[HV_CNT_SLOT_INVALID]));
    lost.add({{"reason", "ringbuf_full"}}, static_cast<double>((*c)[HV_CNT_RINGBUF_FULL]));
    append(out, std::move(lost));
  } else if (selection_.enabled(catalog::kBpfLostEvents)) {
    // Left out rather than 0: a drop to 0 would read as a counter reset.
    log::warn("metrics", "hvtel_bpf_lost_events_total: {}", counters.error().message);
  }

  FamilyBuilder slots(catalog::kVcpuSlots);
  slots.add({}, maps_.slot_count());
  append(out, std::move(slots));

  FamilyBuilder used(catalog::kVcpuSlotsUsed);
  FamilyBuilder overflow(catalog::kVcpuSlotOverflow);
  FamilyBuilder disc(catalog::kDiscoveryEvents);
  FamilyBuilder instances(catalog::kInstances);
  tracker_.read([&](const auto& insts, const discovery::TrackerStats& st) {
    size_t n = 0;
    std::map<std::string, size_t> by_source;
    for (const auto& [_, inst] : insts) {
      // Every kind draws from the one pool.
      n += inst.vcpus.size();
      for (const auto& o : inst.others) n += o.slot != HV_NO_SLOT ? 1 : 0;
      overflow.add({{"instance_id", inst.instance_id}}, static_cast<double>(inst.waiting.size()));
      ++by_source[model::source_name(inst.source)];
    }
    used.add({}, static_cast<double>(n));
    disc.add({{"event", "named"}}, static_cast<double>(st.threads_named));
    disc.add({{"event", "retired"}}, static_cast<double>(st.threads_retired));
    disc.add({{"event", "vanished"}}, static_cast<double>(st.vanished));
    disc.add({{"event", "no_slot"}}, static_cast<double>(st.no_slot));
    disc.add({{"event", "error"}}, static_cast<double>(st.errors));
    for (const char* s : {"procfs", "libvirt", "inventory"})
      instances.add({{"source", s}}, static_cast<double>(by_source[s]));
  });
  append(out, std::move(used));
  append(out, std::move(overflow));
  append(out, std::move(disc));
  append(out, std::move(instances));
  return out;
}

}  // namespace hvtel::app
