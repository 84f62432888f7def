#include "pinning/inventory.h"

#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <map>
#include <set>

#include "pinning/host_policy.h"
#include "base/util/files.h"
#include "base/util/strings.h"

namespace hvtel::pinning {
namespace {

constexpr int kMaxVcpuIndex = 4095;
constexpr int kMaxIothreadId = 4096;

// Line of a node, 1-based; yaml-cpp marks are 0-based and -1 when unknown.
int line_of(const YAML::Node& n) {
  int l = n.Mark().line;
  return l < 0 ? 0 : l + 1;
}

class Parser {
 public:
  explicit Parser(std::string_view origin) : origin_(origin) {}

  std::unexpected<Error> error(const YAML::Node& at, const std::string& where,
                               const std::string& what) const {
    return fail(fmt::format("{}:{}: {}: {}", origin_, line_of(at), where, what));
  }

  Result<std::string> scalar(const YAML::Node& n, const std::string& where) const {
    if (!n.IsScalar()) return error(n, where, "expected a scalar value");
    return n.Scalar();
  }

  Result<std::vector<int>> cpuset(const YAML::Node& n, const std::string& where) const {
    auto s = scalar(n, where);
    if (!s) return fail(s.error());
    auto cpus = parse_nova_cpu_set(*s);
    if (!cpus) return error(n, where, fmt::format("'{}' is not a cpuset: {}", *s, cpus.error().message));
    return cpus;
  }

  Result<int> index(const YAML::Node& n, const std::string& where, int lo, int hi) const {
    auto s = scalar(n, where);
    if (!s) return fail(s.error());
    auto v = parse_u64(*s);
    if (!v || *v < static_cast<uint64_t>(lo) || *v > static_cast<uint64_t>(hi)) {
      return error(n, where, fmt::format("'{}' is not an integer in {}..{}", *s, lo, hi));
    }
    return static_cast<int>(*v);
  }

  // `lines` (optional) receives the 1-based line of each value.
  Result<std::map<int, std::vector<int>>> pin_map(const YAML::Node& n, const std::string& where,
                                                  int lo, int hi,
                                                  std::map<int, int>* lines = nullptr) const {
    if (!n.IsMap()) return error(n, where, "expected a mapping of index -> cpuset");
    std::map<int, std::vector<int>> out;
    for (auto it = n.begin(); it != n.end(); ++it) {
      auto idx = index(it->first, where, lo, hi);
      if (!idx) return fail(idx.error());
      std::string item = fmt::format("{}.{}", where, *idx);
      if (out.contains(*idx)) return error(it->first, where, fmt::format("duplicate key {}", *idx));
      auto cpus = cpuset(it->second, item);
      if (!cpus) return fail(cpus.error());
      out[*idx] = std::move(*cpus);
      if (lines != nullptr) (*lines)[*idx] = line_of(it->second);
    }
    return out;
  }

