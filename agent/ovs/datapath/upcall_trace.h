// On-demand upcall tracing (`hvtel trace upcalls`): the trace_upcalls BPF
// object, loaded and attached only while someone follows, and what turns its
// raw events into named lines: the datapath and port by number (as the
// always-on collector names them), the frame's headers decoded here, and the
// instance behind the input interface from a lookup the caller supplies (the
// taps a VMM holds). Lifecycle, rate limit, counters and drop reports are
// those of every trace (base/bpf/trace.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bpf/trace.h"
#include "base/util/result.h"
#include "hvtel/abi.h"
#include "ovs/datapath/datapath_names.h"

namespace hvtel::ovs_dp {

// The instance an input interface belongs to.
struct UpcallOwner {
  std::string instance_id;
  std::string instance_name;
  pid_t pid = 0;
};

// One upcall, named.
struct UpcallRecord {
  uint64_t ts_ns = 0;
  std::string datapath;  // "ovs-system"
  std::string port;      // the interface the packet came in on; "port N" when unknown
  uint32_t port_no = 0;
  std::string cmd;   // "miss", "action"
  uint32_t len = 0;  // bytes of the packet
  uint32_t cpu = 0;
  std::string packet;  // its headers, decoded (describe_frame)
  std::string instance_id;
  std::string instance_name;
};

// The headers of a frame on one line: "52:54:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype 0x88b5",
// then "vlan 10", "arp who-has 10.0.0.2 tell 10.0.0.1", "10.0.0.1.34567 > 10.0.0.2.80 tcp",
// "fe80::1 > ff02::2 icmp6 133". What the bytes do not cover ends the line; none gives "".
std::string describe_frame(const uint8_t* hdr, size_t len);

// Names upcalls: datapaths and ports through a NameCache, instances through `owner`.
class UpcallNamer {
 public:
  using OwnerLookup = std::function<std::optional<UpcallOwner>(const std::string& iface)>;
  UpcallNamer(std::shared_ptr<NameCache> names, OwnerLookup owner)
      : names_(std::move(names)), owner_(std::move(owner)) {}
  UpcallRecord describe(const hv_trace_upcall& e);

 private:
  std::shared_ptr<NameCache> names_;
  OwnerLookup owner_;
};

// "instance-0000002a     tap1234  miss    98B  52:54:… > …": the line without its time.
std::string format_upcall_text(const UpcallRecord& r);
std::string format_upcall_line(const UpcallRecord& r, int64_t wall_offset_ns);
// The fields of one upcall, as NDJSON (with "type":"upcall" and "time_ns") and in the agent's events.
nlohmann::ordered_json upcall_fields(const UpcallRecord& r, uint64_t dropped);
std::string upcall_json(const UpcallRecord& r, int64_t wall_offset_ns, uint64_t dropped);
std::string format_upcall_drop_line(const bpf::TraceCounts& c, const bpf::TraceConfig& cfg);

// The loaded and attached trace_upcalls object; detached and unloaded on destruction.
class UpcallTracer {
 public:
  // Every upcall, or (`ifindexes` given) only those of packets that came in on these
  // interfaces of the agent's network namespace.
  static Result<std::unique_ptr<UpcallTracer>> start(bpf::TraceConfig cfg,
                                                     std::optional<std::set<uint32_t>> ifindexes);
  // Replaces the followed interfaces (those of a VMM that added or removed a tap).
  Status follow(const std::set<uint32_t>& ifindexes);
  Status poll(int timeout_ms, const std::function<void(const hv_trace_upcall&)>& on_event);
  Result<bpf::TraceCounts> counts() const { return object_->counts(); }
  // "ovs_dp_upcall=tp_btf".
  const std::string& attach_summary() const { return object_->attach_summary(); }

 private:
  UpcallTracer(std::unique_ptr<bpf::TraceObject> object, int ifindex_fd)
      : object_(std::move(object)), ifindex_fd_(ifindex_fd) {}
  std::unique_ptr<bpf::TraceObject> object_;
  int ifindex_fd_;
  std::set<uint32_t> followed_;
};

}  // namespace hvtel::ovs_dp
