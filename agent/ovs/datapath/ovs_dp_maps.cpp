#include "ovs/datapath/ovs_dp_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/bpf/percpu.h"

namespace hvtel::ovs_dp {

Result<KernelOvsDpReader> KernelOvsDpReader::from(bpf_map* upcalls, bpf_map* flows,
                                                  bpf_map* counters) {
  int u = bpf_map__fd(upcalls), f = bpf_map__fd(flows), c = bpf_map__fd(counters);
  if (u < 0 || f < 0 || c < 0) return fail("ovs_dp maps are not loaded");
  return KernelOvsDpReader(u, f, c);
}

namespace {

// Every (key, value) of a hash map. Entries are never deleted by the kernel
// side, so a plain get_next_key walk sees each one once.
template <typename K, typename V, typename F>
void walk(int fd, F&& f) {
  K key{}, next{};
  const K* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    V val{};
    if (bpf_map_lookup_elem(fd, &next, &val) == 0) f(next, val);
    key = next;
    prev = &key;
  }
}

}  // namespace

std::vector<UpcallSample> KernelOvsDpReader::upcalls() const {
  std::vector<UpcallSample> out;
  walk<hv_ovs_upcall_key, hv_ovs_upcall_val>(upcalls_fd_, [&](const auto& k, const auto& v) {
    out.push_back({{k.netns, k.dp_ifindex}, k.port, k.cmd, v.upcalls, v.failures});
  });
  return out;
}

std::vector<FlowOpSample> KernelOvsDpReader::flow_ops() const {
  std::vector<FlowOpSample> out;
  walk<hv_ovs_flow_key, __u64>(flows_fd_, [&](const auto& k, __u64 v) {
    out.push_back({{k.netns, k.dp_ifindex}, k.op, k.ok != 0, v});
  });
  return out;
}

Result<OvsCounters> KernelOvsDpReader::counters() const {
  OvsCounters out{};
  if (auto st = bpf::sum_percpu_array(counters_fd_, out); !st)
    return fail(st.error().context("hv_ovs_counters"));
  return out;
}

}  // namespace hvtel::ovs_dp