  Result<InventoryEntry> entry(const YAML::Node& n, size_t i) const {
    const std::string where = fmt::format("vmms[{}]", i);
    if (!n.IsMap()) return error(n, where, "expected a mapping");
    InventoryEntry e;
    e.line = line_of(n);
    std::set<std::string> seen;
    int matchers = 0;
    std::string policy;
    int cpuset_line = 0;  // line of `cpuset:`, 0 when absent
    std::map<int, int> pin_lines;  // vCPU -> line of its pin
    for (auto it = n.begin(); it != n.end(); ++it) {
      auto key_s = scalar(it->first, where);
      if (!key_s) return fail(key_s.error());
      const std::string& key = *key_s;
      const std::string kw = where + "." + key;
      if (!seen.insert(key).second) return error(it->first, where, "duplicate key '" + key + "'");
      // A copy: it-> returns a proxy whose members die with the full expression.
      const YAML::Node v = it->second;
      if (key == "uuid") {
        auto s = scalar(v, kw);
        if (!s) return fail(s.error());
        if (!valid_uuid(*s)) return error(v, kw, fmt::format("'{}' is not a UUID", *s));
        e.match = MatchKind::kUuid;
        e.uuid = lower(*s);
        ++matchers;
      } else if (key == "name") {
        auto s = scalar(v, kw);
        if (!s) return fail(s.error());
        if (trim(*s).empty()) return error(v, kw, "empty name");
        e.match = MatchKind::kName;
        e.name = *s;
        ++matchers;
      } else if (key == "pid") {
        auto p = index(v, kw, 1, 1 << 22);  // PID_MAX_LIMIT
        if (!p) return fail(p.error());
        e.match = MatchKind::kPid;
        e.pid = static_cast<pid_t>(*p);
        ++matchers;
      } else if (key == "policy") {
        auto s = scalar(v, kw);
        if (!s) return fail(s.error());
        if (*s == "dedicated") {
          e.intent.policy = model::CpuPolicy::kDedicated;
        } else if (*s == "shared") {
          e.intent.policy = model::CpuPolicy::kShared;
        } else {
          return error(v, kw, fmt::format("'{}' is not one of dedicated, shared", *s));
        }
        policy = *s;
      } else if (key == "thread_policy") {
        auto s = scalar(v, kw);
        if (!s) return fail(s.error());
        if (*s != "prefer" && *s != "require" && *s != "isolate")
          return error(v, kw, fmt::format("'{}' is not one of prefer, require, isolate", *s));
        e.intent.thread_policy = *s;
      } else if (key == "vcpu_pins") {
        auto m = pin_map(v, kw, 0, kMaxVcpuIndex, &pin_lines);
        if (!m) return fail(m.error());
        e.intent.vcpu_pins = std::move(*m);
      } else if (key == "cpuset") {
        auto c = cpuset(v, kw);
        if (!c) return fail(c.error());
        e.intent.vcpu_cpuset = std::move(*c);
        cpuset_line = line_of(v);
      } else if (key == "emulator_pin") {
        auto c = cpuset(v, kw);
        if (!c) return fail(c.error());
        e.intent.emulator_pin = std::move(*c);
      } else if (key == "numa_nodeset") {
        auto c = cpuset(v, kw);
        if (!c) return fail(c.error());
        e.intent.numa_nodeset = std::move(*c);
      } else if (key == "iothread_pins") {
        auto m = pin_map(v, kw, 1, kMaxIothreadId);
        if (!m) return fail(m.error());
        e.intent.iothread_pins = std::move(*m);
      } else {
        return error(it->first, where,
                     fmt::format("unknown key '{}' (known: uuid, name, pid, policy, thread_policy, "
                                 "vcpu_pins, cpuset, emulator_pin, iothread_pins, numa_nodeset)",
                                 key));
      }
    }
    if (matchers != 1) {
      return error(n, where, "needs exactly one of uuid, name, pid");
    }
    if (policy.empty()) return error(n, where, "missing 'policy' (dedicated or shared)");
    if (e.intent.policy == model::CpuPolicy::kDedicated) {
      if (e.intent.vcpu_pins.empty()) return error(n, where, "a dedicated VMM needs vcpu_pins");
      if (cpuset_line != 0) {
        return fail(fmt::format("{}:{}: {}.cpuset: cpuset is for shared VMMs; use vcpu_pins",
                                origin_, cpuset_line, where));
      }
      std::map<int, int> owner;  // pCPU -> vCPU
      for (const auto& [vcpu, cpus] : e.intent.vcpu_pins) {
        const std::string pw = fmt::format("{}.vcpu_pins.{}", where, vcpu);
        if (cpus.size() != 1) {
          return fail(fmt::format("{}:{}: {}: a dedicated vCPU is pinned to one pCPU, got '{}'",
                                  origin_, pin_lines[vcpu], pw, format_cpu_list(cpus)));
        }
        auto [it, fresh] = owner.emplace(cpus[0], vcpu);
        if (!fresh) {
          return fail(fmt::format("{}:{}: {}: pCPU {} is already pinned to vCPU {}", origin_,
                                  pin_lines[vcpu], pw, cpus[0], it->second));
        }
      }
    }
    return e;
  }

  static bool valid_uuid(const std::string& s) {
    if (s.size() != 36) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
  }

  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

