// The OVS port model: bridges, ports and interfaces with their Neutron/Nova
// identities, as an immutable snapshot built from the monitored OVSDB rows.
//
// Snapshots are published as shared_ptr<const PortModel>; readers keep theirs
// as long as they like. Timestamps use the steady clock so that they can be
// compared with rule gating windows; tests inject their own time points.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ovs/ovsdb/db.h"

namespace hvtel::ovsdb {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct InterfaceInfo {
  std::string uuid;
  std::string name;
  std::string type;          // "" (system), internal, vxlan, geneve, patch, dpdk, ...
  int64_t ofport = -1;       // -1: unassigned or failed
  std::string error;         // Interface.error, empty when none
  std::string link_state;    // up/down/""
  std::string admin_state;   // up/down/""
  std::string mac_in_use;
  std::map<std::string, std::string> external_ids;
  std::map<std::string, std::string> options;

  // From external_ids (empty when absent).
  std::string iface_id;      // Neutron port UUID
  std::string attached_mac;  // lower-cased
  std::string instance_id;   // vm-uuid (os-vif), else vm-id (libvirt)
  std::string iface_status;

  TimePoint created_at{};         // when this model first saw the row
  TimePoint changed_at{};         // last change of any column above
  TimePoint ofport_changed_at{};  // last change of ofport (creation counts)

  bool has_live_ofport() const { return ofport > 0; }
  bool operator==(const InterfaceInfo&) const = default;
};

struct PortInfo {
  std::string uuid;
  std::string name;
  std::optional<int64_t> tag;
  std::string vlan_mode;
  std::vector<int64_t> trunks;
  std::map<std::string, std::string> other_config;
  std::vector<InterfaceInfo> interfaces;  // sorted by name

  bool operator==(const PortInfo&) const = default;
};

struct BridgeInfo {
  std::string uuid;
  std::string name;
  std::string fail_mode;      // "", secure, standalone
  std::string datapath_type;  // "", system, netdev, dummy
  std::vector<std::string> protocols;
  std::map<std::string, std::string> external_ids;
  std::vector<PortInfo> ports;  // sorted by name

  TimePoint changed_at{};  // last change of the bridge, its ports or interfaces
  // ofports that disappeared from this bridge (deleted interface or changed
  // ofport), with when; bounded. Lets rules tell "just released" from "stale".
  std::map<int64_t, TimePoint> released_ofports;

  size_t interface_count() const;
  const InterfaceInfo* interface_by_ofport(int64_t ofport) const;
};

struct PortModel {
  uint64_t generation = 0;  // bumped on every applied update
  bool synced = false;      // the monitor's initial contents are in (false while reconnecting)
  TimePoint synced_at{};    // last full (re)sync
  std::map<std::string, std::string> ovs_external_ids;  // Open_vSwitch row
  std::vector<BridgeInfo> bridges;  // sorted by name

  // external_ids:ovn-remote present: ML2/OVN, the Neutron-OVS rules do not apply.
  bool is_ovn() const { return ovs_external_ids.count("ovn-remote") != 0; }

  const BridgeInfo* bridge(std::string_view name) const;
  const InterfaceInfo* interface_by_ofport(std::string_view bridge, int64_t ofport) const;
  const InterfaceInfo* interface_by_name(std::string_view name) const;
  const InterfaceInfo* interface_by_iface_id(std::string_view iface_id) const;
  // Bridge that holds an interface, or nullptr.
  const BridgeInfo* bridge_of_interface(std::string_view name) const;
  // Nova instance of an interface (external_ids vm-uuid/vm-id), nullopt when unknown.
  std::optional<std::string> instance_of(std::string_view interface_name) const;
  std::vector<std::string> bridge_names() const;

  // Content equality (timestamps and generation ignored).
  static bool same_content(const BridgeInfo& a, const BridgeInfo& b);

 private:
  friend PortModel build_port_model(const Database&, const PortModel*, TimePoint, uint64_t, bool);
  struct Loc {
    size_t bridge, port, iface;
  };
  const InterfaceInfo* at(const Loc& l) const;
  std::map<std::string, Loc, std::less<>> by_name_;
  std::map<std::string, Loc, std::less<>> by_iface_id_;
};

// Builds a snapshot from the raw rows. `prev` (may be null) carries timestamps
// forward by row UUID, so a resync after ovsdb-server restarts does not make
// every port look new. Rows not reachable from a Bridge are ignored.
PortModel build_port_model(const Database& db, const PortModel* prev, TimePoint now,
                           uint64_t generation, bool synced);

}  // namespace hvtel::ovsdb
