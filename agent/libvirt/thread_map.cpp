#include "libvirt/thread_map.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <set>

#include "base/util/files.h"
#include "base/util/log.h"
#include "base/util/strings.h"

namespace hvtel::libvirt {
namespace {

bool is_dir(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0;
}

// "vcpu12" -> 12 for prefix "vcpu"; nullopt otherwise.
std::optional<int> suffix_index(std::string_view name, std::string_view prefix) {
  if (!starts_with(name, prefix)) return std::nullopt;
  auto v = parse_u64(name.substr(prefix.size()));
  if (!v || *v > 65535) return std::nullopt;
  return static_cast<int>(*v);
}

bool is_role_leaf(std::string_view leaf) {
  return leaf == "emulator" || suffix_index(leaf, "vcpu") || suffix_index(leaf, "iothread");
}

// "CPU 3/KVM" or "CPU 3/TCG" -> 3.
std::optional<int> vcpu_from_comm(std::string_view comm) {
  if (!starts_with(comm, "CPU ")) return std::nullopt;
  comm.remove_prefix(4);
  size_t slash = comm.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto v = parse_u64(comm.substr(0, slash));
  if (!v || *v > 65535) return std::nullopt;
  return static_cast<int>(*v);
}

struct CgroupLine {
  std::string hierarchy;
  std::vector<std::string> controllers;  // empty for v2
  std::string path;
};

struct Mount {
  std::string root;          // path of the hierarchy mounted here
  std::string point;         // mount point
  bool v2 = false;
  std::vector<std::string> options;  // v1 super options (controllers, name=...)
};

std::vector<Mount> parse_mountinfo(const std::string& text) {
  std::vector<Mount> out;
  for (const auto& line : split(text, '\n')) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto pre = split(line.substr(0, dash), ' ');
    auto post = split(line.substr(dash + 3), ' ');
    if (pre.size() < 5 || post.size() < 3) continue;
    if (post[0] != "cgroup" && post[0] != "cgroup2") continue;
    Mount m{pre[3], pre[4], post[0] == "cgroup2", split(post[2], ',')};
    out.push_back(std::move(m));
  }
  return out;
}

void sort_threads(std::vector<model::ThreadInfo>& v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.index != b.index ? a.index < b.index : a.tid < b.tid;
  });
}

std::vector<pid_t> read_tids(const std::string& file) {
  std::vector<pid_t> out;
  auto text = read_file(file);
  if (!text) return out;
  for (const auto& l : split(*text, '\n')) {
    auto v = parse_u64(trim(l));
    if (v && *v > 0 && *v < (1u << 30)) out.push_back(static_cast<pid_t>(*v));
  }
  return out;
}

}  // namespace

const char* method_name(ThreadMapMethod m) {
  switch (m) {
    case ThreadMapMethod::kNone: return "none";
    case ThreadMapMethod::kCgroupV1: return "cgroup-v1";
    case ThreadMapMethod::kCgroupV2: return "cgroup-v2";
    case ThreadMapMethod::kThreadNames: return "thread-names";
  }
  return "none";
}

ThreadMapper::ThreadMapper(ThreadMapOptions opts) : opts_(std::move(opts)) {}

std::string ThreadMapper::path(const std::string& p) const {
  if (opts_.root.empty() || opts_.root == "/") return p;
  std::string r = opts_.root;
  if (r.back() == '/') r.pop_back();
  return r + p;
}

Result<pid_t> ThreadMapper::read_pid(const std::string& domain_name) const {
  if (domain_name.empty() || domain_name.find('/') != std::string::npos)
    return fail("bad domain name for pidfile");
  std::string file = path(opts_.pid_dir + "/" + domain_name + ".pid");
  auto text = read_file(file);
  if (!text) return fail(text.error().context("read " + file));
  auto v = parse_u64(trim(*text));
  if (!v || *v == 0 || *v >= (1u << 30)) return fail(file + ": not a pid: '" + std::string(trim(*text)) + "'");
  pid_t pid = static_cast<pid_t>(*v);
  if (!is_dir(path(opts_.proc + "/" + std::to_string(pid))))
    return fail(file + ": stale, process " + std::to_string(pid) + " is gone");
  return pid;
}

