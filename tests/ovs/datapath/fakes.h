// Fakes for agent/ovs/datapath: the system directory and the map reader.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ovs/datapath/datapath_names.h"
#include "ovs/datapath/ovs_dp_maps.h"

namespace hvtel::ovs_dp::testing {

constexpr uint32_t kNetns = 4026531840u;  // the agent's netns in these tests

struct FakeDirectory : DatapathDirectory {
  std::map<int32_t, std::string> interfaces;                     // ifindex -> name
  std::map<int32_t, std::map<uint32_t, std::string>> datapaths;  // dp ifindex -> ports
  bool fail_dumps = false;
  mutable int name_calls = 0;
  mutable int dump_calls = 0;

  uint32_t netns() const override { return kNetns; }
  std::optional<std::string> interface_name(int32_t ifindex) const override {
    ++name_calls;
    auto it = interfaces.find(ifindex);
    if (it == interfaces.end()) return std::nullopt;
    return it->second;
  }
  Result<std::map<uint32_t, std::string>> vports(int32_t dp_ifindex) const override {
    ++dump_calls;
    if (fail_dumps) return fail("OVS_VPORT_CMD_GET: No such device");
    auto it = datapaths.find(dp_ifindex);
    if (it == datapaths.end()) return fail_errno(ENODEV, "OVS_VPORT_CMD_GET");
    return it->second;
  }
};

struct FakeReader : OvsDpReader {
  std::vector<UpcallSample> up;
  std::vector<FlowOpSample> flows;
  OvsCounters cnt{};
  bool fail_counters = false;
  std::vector<UpcallSample> upcalls() const override { return up; }
  std::vector<FlowOpSample> flow_ops() const override { return flows; }
  Result<OvsCounters> counters() const override {
    if (fail_counters) return fail("hv_ovs_counters: read per-CPU entry 0: Bad file descriptor");
    return cnt;
  }
};

// A steady clock the test moves by hand.
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::seconds(1000)};
  NameCache::Clock fn() {
    return [this] { return now; };
  }
};

}  // namespace hvtel::ovs_dp::testing
