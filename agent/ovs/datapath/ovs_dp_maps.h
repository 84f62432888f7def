// What the ovs_dp BPF object counted, as plain samples. The collector reads
// through the OvsDpReader interface so it is testable with a fake.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <vector>

#include "hvtel/abi.h"
#include "base/util/result.h"

struct bpf_map;

namespace hvtel::ovs_dp {

// A datapath as the kernel names it: its local port's ifindex in a netns.
struct DatapathRef {
  uint32_t netns = 0;
  int32_t ifindex = 0;  // 0: unknown
  auto operator<=>(const DatapathRef&) const = default;
};

struct UpcallSample {
  DatapathRef dp;
  uint32_t port = 0;  // datapath port number (in_port)
  uint32_t cmd = 0;   // HV_OVS_UPCALL_*
  uint64_t upcalls = 0;
  uint64_t failures = 0;
};

struct FlowOpSample {
  DatapathRef dp;
  uint32_t op = 0;  // enum hv_ovs_op
  bool ok = false;
  uint64_t count = 0;
};

using OvsCounters = std::array<uint64_t, HV_OVS_CNT_MAX>;

class OvsDpReader {
 public:
  virtual ~OvsDpReader() = default;
  virtual std::vector<UpcallSample> upcalls() const = 0;
  virtual std::vector<FlowOpSample> flow_ops() const = 0;
  virtual Result<OvsCounters> counters() const = 0;  // summed over CPUs
};

// Reads the maps of a loaded ovs_dp object (by fd: valid while the object lives).
class KernelOvsDpReader : public OvsDpReader {
 public:
  static Result<KernelOvsDpReader> from(bpf_map* upcalls, bpf_map* flows, bpf_map* counters);
  std::vector<UpcallSample> upcalls() const override;
  std::vector<FlowOpSample> flow_ops() const override;
  Result<OvsCounters> counters() const override;

 private:
  KernelOvsDpReader(int upcalls, int flows, int counters)
      : upcalls_fd_(upcalls), flows_fd_(flows), counters_fd_(counters) {}
  int upcalls_fd_, flows_fd_, counters_fd_;
};

}  // namespace hvtel::ovs_dp