Result<ThreadMap> ThreadMapper::from_cgroup(pid_t pid) const {
  const std::string cg_file = path(opts_.proc + "/" + std::to_string(pid) + "/cgroup");
  auto text = read_file(cg_file);
  if (!text) return fail(text.error().context("read " + cg_file));
  std::vector<CgroupLine> lines;
  for (const auto& l : split(*text, '\n')) {
    size_t a = l.find(':');
    size_t b = a == std::string::npos ? a : l.find(':', a + 1);
    if (b == std::string::npos) continue;
    CgroupLine c{l.substr(0, a), {}, l.substr(b + 1)};
    std::string ctl = l.substr(a + 1, b - a - 1);
    if (!ctl.empty()) c.controllers = split(ctl, ',');
    lines.push_back(std::move(c));
  }
  // cpuset first (it is the hierarchy pinning is about), then cpu, then v2,
  // then anything else (name=systemd on hybrid hosts).
  auto rank = [](const CgroupLine& c) {
    auto has = [&](std::string_view x) {
      return std::find(c.controllers.begin(), c.controllers.end(), x) != c.controllers.end();
    };
    if (has("cpuset")) return 0;
    if (has("cpu")) return 1;
    if (c.controllers.empty()) return 2;
    return 3;
  };
  std::stable_sort(lines.begin(), lines.end(),
                   [&](const auto& x, const auto& y) { return rank(x) < rank(y); });

  std::vector<Mount> mounts;
  if (auto mi = read_file(path(opts_.mountinfo))) mounts = parse_mountinfo(*mi);

  for (const auto& line : lines) {
    const bool v2 = line.controllers.empty();
    // Where this hierarchy is mounted.
    std::vector<std::string> bases;
    for (const auto& m : mounts) {
      if (m.v2 != v2) continue;
      if (!v2) {
        bool all = !line.controllers.empty();
        for (const auto& c : line.controllers)
          if (std::find(m.options.begin(), m.options.end(), c) == m.options.end()) all = false;
        if (!all) continue;
      }
      std::string rel = line.path;
      if (m.root != "/" && starts_with(rel, m.root)) rel = rel.substr(m.root.size());
      bases.push_back(path(m.point) + rel);
    }
    if (mounts.empty()) {  // no mountinfo: the conventional layouts
      if (v2) {
        bases.push_back(path("/sys/fs/cgroup") + line.path);
        bases.push_back(path("/sys/fs/cgroup/unified") + line.path);
      } else {
        std::string ctl;
        for (const auto& c : line.controllers) ctl += (ctl.empty() ? "" : ",") + c;
        bases.push_back(path("/sys/fs/cgroup/" + ctl) + line.path);
      }
    }
    for (std::string dir : bases) {
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      // The QEMU main thread sits in <domain cgroup>/emulator; its parent
      // holds vcpuN/. On v2 that parent is <scope>/libvirt.
      size_t slash = dir.rfind('/');
      std::vector<std::string> cands;
      if (slash != std::string::npos && is_role_leaf(std::string_view(dir).substr(slash + 1)))
        cands.push_back(dir.substr(0, slash));
      cands.push_back(dir);
      cands.push_back(dir + "/libvirt");
      for (const auto& cand : cands) {
        auto entries = list_dir(cand);
        if (!entries) continue;
        ThreadMap tm;
        tm.pid = pid;
        tm.cgroup_dir = cand;
        for (const auto& e : *entries) {
          std::string sub = cand + "/" + e;
          std::string file = exists(sub + "/cgroup.threads") ? sub + "/cgroup.threads" : sub + "/tasks";
          if (auto n = suffix_index(e, "vcpu")) {
            // When thread names are available (debug-threads=on), only the
            // thread named "CPU <n>/..." is vCPU n; anything else in the
            // cgroup is a helper that inherited it.
            std::vector<model::ThreadInfo> named, unnamed;
            std::vector<pid_t> tids = read_tids(file);
            for (pid_t t : tids) {
              auto comm = read_file(path(opts_.proc + "/" + std::to_string(pid) + "/task/" +
                                         std::to_string(t) + "/comm"));
              auto idx = comm ? vcpu_from_comm(trim(*comm)) : std::nullopt;
              if (idx && *idx == *n) named.push_back({t, *n});
              else unnamed.push_back({t, *n});
            }
            if (named.empty()) {
              tm.vcpus.insert(tm.vcpus.end(), unnamed.begin(), unnamed.end());
            } else {
              tm.vcpus.insert(tm.vcpus.end(), named.begin(), named.end());
              tm.others.insert(tm.others.end(), unnamed.begin(), unnamed.end());
            }
          } else if (auto io = suffix_index(e, "iothread")) {
            for (pid_t t : read_tids(file)) tm.iothreads.push_back({t, *io});
          } else if (e == "emulator") {
            for (pid_t t : read_tids(file)) tm.emulator.push_back({t, -1});
          }
        }
        if (tm.vcpus.empty()) continue;
        tm.method = v2 ? ThreadMapMethod::kCgroupV2 : ThreadMapMethod::kCgroupV1;
        return tm;
      }
    }
  }
  return fail("no libvirt vCPU cgroups for pid " + std::to_string(pid));
}

