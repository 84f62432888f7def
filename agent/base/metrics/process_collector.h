// ProcessCollector: the agent's own CPU, memory and file descriptors, as the
// standard process_* metrics of the Go client (node_exporter, ebpf_exporter).
// Read from /proc/self at each scrape; a value that cannot be read is left out.
#pragma once

#include <prometheus/collectable.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/util/result.h"

namespace hvtel::metrics {

// The fields of /proc/<pid>/stat the process metrics use.
struct ProcessStat {
  uint64_t utime_ticks = 0;  // field 14
  uint64_t stime_ticks = 0;  // field 15
  uint64_t start_ticks = 0;  // field 22: since boot
  uint64_t vsize_bytes = 0;  // field 23
  uint64_t rss_pages = 0;    // field 24
};

Result<ProcessStat> parse_process_stat(std::string_view line);
// The boot time (btime, unix seconds) from the text of /proc/stat.
Result<uint64_t> parse_boot_time(std::string_view proc_stat);

class ProcessCollector : public prometheus::Collectable {
 public:
  // proc_root: "/proc", or a fixture directory in tests.
  explicit ProcessCollector(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string proc_root_;
};

}  // namespace hvtel::metrics
