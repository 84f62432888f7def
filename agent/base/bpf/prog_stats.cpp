#include "base/bpf/prog_stats.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

namespace hvtel::bpf {

std::vector<ProgStats> read_prog_stats(const std::vector<ProgramRef>& progs) {
  std::vector<ProgStats> out;
  for (const auto& p : progs) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(p.fd, &info, &len)) continue;
    out.push_back({p.name, info.run_cnt, info.run_time_ns, info.recursion_misses});
  }
  return out;
}

}  // namespace hvtel::bpf