Result<ThreadMap> ThreadMapper::from_names(pid_t pid) const {
  const std::string task_dir = path(opts_.proc + "/" + std::to_string(pid) + "/task");
  auto tasks = list_dir(task_dir);
  if (!tasks) return fail(tasks.error().context("list " + task_dir));
  ThreadMap tm;
  tm.pid = pid;
  tm.method = ThreadMapMethod::kThreadNames;
  for (const auto& t : *tasks) {
    auto tid = parse_u64(t);
    if (!tid || *tid == 0 || *tid >= (1u << 30)) continue;
    auto comm = read_file(task_dir + "/" + t + "/comm");
    if (!comm) continue;  // the thread exited meanwhile
    std::string_view c = trim(*comm);
    const pid_t id = static_cast<pid_t>(*tid);
    if (auto n = vcpu_from_comm(c)) {
      tm.vcpus.push_back({id, *n});
    } else if (starts_with(c, "IO ")) {
      auto io = suffix_index(c.substr(3), "iothread");
      if (io) tm.iothreads.push_back({id, *io});
      else tm.emulator.push_back({id, -1});
    } else {
      tm.emulator.push_back({id, -1});
    }
  }
  return tm;
}

Result<ThreadMap> ThreadMapper::map(const std::string& domain_name, int configured_vcpus,
                                    pid_t pid) const {
  if (pid == 0) {
    auto p = read_pid(domain_name);
    if (!p) return fail(p.error().context("domain " + domain_name));
    pid = *p;
  }
  auto tm = from_cgroup(pid);
  if (!tm) {
    log::debug("libvirt", "domain {}: {}; falling back to thread names", domain_name,
               tm.error().message);
    tm = from_names(pid);
    if (!tm) return fail(tm.error().context("domain " + domain_name));
  }
  sort_threads(tm->vcpus);
  sort_threads(tm->emulator);
  sort_threads(tm->iothreads);
  sort_threads(tm->others);
  std::set<int> idx;
  for (const auto& t : tm->vcpus) idx.insert(t.index);
  if (configured_vcpus > 0 &&
      (idx.size() != static_cast<size_t>(configured_vcpus) || tm->vcpus.size() != idx.size())) {
    tm->vcpu_count_mismatch = true;
    tm->mismatch = "found " + std::to_string(tm->vcpus.size()) + " vCPU threads (" +
                   std::to_string(idx.size()) + " distinct indexes) via " +
                   method_name(tm->method) + ", configured " + std::to_string(configured_vcpus);
  }
  return tm;
}

}  // namespace hvtel::libvirt
