// Reading BPF_MAP_TYPE_PERCPU_ARRAY counters: one slot per possible CPU.
//
// A failed read is an error, not a 0: a counter that drops to 0 for one scrape
// looks like a reset to rate(), so callers leave the family out instead.
#pragma once

#include <cstdint>
#include <span>

#include "base/util/result.h"

namespace hvtel::bpf {

// out[k] = sum over CPUs of entry k, for k < out.size().
Status sum_percpu_array(int map_fd, std::span<uint64_t> out);

}  // namespace hvtel::bpf
