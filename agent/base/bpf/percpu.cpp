#include "base/bpf/percpu.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <string>
#include <vector>

namespace hvtel::bpf {

Status sum_percpu_array(int map_fd, std::span<uint64_t> out) {
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return fail_errno(-ncpus, "number of possible CPUs");
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
  for (uint32_t k = 0; k < out.size(); ++k) {
    if (bpf_map_lookup_elem(map_fd, &k, per_cpu.data()) != 0)
      return fail_errno(errno, "read per-CPU entry " + std::to_string(k));
    uint64_t sum = 0;
    for (uint64_t v : per_cpu) sum += v;
    out[k] = sum;
  }
  return {};
}

}  // namespace hvtel::bpf
