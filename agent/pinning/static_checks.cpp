#include "pinning/static_checks.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "pinning/cpus.h"
#include "base/util/files.h"
#include "base/util/strings.h"

namespace hvtel::pinning {
namespace {

std::optional<std::vector<int>> read_cpu_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  return parse_cpu_list(*text);
}

bool file_exists(const std::string& path) { return read_file(path).has_value(); }

// libvirt's per-thread cgroup leaves: vcpu0, emulator, iothread1.
bool is_per_thread_leaf(const std::string& path) {
  auto slash = path.rfind('/');
  std::string_view leaf = slash == std::string::npos ? path : std::string_view(path).substr(slash + 1);
  if (leaf == "emulator") return true;
  for (std::string_view prefix : {"vcpu", "iothread"}) {
    if (!starts_with(leaf, prefix) || leaf.size() == prefix.size()) continue;
    std::string_view digits = leaf.substr(prefix.size());
    return std::all_of(digits.begin(), digits.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
  }
  return false;
}

std::string thread_label(const ThreadIntent& t) {
  switch (t.role) {
    case ThreadRole::kVcpu: return fmt::format("vcpu={}", t.index);
    case ThreadRole::kEmulator: return "emulator";
    case ThreadRole::kIothread: return fmt::format("iothread={}", t.index);
  }
  return "thread";
}

}  // namespace

ProcPlacementReader::ProcPlacementReader(std::string proc_root, std::string cgroup_root)
    : proc_root_(std::move(proc_root)), cgroup_root_(std::move(cgroup_root)) {}

std::optional<ThreadPlacement> ProcPlacementReader::read(pid_t pid, pid_t tid) const {
  const std::string task = fmt::format("{}/{}/task/{}", proc_root_, pid, tid);
  auto status = read_file(task + "/status");
  if (!status) return std::nullopt;
  ThreadPlacement p;
  bool found = false;
  for (const auto& line : split(*status, '\n')) {
    if (!starts_with(line, "Cpus_allowed_list:")) continue;
    auto cpus = parse_cpu_list(std::string_view(line).substr(18));
    if (!cpus) return std::nullopt;
    p.cpus_allowed = std::move(*cpus);
    found = true;
    break;
  }
  if (!found) return std::nullopt;

  // cgroup: a v1 cpuset line wins (hybrid hosts keep cpuset on v1), else the
  // unified line "0::/path".
  auto cg = read_file(task + "/cgroup");
  if (!cg) return p;
  std::optional<std::string> v1_path, v2_path;
  for (const auto& line : split(*cg, '\n')) {
    auto f = split(line, ':');
    if (f.size() < 3) continue;
    std::string path = line.substr(f[0].size() + f[1].size() + 2);
    if (f[0] == "0" && f[1].empty()) {
      v2_path = path;
    } else {
      for (const auto& ctl : split(f[1], ',')) {
        if (ctl == "cpuset") v1_path = path;
      }
    }
  }
  auto norm = [](const std::string& path) { return path == "/" ? std::string() : path; };
  if (v1_path) {
    p.cgroup_path = *v1_path;
    p.cgroup_effective =
        read_cpu_file(cgroup_root_ + "/cpuset" + norm(*v1_path) + "/cpuset.effective_cpus");
  } else if (v2_path) {
    p.cgroup_path = *v2_path;
    for (const char* base : {"", "/unified"}) {
      std::string file = cgroup_root_ + base + norm(*v2_path) + "/cpuset.cpus.effective";
      if (file_exists(file)) {
        p.cgroup_effective = read_cpu_file(file);
        break;
      }
    }
  }
  p.per_thread_cgroup = is_per_thread_leaf(p.cgroup_path);
  return p;
}

std::vector<Finding> check_affinity_drift(const std::vector<ResolvedIntent>& intents,
                                          const PlacementReader& reader,
                                          const CheckOptions& options) {
  std::vector<Finding> out;
  for (const auto& in : intents) {
    if (in.pid <= 0) continue;
    for (const auto& t : in.threads) {
      if (t.tid <= 0 || t.source == AllowedSource::kUnknown) continue;
      if (t.source == AllowedSource::kHostCpus && !options.check_undeclared_threads) continue;
      auto placed = reader.read(in.pid, t.tid);
      if (!placed) continue;
      auto finding = [&](const std::vector<int>& actual, const std::string& via) {
        Finding f;
        f.instance_id = in.instance_id;
        f.cls = ViolationClass::kAffinityDrift;
        f.tid = t.tid;
        f.vcpu = t.role == ThreadRole::kVcpu ? t.index : -1;
        f.cpus = actual;
        f.detail = fmt::format("tid={} {} expected={} actual={} via={}", t.tid, thread_label(t),
                               format_cpu_list(t.allowed), format_cpu_list(actual), via);
        out.push_back(std::move(f));
      };
      if (placed->cpus_allowed != t.allowed) finding(placed->cpus_allowed, "affinity");
      if (placed->cgroup_effective) {
        const auto& eff = *placed->cgroup_effective;
        bool drift = placed->per_thread_cgroup ? eff != t.allowed : !cpus_subset(t.allowed, eff);
        if (drift) finding(eff, "cgroup:" + placed->cgroup_path);
      }
    }
  }
  return out;
}

std::vector<Finding> check_dedicated_overlap(const std::vector<ResolvedIntent>& intents) {
  std::vector<Finding> out;
  auto emit = [&](const ResolvedIntent& who, const std::string& mine, const std::string& theirs,
                  const ResolvedIntent& other, const std::vector<int>& cpus) {
    out.push_back(Finding{who.instance_id, ViolationClass::kDedicatedOverlap, 0, -1, cpus,
                          fmt::format("{} overlaps {} of {} on {}", mine, theirs,
                                      other.instance_id, format_cpu_list(cpus))});
  };
  for (size_t i = 0; i < intents.size(); ++i) {
    const auto& a = intents[i];
    if (a.dedicated.empty()) continue;
    for (size_t j = 0; j < intents.size(); ++j) {
      if (i == j) continue;
      const auto& b = intents[j];
      // Dedicated vs dedicated is symmetric: report it once per pair, from the lower index.
      if (j > i) {
        auto both = cpus_intersect(a.dedicated, b.dedicated);
        if (!both.empty()) {
          emit(a, "dedicated", "dedicated", b, both);
          emit(b, "dedicated", "dedicated", a, both);
        }
      }
      for (const auto& part : b.floating) {
        auto both = cpus_intersect(a.dedicated, part.cpus);
        if (both.empty()) continue;
        emit(a, "dedicated", part.what, b, both);
        emit(b, part.what, "dedicated", a, both);
      }
    }
  }
  return out;
}

std::vector<Finding> check_shared_on_dedicated(const std::vector<ResolvedIntent>& intents,
                                               const HostPolicy& policy,
                                               const std::vector<int>& host_cpus) {
  std::vector<Finding> out;
  if (!policy.cpu_dedicated_set) return out;
  const auto& ded = *policy.cpu_dedicated_set;
  for (const auto& in : intents) {
    if (in.policy == model::CpuPolicy::kDedicated) continue;
    bool mixed = in.policy == model::CpuPolicy::kMixed;
    for (const auto& part : in.floating) {
      if (mixed && !starts_with(part.what, "vcpupin")) continue;
      auto both = cpus_intersect(part.cpus, ded);
      if (both.empty()) continue;
      out.push_back(Finding{in.instance_id, ViolationClass::kSharedOnDedicated, 0, -1, both,
                            fmt::format("{} {} overlaps cpu_dedicated_set on {}", part.what,
                                        format_cpu_list(part.cpus), format_cpu_list(both))});
    }
    if (in.policy == model::CpuPolicy::kShared && !in.inferred && in.floating.empty()) {
      auto both = cpus_intersect(host_cpus, ded);
      if (!both.empty()) {
        out.push_back(Finding{
            in.instance_id, ViolationClass::kSharedOnDedicated, 0, -1, both,
            fmt::format("no cpuset: floats over all host CPUs, including cpu_dedicated_set {}",
                        format_cpu_list(both))});
      }
    }
  }
  return out;
}

std::vector<Finding> check_emulator_policy(const std::vector<ResolvedIntent>& intents,
                                           const HostPolicy& policy) {
  std::vector<Finding> out;
  for (const auto& in : intents) {
    if (in.policy != model::CpuPolicy::kDedicated) continue;
    const std::string& ep = in.emulator_policy;
    if (ep != "share" && ep != "isolate") continue;
    auto emit = [&](std::vector<int> cpus, std::string detail) {
      out.push_back(Finding{in.instance_id, ViolationClass::kEmulatorPolicyMismatch, 0, -1,
                            std::move(cpus),
                            fmt::format("emulator_threads_policy={}: {}", ep, detail)});
    };
    for (const auto& part : in.floating) {
      bool emulator = part.what == "emulatorpin";
      bool iothread = starts_with(part.what, "iothreadpin");
      if (!emulator && !iothread) continue;
      if (ep == "share" && policy.cpu_shared_set) {
        auto outside = cpus_difference(part.cpus, *policy.cpu_shared_set);
        if (!outside.empty()) {
          emit(outside, fmt::format("{} {} is outside cpu_shared_set {} on {}", part.what,
                                    format_cpu_list(part.cpus),
                                    format_cpu_list(*policy.cpu_shared_set),
                                    format_cpu_list(outside)));
        }
      } else if (ep == "isolate") {
        auto on_own = cpus_intersect(part.cpus, in.dedicated);
        if ((emulator && part.cpus.size() != 1) || !on_own.empty()) {
          emit(on_own.empty() ? part.cpus : on_own,
               fmt::format("{} {} should be one pCPU outside the dedicated pCPUs {}", part.what,
                           format_cpu_list(part.cpus), format_cpu_list(in.dedicated)));
        }
      }
    }
    bool pinned = false;
    for (const auto& part : in.floating) pinned = pinned || part.what == "emulatorpin";
    if (!pinned && (ep == "isolate" || policy.cpu_shared_set)) {
      emit({}, "emulator threads are not pinned");
    }
  }
  return out;
}

std::vector<Finding> check_thread_policy(const std::vector<ResolvedIntent>& intents,
                                         const HostPolicy& policy,
                                         const std::map<int, std::vector<int>>& siblings) {
  std::vector<Finding> out;
  if (siblings.empty()) return out;
  size_t width = 1;
  for (const auto& [cpu, sibs] : siblings) width = std::max(width, sibs.size());
  auto sibs_of = [&](int cpu) {
    auto it = siblings.find(cpu);
    return it == siblings.end() ? std::vector<int>{cpu} : it->second;
  };
  for (const auto& in : intents) {
    if (in.dedicated.empty()) continue;
    const std::string& tp = in.thread_policy;
    auto emit = [&](std::vector<int> cpus, const std::string& detail) {
      out.push_back(Finding{in.instance_id, ViolationClass::kThreadPolicy, 0, -1, std::move(cpus),
                            fmt::format("thread_policy={}: {}", tp, detail)});
    };
    if (tp == "require") {
      if (width < 2) {
        emit(in.dedicated, "the host has no SMT siblings");
        continue;
      }
      std::vector<std::pair<int, int>> pins(in.dedicated_vcpus.begin(), in.dedicated_vcpus.end());
      for (size_t i = 0; i < pins.size(); i += width) {
        size_t end = std::min(pins.size(), i + width);
        const auto core = sibs_of(pins[i].second);
        std::vector<int> vcpus, cpus;
        bool split = false;
        for (size_t j = i; j < end; ++j) {
          vcpus.push_back(pins[j].first);
          cpus.push_back(pins[j].second);
          split = split || !std::ranges::binary_search(core, pins[j].second);
        }
        if (split)
          emit(cpus_normalize(cpus), fmt::format("vcpus {} on pCPUs {}, not siblings of one core",
                                                 format_cpu_list(vcpus), format_cpu_list(cpus)));
      }
    } else if (tp == "isolate") {
      std::vector<int> around;  // siblings of D(I) outside D(I)
      std::vector<int> own;     // pCPUs of D(I) that are siblings of another of D(I)
      for (int c : in.dedicated) {
        for (int s : sibs_of(c)) {
          if (s == c) continue;
          if (std::ranges::binary_search(in.dedicated, s)) {
            own.push_back(c);
          } else {
            around.push_back(s);
          }
        }
      }
      around = cpus_normalize(std::move(around));
      if (!own.empty()) {
        std::vector<int> vcpus;
        for (const auto& [v, c] : in.dedicated_vcpus)
          if (std::ranges::binary_search(own, c)) vcpus.push_back(v);
        emit(own, fmt::format("vcpus {} on sibling pCPUs {}", format_cpu_list(vcpus), format_cpu_list(own)));
      }
      auto uses = [&](const std::vector<int>& cpus, const std::string& what) {
        auto both = cpus_intersect(around, cpus);
        if (both.empty()) return;
        std::vector<int> of;
        for (int c : in.dedicated)
          if (!cpus_intersect(sibs_of(c), both).empty()) of.push_back(c);
        emit(both, fmt::format("sibling pCPU {} of {} is in {}", format_cpu_list(both),
                               format_cpu_list(of), what));
      };
      for (const auto& other : intents) {
        if (&other == &in) continue;
        uses(other.dedicated, "dedicated of " + other.instance_id);
        for (const auto& part : other.floating) uses(part.cpus, part.what + " of " + other.instance_id);
      }
      if (policy.cpu_shared_set) uses(*policy.cpu_shared_set, "cpu_shared_set");
    }
  }
  return out;
}

std::vector<Finding> check_pinned_cpu_unavailable(const std::vector<ResolvedIntent>& intents,
                                                  const CpuAvailability& cpus) {
  auto floor_governor = [&](int cpu) {
    auto gov = cpus.governor.find(cpu);
    if (gov == cpus.governor.end() || gov->second != "powersave") return false;
    auto drv = cpus.driver.find(cpu);
    return drv == cpus.driver.end() || (drv->second != "intel_pstate" && drv->second != "amd-pstate-epp");
  };
  std::vector<Finding> out;
  for (const auto& r : intents) {
    Finding f{.instance_id = r.instance_id, .cls = ViolationClass::kPinnedCpuUnavailable};
    for (int cpu : r.dedicated) {
      std::string why;
      if (!std::ranges::binary_search(cpus.online, cpu)) {
        why = fmt::format("pCPU {} offline", cpu);
      } else if (floor_governor(cpu)) {
        why = fmt::format("pCPU {} governor powersave", cpu);
      } else {
        continue;
      }
      f.cpus.push_back(cpu);
      f.detail += (f.detail.empty() ? "" : "; ") + why;
    }
    if (!f.cpus.empty()) out.push_back(std::move(f));
  }
  return out;
}

std::vector<Finding> check_numa_misplaced(const std::vector<ResolvedIntent>& intents,
                                          const std::map<int, int>& cpu_node, const LastCpuFn& last_cpu) {
  std::vector<Finding> out;
  std::set<int> nodes;
  for (const auto& [cpu, node] : cpu_node) nodes.insert(node);
  if (nodes.size() < 2 || !last_cpu) return out;
  for (const auto& r : intents) {
    for (const auto& t : r.threads) {
      if (t.role != ThreadRole::kVcpu || t.numa_nodes.empty()) continue;
      auto cpu = last_cpu(t.tid);
      if (!cpu) continue;
      auto node = cpu_node.find(*cpu);
      if (node == cpu_node.end() || std::ranges::binary_search(t.numa_nodes, node->second)) continue;
      out.push_back(Finding{.instance_id = r.instance_id,
                            .cls = ViolationClass::kNumaMisplaced,
                            .tid = t.tid,
                            .vcpu = t.index,
                            .cpus = {*cpu},
                            .detail = fmt::format("vcpu={} tid={} pcpu={} node={} numatune={}", t.index,
                                                  t.tid, *cpu, node->second, format_cpu_list(t.numa_nodes))});
    }
  }
  return out;
}

std::vector<Finding> run_static_checks(const std::vector<ResolvedIntent>& intents,
                                       const HostPolicy& policy,
                                       const std::vector<int>& host_cpus,
                                       const PlacementReader& reader,
                                       const CheckOptions& options) {
  std::vector<Finding> out = check_affinity_drift(intents, reader, options);
  auto pv3 = check_dedicated_overlap(intents);
  out.insert(out.end(), pv3.begin(), pv3.end());
  auto pv6 = check_emulator_policy(intents, policy);
  out.insert(out.end(), pv6.begin(), pv6.end());
  auto pv7 = check_shared_on_dedicated(intents, policy, host_cpus);
  out.insert(out.end(), pv7.begin(), pv7.end());
  return out;
}

}  // namespace hvtel::pinning