 private:
  std::string origin_;
};

}  // namespace

std::string describe(const InventoryEntry& e) {
  switch (e.match) {
    case MatchKind::kUuid: return "uuid " + e.uuid;
    case MatchKind::kName: return "name " + e.name;
    case MatchKind::kPid: return fmt::format("pid {}", e.pid);
  }
  return "?";
}

namespace {

Result<Inventory> parse_inventory_unguarded(std::string_view yaml, std::string_view origin) {
  Parser p(origin);
  YAML::Node root = YAML::Load(std::string(yaml));
  Inventory inv;
  inv.origin = std::string(origin);
  if (root.IsNull()) return fail(fmt::format("{}: empty inventory (expected 'vmms:')", origin));
  if (!root.IsMap()) return p.error(root, "top level", "expected a mapping with 'vmms:'");
  // A default-constructed YAML::Node reads as defined, so track presence separately.
  std::optional<YAML::Node> found;
  std::set<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    auto key = p.scalar(it->first, "top level");
    if (!key) return fail(key.error());
    if (!seen.insert(*key).second) return p.error(it->first, "top level", "duplicate key '" + *key + "'");
    if (*key != "vmms") return p.error(it->first, "top level", "unknown key '" + *key + "' (known: vmms)");
    found = it->second;
  }
  if (!found) return fail(fmt::format("{}: missing 'vmms:'", origin));
  const YAML::Node& vmms = *found;
  if (vmms.IsNull()) return inv;  // "vmms:" with nothing declared yet
  if (!vmms.IsSequence()) return p.error(vmms, "vmms", "expected a list of VMMs");

  std::map<std::string, int> first_line;  // "uuid x" -> line
  for (size_t i = 0; i < vmms.size(); ++i) {
    auto e = p.entry(vmms[i], i);
    if (!e) return fail(e.error());
    std::string id = describe(*e);
    auto [it, fresh] = first_line.emplace(id, e->line);
    if (!fresh) {
      return p.error(vmms[i], fmt::format("vmms[{}]", i),
                     fmt::format("duplicate entry: {} already declared at line {}", id, it->second));
    }
    inv.entries.push_back(std::move(*e));
  }
  return inv;
}

}  // namespace

Result<Inventory> parse_inventory(std::string_view yaml, std::string_view origin) {
  // yaml-cpp reports through exceptions (parser errors, bad conversions, depth
  // limits); none may escape this module.
  try {
    return parse_inventory_unguarded(yaml, origin);
  } catch (const YAML::Exception& ex) {
    return fail(fmt::format("{}:{}: {}", origin, ex.mark.line < 0 ? 0 : ex.mark.line + 1, ex.msg));
  } catch (const std::exception& ex) {
    return fail(fmt::format("{}: {}", origin, ex.what()));
  }
}

Result<Inventory> load_inventory(const std::string& path) {
  auto text = read_config_file(path);
  if (!text) return fail(text.error().context("read inventory"));
  return parse_inventory(*text, path);
}

InventoryApplyReport apply_inventory(const Inventory& inventory,
                                     std::vector<model::Instance>& instances) {
  InventoryApplyReport report;
  std::vector<bool> used(inventory.entries.size(), false);
  for (auto& inst : instances) {
    const InventoryEntry* chosen = nullptr;
    std::vector<std::string> others;
    std::string id_lower = Parser::lower(inst.instance_id);
    for (size_t i = 0; i < inventory.entries.size(); ++i) {
      const auto& e = inventory.entries[i];
      bool hit = (e.match == MatchKind::kUuid && e.uuid == id_lower) ||
                 (e.match == MatchKind::kName && e.name == inst.instance_name) ||
                 (e.match == MatchKind::kPid && inst.pid != 0 && e.pid == inst.pid);
      if (!hit) continue;
      used[i] = true;
      if (chosen == nullptr) {
        chosen = &e;
      } else {
        others.push_back(fmt::format("line {} ({})", e.line, describe(e)));
      }
    }
    if (chosen == nullptr) continue;
    if (!others.empty()) {
      std::string list;
      for (const auto& o : others) list += (list.empty() ? "" : ", ") + o;
      report.conflicts.push_back(fmt::format("instance {} matches line {} ({}) and also {}; "
                                             "using line {}",
                                             inst.instance_id, chosen->line, describe(*chosen),
                                             list, chosen->line));
    }
    inst.intent = chosen->intent;
    ++report.applied;
    if (inst.vcpus > 0) {
      for (const auto& [vcpu, cpus] : chosen->intent.vcpu_pins) {
        if (vcpu >= inst.vcpus) {
          report.warnings.push_back(fmt::format("line {}: vcpu_pins names vCPU {} but instance {} "
                                                "has {} vCPUs",
                                                chosen->line, vcpu, inst.instance_id, inst.vcpus));
        }
      }
    }
  }
  for (size_t i = 0; i < inventory.entries.size(); ++i) {
    if (!used[i]) {
      const auto& e = inventory.entries[i];
      report.unmatched.push_back(fmt::format("line {}: {}", e.line, describe(e)));
    }
  }
  return report;
}

}  // namespace hvtel::pinning
