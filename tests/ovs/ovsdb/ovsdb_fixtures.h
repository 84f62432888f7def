// Canned ovsdb-server traffic shared by the OVSDB unit tests.
#pragma once

#include <chrono>
#include <string>

#include "ovs/ovsdb/port_model.h"

namespace hvtel::ovsdb::testing {

inline TimePoint at(int seconds) { return TimePoint{} + std::chrono::seconds(seconds); }

// A monitor_cond reply (id 1) for br-int with a VM port, a bare port and the
// bridge's internal port, as ovsdb-server 3.1 sends it (defaults omitted).
inline std::string initial_reply(int id = 1) {
  return R"({"id":)" + std::to_string(id) + R"json(,"error":null,"result":{
  "Open_vSwitch":{"o1":{"initial":{"external_ids":["map",[["hostname","cmp1"]]]}}},
  "Bridge":{"b1":{"initial":{"name":"br-int","fail_mode":"secure","datapath_type":"netdev",
      "protocols":["set",["OpenFlow10","OpenFlow13"]],
      "ports":["set",[["uuid","p0"],["uuid","p1"],["uuid","p2"]]]}}},
  "Port":{
    "p0":{"initial":{"name":"br-int","interfaces":["uuid","i0"]}},
    "p1":{"initial":{"name":"tap1","tag":1,"interfaces":["uuid","i1"],
          "other_config":["map",[["net_uuid","n1"],["segmentation_id","100"]]]}},
    "p2":{"initial":{"name":"tap2","tag":4095,"vlan_mode":"trunk","trunks":4095,
          "interfaces":["uuid","i2"]}}},
  "Interface":{
    "i0":{"initial":{"name":"br-int","type":"internal","ofport":65534}},
    "i1":{"initial":{"name":"tap1","type":"internal","ofport":1,"link_state":"up",
          "admin_state":"up","mac_in_use":"fa:16:3e:00:00:01",
          "external_ids":["map",[["iface-id","port-1"],["attached-mac","FA:16:3E:00:00:01"],
                                 ["vm-uuid","vm-1"],["iface-status","active"]]]}},
    "i2":{"initial":{"name":"tap2","ofport":-1,"error":"could not open network device tap2 (No such device)",
          "external_ids":["map",[["iface-id","port-2"],["vm-id","vm-2"]]]}}}}})json";
}

inline std::string update2(const std::string& tables) {
  return R"({"id":null,"method":"update2","params":["hvtel",)" + tables + "]}";
}

}  // namespace hvtel::ovsdb::testing
