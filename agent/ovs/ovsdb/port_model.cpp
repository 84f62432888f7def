#include "ovs/ovsdb/port_model.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace hvtel::ovsdb {
namespace {

// Old entries in released_ofports stop mattering once they are far older than
// any gating window; the cap keeps a flapping host bounded.
constexpr auto kReleasedHorizon = std::chrono::hours(1);
constexpr size_t kReleasedCap = 4096;

const Datum* col(const Row& row, const char* name) {
  auto it = row.find(name);
  return it == row.end() ? nullptr : &it->second;
}
std::string str(const Row& row, const char* name) {
  const Datum* d = col(row, name);
  if (d == nullptr) return {};
  return d->string().value_or("");
}
std::optional<int64_t> integer(const Row& row, const char* name) {
  const Datum* d = col(row, name);
  if (d == nullptr) return std::nullopt;
  return d->integer();
}
std::map<std::string, std::string> smap(const Row& row, const char* name) {
  const Datum* d = col(row, name);
  return d == nullptr ? std::map<std::string, std::string>{} : d->string_map();
}
std::vector<std::string> strings(const Row& row, const char* name) {
  const Datum* d = col(row, name);
  return d == nullptr ? std::vector<std::string>{} : d->strings();
}
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
std::string get_or(const std::map<std::string, std::string>& m, const char* k) {
  auto it = m.find(k);
  return it == m.end() ? std::string{} : it->second;
}

const Table& table(const Database& db, const char* name) {
  static const Table kEmpty;
  auto it = db.find(name);
  return it == db.end() ? kEmpty : it->second;
}

InterfaceInfo make_interface(const std::string& uuid, const Row& row) {
  InterfaceInfo i;
  i.uuid = uuid;
  i.name = str(row, "name");
  i.type = str(row, "type");
  i.ofport = integer(row, "ofport").value_or(-1);
  i.error = str(row, "error");
  i.link_state = str(row, "link_state");
  i.admin_state = str(row, "admin_state");
  i.mac_in_use = str(row, "mac_in_use");
  i.external_ids = smap(row, "external_ids");
  i.options = smap(row, "options");
  i.iface_id = get_or(i.external_ids, "iface-id");
  i.attached_mac = lower(get_or(i.external_ids, "attached-mac"));
  i.instance_id = get_or(i.external_ids, "vm-uuid");
  if (i.instance_id.empty()) i.instance_id = get_or(i.external_ids, "vm-id");
  i.iface_status = get_or(i.external_ids, "iface-status");
  return i;
}

// Content equality without the timestamps.
bool same_interface(InterfaceInfo a, InterfaceInfo b) {
  a.created_at = a.changed_at = a.ofport_changed_at = {};
  b.created_at = b.changed_at = b.ofport_changed_at = {};
  return a == b;
}

}  // namespace

size_t BridgeInfo::interface_count() const {
  size_t n = 0;
  for (const auto& p : ports) n += p.interfaces.size();
  return n;
}

const InterfaceInfo* BridgeInfo::interface_by_ofport(int64_t ofport) const {
  if (ofport <= 0) return nullptr;
  for (const auto& p : ports) {
    for (const auto& i : p.interfaces) {
      if (i.ofport == ofport) return &i;
    }
  }
  return nullptr;
}

bool PortModel::same_content(const BridgeInfo& a, const BridgeInfo& b) {
  if (a.uuid != b.uuid || a.name != b.name || a.fail_mode != b.fail_mode ||
      a.datapath_type != b.datapath_type || a.protocols != b.protocols ||
      a.external_ids != b.external_ids || a.ports.size() != b.ports.size()) {
    return false;
  }
  for (size_t p = 0; p < a.ports.size(); ++p) {
    const PortInfo& pa = a.ports[p];
    const PortInfo& pb = b.ports[p];
    if (pa.uuid != pb.uuid || pa.name != pb.name || pa.tag != pb.tag ||
        pa.vlan_mode != pb.vlan_mode || pa.trunks != pb.trunks ||
        pa.other_config != pb.other_config || pa.interfaces.size() != pb.interfaces.size()) {
      return false;
    }
    for (size_t i = 0; i < pa.interfaces.size(); ++i) {
      if (!same_interface(pa.interfaces[i], pb.interfaces[i])) return false;
    }
  }
  return true;
}

const InterfaceInfo* PortModel::at(const Loc& l) const {
  return &bridges[l.bridge].ports[l.port].interfaces[l.iface];
}

