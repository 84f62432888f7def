#include "pinning/host_policy.h"

#include <fmt/core.h>

#include <set>

#include "pinning/cpus.h"
#include "base/util/files.h"
#include "base/util/strings.h"

namespace hvtel::pinning {
namespace {

std::optional<int> parse_cpu_id(std::string_view s) {
  s = trim(s);
  auto v = parse_u64(s);
  if (!v || *v > static_cast<uint64_t>(kMaxCpuId)) return std::nullopt;
  return static_cast<int>(*v);
}

}  // namespace

Result<std::vector<int>> parse_nova_cpu_set(std::string_view spec) {
  std::vector<std::pair<int, int>> include, exclude;
  for (const auto& raw : split(spec, ',')) {
    std::string_view item = trim(raw);
    if (item.empty()) continue;
    bool reject = item.front() == '^';
    std::string_view body = reject ? trim(item.substr(1)) : item;
    size_t dash = body.find('-');
    int lo = 0, hi = 0;
    if (dash == std::string_view::npos) {
      auto v = parse_cpu_id(body);
      if (!v) {
        return fail(fmt::format("invalid {} expression '{}'", reject ? "exclusion" : "inclusion",
                                std::string(item)));
      }
      lo = hi = *v;
    } else {
      auto a = parse_cpu_id(body.substr(0, dash));
      auto b = parse_cpu_id(body.substr(dash + 1));
      if (!a || !b || *a > *b) {
        return fail(fmt::format("invalid range expression '{}'", std::string(item)));
      }
      lo = *a;
      hi = *b;
    }
    (reject ? exclude : include).emplace_back(lo, hi);
  }
  // Expanded after merging: a spec that repeats a range costs it once.
  std::vector<int> out = cpus_difference(expand_cpu_ranges(std::move(include)),
                                         expand_cpu_ranges(std::move(exclude)));
  if (out.empty()) return fail(fmt::format("no CPUs left after parsing '{}'", std::string(spec)));
  return out;
}

Result<HostPolicy> parse_nova_conf(std::string_view text) {
  // (section, key) -> (value, line). Later assignments replace earlier ones,
  // as oslo.config does for single-valued options.
  struct Value {
    std::string text;
    int line = 0;
  };
  std::map<std::pair<std::string, std::string>, Value> values;
  std::string section;
  Value* last = nullptr;  // target of continuation lines
  int lineno = 0;
  for (const auto& raw : split(text, '\n')) {
    ++lineno;
    std::string_view line = raw;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view t = trim(line);
    if (t.empty()) {
      last = nullptr;
      continue;
    }
    if (t.front() == '#' || t.front() == ';') continue;
    if ((line.front() == ' ' || line.front() == '\t') && last != nullptr) {
      last->text += ' ';
      last->text += std::string(t);
      continue;
    }
    if (t.front() == '[') {
      if (t.back() != ']' || t.size() < 3) {
        return fail(fmt::format("line {}: malformed section header '{}'", lineno, std::string(t)));
      }
      section = std::string(trim(t.substr(1, t.size() - 2)));
      last = nullptr;
      continue;
    }
    size_t sep = t.find_first_of("=:");
    if (sep == std::string_view::npos || sep == 0) {
      return fail(fmt::format("line {}: expected 'key = value', got '{}'", lineno, std::string(t)));
    }
    if (section.empty()) {
      return fail(fmt::format("line {}: option outside of a section", lineno));
    }
    std::string key(trim(t.substr(0, sep)));
    std::string_view v = trim(t.substr(sep + 1));
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    Value& slot = values[{section, key}];
    slot = Value{std::string(v), lineno};
    last = &slot;
  }

  HostPolicy policy;
  auto cpu_set = [&](const char* sec, const char* key,
                     std::optional<std::vector<int>>& out) -> Status {
    auto it = values.find({sec, key});
    if (it == values.end() || trim(it->second.text).empty()) return {};
    auto cpus = parse_nova_cpu_set(it->second.text);
    if (!cpus) {
      return fail(cpus.error().context(fmt::format("line {}: [{}] {}", it->second.line, sec, key)));
    }
    out = std::move(*cpus);
    return {};
  };
  if (auto s = cpu_set("compute", "cpu_dedicated_set", policy.cpu_dedicated_set); !s) {
    return fail(s.error());
  }
  if (auto s = cpu_set("compute", "cpu_shared_set", policy.cpu_shared_set); !s) {
    return fail(s.error());
  }
  if (auto s = cpu_set("DEFAULT", "vcpu_pin_set", policy.vcpu_pin_set); !s) return fail(s.error());
  if (auto it = values.find({"DEFAULT", "reserved_host_cpus"}); it != values.end()) {
    auto n = parse_u64(trim(it->second.text));
    if (!n || *n > static_cast<uint64_t>(kMaxCpuId + 1)) {
      return fail(fmt::format("line {}: [DEFAULT] reserved_host_cpus: '{}' is not a CPU count",
                              it->second.line, it->second.text));
    }
    policy.reserved_host_cpus = static_cast<int>(*n);
  }

  if (policy.cpu_dedicated_set && policy.cpu_shared_set) {
    auto both = cpus_intersect(*policy.cpu_dedicated_set, *policy.cpu_shared_set);
    if (!both.empty()) {
      policy.warnings.push_back(fmt::format(
          "cpu_dedicated_set and cpu_shared_set overlap on {} (nova-compute refuses this)",
          format_cpu_list(both)));
    }
  }
  if (policy.vcpu_pin_set && (policy.cpu_dedicated_set || policy.cpu_shared_set)) {
    policy.warnings.push_back(
        "legacy [DEFAULT] vcpu_pin_set is set together with [compute] cpu_dedicated_set/"
        "cpu_shared_set (nova-compute refuses this); hvtel uses the [compute] sets");
  }
  if (policy.reserved_host_cpus && *policy.reserved_host_cpus > 0 &&
      (policy.cpu_dedicated_set || policy.cpu_shared_set)) {
    policy.warnings.push_back(
        "[DEFAULT] reserved_host_cpus cannot be combined with cpu_dedicated_set/cpu_shared_set");
  }
  if (policy.vcpu_pin_set && !policy.cpu_dedicated_set) {
    policy.warnings.push_back(
        "only legacy [DEFAULT] vcpu_pin_set is set: no cpu_dedicated_set, so dedicated guests are "
        "inferred from their pins alone and shared_on_dedicated is not checked");
  }
  return policy;
}

Result<HostPolicy> load_nova_conf(const std::string& path) {
  auto text = read_config_file(path);
  if (!text) return fail(text.error().context("read nova config " + path));
  auto policy = parse_nova_conf(*text);
  if (!policy) return fail(policy.error().context(path));
  return policy;
}

Result<HostTopology> read_host_topology(const std::string& sysfs_root) {
  HostTopology topo;
  const std::string cpu_dir = sysfs_root + "/devices/system/cpu";
  auto online = read_file(cpu_dir + "/online");
  if (!online) return fail(online.error().context("read host topology"));
  auto cpus = parse_cpu_list(*online);
  if (!cpus) return fail(fmt::format("{}/online: malformed cpu list '{}'", cpu_dir, *online));
  topo.online = std::move(*cpus);

  for (int cpu : topo.online) {
    auto sib = read_file(fmt::format("{}/cpu{}/topology/thread_siblings_list", cpu_dir, cpu));
    if (!sib) continue;
    if (auto list = parse_cpu_list(*sib)) topo.siblings[cpu] = std::move(*list);
  }

  if (auto nodes = read_numa_nodes(sysfs_root)) topo.numa_node = std::move(*nodes);
  return topo;
}

Result<std::map<int, int>> read_numa_nodes(const std::string& sysfs_root) {
  const std::string node_dir = sysfs_root + "/devices/system/node";
  std::map<int, int> out;
  auto entries = list_dir(node_dir);
  if (!entries) return out;  // no NUMA sysfs (CONFIG_NUMA=n): one node, nothing to place
  for (const auto& name : *entries) {
    if (!starts_with(name, "node")) continue;
    auto id = parse_u64(std::string_view(name).substr(4));
    if (!id || *id > 1023) continue;  // has_cpu, has_memory, ...: not a node directory
    auto list = read_file(node_dir + "/" + name + "/cpulist");
    if (!list) continue;  // a node that vanished while listing
    auto node_cpus = parse_cpu_list(*list);
    if (!node_cpus)
      return fail(fmt::format("{}/{}/cpulist: malformed cpu list '{}'", node_dir, name, trim(*list)));
    for (int c : *node_cpus) out[c] = static_cast<int>(*id);
  }
  return out;
}

Result<CpuAvailability> read_cpu_availability(const std::string& sysfs_root, const std::vector<int>& cpus) {
  const std::string cpu_dir = sysfs_root + "/devices/system/cpu";
  auto online = read_file(cpu_dir + "/online");
  if (!online) return fail(online.error().context("read online CPUs"));
  auto list = parse_cpu_list(*online);
  if (!list) return fail(fmt::format("{}/online: malformed cpu list '{}'", cpu_dir, *online));
  CpuAvailability out;
  out.online = std::move(*list);
  for (int cpu : cpus) {
    for (auto [file, map] :
         {std::pair{"scaling_governor", &out.governor}, std::pair{"scaling_driver", &out.driver}}) {
      auto text = read_file(fmt::format("{}/cpu{}/cpufreq/{}", cpu_dir, cpu, file));
      if (!text) continue;
      std::string value(trim(*text));
      if (!value.empty()) (*map)[cpu] = std::move(value);
    }
  }
  return out;
}

std::vector<std::string> check_policy_against_topology(const HostPolicy& policy,
                                                       const HostTopology& topo) {
  std::vector<std::string> out;
  auto check = [&](const char* name, const std::optional<std::vector<int>>& set) {
    if (!set) return;
    auto missing = cpus_difference(*set, topo.online);
    if (!missing.empty()) {
      out.push_back(fmt::format("{} names CPUs that are not online: {}", name,
                                format_cpu_list(missing)));
    }
  };
  check("cpu_dedicated_set", policy.cpu_dedicated_set);
  check("cpu_shared_set", policy.cpu_shared_set);
  return out;
}

}  // namespace hvtel::pinning
