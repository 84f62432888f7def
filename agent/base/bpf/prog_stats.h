// Run counters of loaded BPF programs (kernel.bpf_stats_enabled).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hvtel::bpf {

struct ProgramRef {
  std::string name;  // program name in the object, the `program` label
  int fd;
};

struct ProgStats {
  std::string name;
  uint64_t run_cnt = 0;
  uint64_t run_time_ns = 0;
  uint64_t recursion_misses = 0;
};

// One bpf_obj_get_info_by_fd per program; unreadable programs are skipped.
std::vector<ProgStats> read_prog_stats(const std::vector<ProgramRef>& progs);

}  // namespace hvtel::bpf
