// Names for what the ovs_dp BPF object counts by number: datapaths (by the
// ifindex of their local port) and their ports (by datapath port number).
//
// DatapathDirectory asks the system (if_indextoname, the ovs_vport genetlink
// family); NameCache decides when to ask, so scrapes never trigger a netlink
// dump: at most one per datapath per kRetryUnknown while a port is unknown,
// and one per kMaxAge to notice renumbered ports.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ovs/datapath/ovs_dp_maps.h"
#include "base/util/result.h"

namespace hvtel::ovs_dp {

class DatapathDirectory {
 public:
  virtual ~DatapathDirectory() = default;
  // Inode of the agent's network namespace: only datapaths there can be named.
  virtual uint32_t netns() const = 0;
  virtual std::optional<std::string> interface_name(int32_t ifindex) const = 0;
  // Port number -> vport name of the datapath whose local port has this ifindex.
  virtual Result<std::map<uint32_t, std::string>> vports(int32_t dp_ifindex) const = 0;
};

// The real one: if_indextoname(3) and an OVS_VPORT_CMD_GET dump over genetlink.
class SystemDatapathDirectory : public DatapathDirectory {
 public:
  SystemDatapathDirectory();
  uint32_t netns() const override { return netns_; }
  std::optional<std::string> interface_name(int32_t ifindex) const override;
  Result<std::map<uint32_t, std::string>> vports(int32_t dp_ifindex) const override;

 private:
  uint32_t netns_ = 0;
};

// Parses the messages of an OVS_VPORT_CMD_GET dump (one recv buffer) into
// port -> name. Returns true when the buffer held NLMSG_DONE. Exposed for tests.
Result<bool> parse_vport_dump(const uint8_t* buf, size_t len, uint32_t seq,
                              std::map<uint32_t, std::string>& out);

class NameCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr std::chrono::seconds kRetryUnknown{10};
  static constexpr std::chrono::seconds kMaxAge{300};

  explicit NameCache(std::unique_ptr<DatapathDirectory> dir, Clock clock = {});

  // The `datapath` label: the local port's name ("ovs-system"); "unknown" for
  // ifindex 0; "ifindex:N@netns:I" when it cannot be named (other netns, gone).
  std::string datapath(const DatapathRef& dp);
  // The interface behind a datapath port, empty when unknown.
  std::string port(const DatapathRef& dp, uint32_t port_no);

  struct Stats {
    uint64_t dumps = 0;
    uint64_t dump_errors = 0;
  };
  Stats stats() const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Entry {
    std::optional<std::string> name;
    std::optional<TimePoint> name_tried;
    std::map<uint32_t, std::string> ports;
    std::optional<TimePoint> ports_tried;
  };
  bool local(const DatapathRef& dp) const { return dp.ifindex > 0 && dp.netns == dir_->netns(); }
  void refresh_ports(const DatapathRef& dp, Entry& e, TimePoint now);

  std::unique_ptr<DatapathDirectory> dir_;
  Clock clock_;
  mutable std::mutex mu_;
  std::map<DatapathRef, Entry> entries_;
  Stats stats_;
};

}  // namespace hvtel::ovs_dp