const BridgeInfo* PortModel::bridge(std::string_view name) const {
  for (const auto& b : bridges) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

const InterfaceInfo* PortModel::interface_by_ofport(std::string_view bridge_name,
                                                    int64_t ofport) const {
  const BridgeInfo* b = bridge(bridge_name);
  return b == nullptr ? nullptr : b->interface_by_ofport(ofport);
}

const InterfaceInfo* PortModel::interface_by_name(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : at(it->second);
}

const InterfaceInfo* PortModel::interface_by_iface_id(std::string_view iface_id) const {
  auto it = by_iface_id_.find(iface_id);
  return it == by_iface_id_.end() ? nullptr : at(it->second);
}

const BridgeInfo* PortModel::bridge_of_interface(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &bridges[it->second.bridge];
}

std::optional<std::string> PortModel::instance_of(std::string_view interface_name) const {
  const InterfaceInfo* i = interface_by_name(interface_name);
  if (i == nullptr || i->instance_id.empty()) return std::nullopt;
  return i->instance_id;
}

std::vector<std::string> PortModel::bridge_names() const {
  std::vector<std::string> out;
  out.reserve(bridges.size());
  for (const auto& b : bridges) out.push_back(b.name);
  return out;
}

PortModel build_port_model(const Database& db, const PortModel* prev, TimePoint now,
                           uint64_t generation, bool synced) {
  PortModel m;
  m.generation = generation;
  m.synced = synced;
  m.synced_at = prev != nullptr && prev->synced ? prev->synced_at : now;

  for (const auto& [uuid, row] : table(db, "Open_vSwitch")) {
    m.ovs_external_ids = smap(row, "external_ids");
    break;  // the table has exactly one row
  }

  // Previous interfaces and bridges by UUID, to carry timestamps forward.
  std::map<std::string, const InterfaceInfo*> prev_ifaces;
  std::map<std::string, const BridgeInfo*> prev_bridges;
  if (prev != nullptr) {
    for (const auto& b : prev->bridges) {
      prev_bridges[b.uuid] = &b;
      for (const auto& p : b.ports) {
        for (const auto& i : p.interfaces) prev_ifaces[i.uuid] = &i;
      }
    }
  }

  const Table& ports = table(db, "Port");
  const Table& ifaces = table(db, "Interface");
  for (const auto& [buuid, brow] : table(db, "Bridge")) {
    BridgeInfo b;
    b.uuid = buuid;
    b.name = str(brow, "name");
    b.fail_mode = str(brow, "fail_mode");
    b.datapath_type = str(brow, "datapath_type");
    b.protocols = strings(brow, "protocols");
    b.external_ids = smap(brow, "external_ids");
    for (const auto& puuid : strings(brow, "ports")) {
      auto pit = ports.find(puuid);
      if (pit == ports.end()) continue;  // referential integrity: transient only
      const Row& prow = pit->second;
      PortInfo p;
      p.uuid = puuid;
      p.name = str(prow, "name");
      p.tag = integer(prow, "tag");
      p.vlan_mode = str(prow, "vlan_mode");
      if (const Datum* t = col(prow, "trunks")) p.trunks = t->integers();
      p.other_config = smap(prow, "other_config");
      for (const auto& iuuid : strings(prow, "interfaces")) {
        auto iit = ifaces.find(iuuid);
        if (iit == ifaces.end()) continue;
        InterfaceInfo i = make_interface(iuuid, iit->second);
        auto old = prev_ifaces.find(iuuid);
        if (old == prev_ifaces.end()) {
          i.created_at = i.changed_at = i.ofport_changed_at = now;
        } else {
          const InterfaceInfo& o = *old->second;
          i.created_at = o.created_at;
          i.changed_at = same_interface(i, o) ? o.changed_at : now;
          i.ofport_changed_at = i.ofport == o.ofport ? o.ofport_changed_at : now;
        }
        p.interfaces.push_back(std::move(i));
      }
      std::sort(p.interfaces.begin(), p.interfaces.end(),
                [](const auto& x, const auto& y) { return x.name < y.name; });
      b.ports.push_back(std::move(p));
    }
    std::sort(b.ports.begin(), b.ports.end(),
              [](const auto& x, const auto& y) { return x.name < y.name; });

    auto pb = prev_bridges.find(buuid);
    if (pb == prev_bridges.end()) {
      b.changed_at = now;
    } else {
      const BridgeInfo& o = *pb->second;
      b.changed_at = PortModel::same_content(b, o) ? o.changed_at : now;
      std::set<int64_t> live;
      for (const auto& p : b.ports) {
        for (const auto& i : p.interfaces) {
          if (i.has_live_ofport()) live.insert(i.ofport);
        }
      }
      b.released_ofports = o.released_ofports;
      for (const auto& p : o.ports) {
        for (const auto& i : p.interfaces) {
          if (i.has_live_ofport() && live.count(i.ofport) == 0) b.released_ofports[i.ofport] = now;
        }
      }
      for (auto it = b.released_ofports.begin(); it != b.released_ofports.end();) {
        bool stale = now - it->second > kReleasedHorizon;
        it = live.count(it->first) != 0 || stale ? b.released_ofports.erase(it) : std::next(it);
      }
      while (b.released_ofports.size() > kReleasedCap) {
        auto oldest = std::min_element(
            b.released_ofports.begin(), b.released_ofports.end(),
            [](const auto& x, const auto& y) { return x.second < y.second; });
        b.released_ofports.erase(oldest);
      }
    }
    m.bridges.push_back(std::move(b));
  }
  std::sort(m.bridges.begin(), m.bridges.end(),
            [](const auto& x, const auto& y) { return x.name < y.name; });

  for (size_t bi = 0; bi < m.bridges.size(); ++bi) {
    for (size_t pi = 0; pi < m.bridges[bi].ports.size(); ++pi) {
      const auto& ifs = m.bridges[bi].ports[pi].interfaces;
      for (size_t ii = 0; ii < ifs.size(); ++ii) {
        m.by_name_.emplace(ifs[ii].name, PortModel::Loc{bi, pi, ii});
        if (!ifs[ii].iface_id.empty()) {
          m.by_iface_id_.emplace(ifs[ii].iface_id, PortModel::Loc{bi, pi, ii});
        }
      }
    }
  }
  return m;
}

}  // namespace hvtel::ovsdb
