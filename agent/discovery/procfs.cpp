#include "discovery/procfs.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "base/util/files.h"
#include "base/util/strings.h"

namespace hvtel::discovery {

Result<std::vector<std::string>> ProcFs::cmdline(pid_t pid) const {
  auto raw = read_file(root_ + "/" + std::to_string(pid) + "/cmdline");
  if (!raw) return fail(raw.error());
  std::vector<std::string> args;
  std::string cur;
  for (char c : *raw) {
    if (c == '\0') {
      args.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) args.push_back(std::move(cur));
  return args;
}

Result<std::string> ProcFs::comm(pid_t pid) const {
  auto c = read_file(root_ + "/" + std::to_string(pid) + "/comm");
  if (!c) return fail(c.error());
  return std::string(trim(*c));
}

Result<std::string> ProcFs::thread_comm(pid_t pid, pid_t tid) const {
  auto c = read_file(root_ + "/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  if (!c) return fail(c.error());
  return std::string(trim(*c));
}

Result<uint64_t> ProcFs::start_time(pid_t pid) const {
  std::string path = root_ + "/" + std::to_string(pid) + "/stat";
  auto s = read_file(path);
  if (!s) return fail(s.error());
  auto fields = proc_stat_fields(*s);
  if (!fields) return fail("malformed " + path);
  // (*fields)[0] is field 3 (state); starttime is field 22.
  if (fields->size() < 20) return fail("short " + path);
  auto v = parse_u64((*fields)[19]);
  if (!v) return fail("malformed starttime in " + path);
  return *v;
}

bool ProcFs::thread_alive(pid_t pid, pid_t tid) const {
  struct stat st;
  return ::stat((root_ + "/" + std::to_string(pid) + "/task/" + std::to_string(tid)).c_str(), &st) ==
         0;
}

std::vector<pid_t> ProcFs::threads(pid_t pid) const {
  std::vector<pid_t> out;
  if (auto names = list_dir(root_ + "/" + std::to_string(pid) + "/task")) {
    for (const auto& n : *names)
      if (auto v = parse_u64(n)) out.push_back(static_cast<pid_t>(*v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<int> ProcFs::vcpu_fd_index(pid_t pid, pid_t tid) const {
  auto sc = read_file(root_ + "/" + std::to_string(pid) + "/task/" + std::to_string(tid) +
                      "/syscall");
  if (!sc) return std::nullopt;
  auto f = split(trim(*sc), ' ');
  // "16 0x<fd> 0xae80 ..." : ioctl(fd, KVM_RUN, 0)
  if (f.size() < 3 || f[0] != "16" || parse_u64(f[2], 16) != 0xae80u) return std::nullopt;
  auto fd = parse_u64(f[1], 16);
  if (!fd) return std::nullopt;
  auto link = read_link(root_ + "/" + std::to_string(pid) + "/fd/" + std::to_string(*fd));
  constexpr std::string_view kPrefix = "anon_inode:kvm-vcpu:";
  if (!link || !starts_with(*link, kPrefix)) return std::nullopt;
  auto n = parse_u64(std::string_view(*link).substr(kPrefix.size()));
  if (!n || *n > 65535) return std::nullopt;
  return static_cast<int>(*n);
}

std::vector<std::string> ProcFs::tun_interfaces(pid_t pid) const {
  std::vector<std::string> out;
  const std::string dir = root_ + "/" + std::to_string(pid);
  auto fds = list_dir(dir + "/fd");
  if (!fds) return out;
  for (const auto& fd : *fds) {
    auto link = read_link(dir + "/fd/" + fd);
    if (!link || *link != "/dev/net/tun") continue;
    auto info = read_file(dir + "/fdinfo/" + fd);
    if (!info) continue;
    for (const auto& line : split(*info, '\n')) {
      if (!starts_with(line, "iff:")) continue;
      auto name = trim(std::string_view(line).substr(4));
      if (!name.empty()) out.emplace_back(name);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

namespace {

// Splits a QEMU option value on single commas; ",," is a literal comma.
std::vector<std::string> qemu_opts(std::string_view v) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == ',') {
      if (i + 1 < v.size() && v[i + 1] == ',') {
        out.back() += ',';
        ++i;
      } else {
        out.emplace_back();
      }
    } else {
      out.back() += v[i];
    }
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

VmmIdentity identity_from_cmdline(const std::vector<std::string>& argv, std::string_view comm,
                                  pid_t tgid) {
  VmmIdentity id;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    std::string_view a = argv[i];
    if (a == "-uuid" || a == "--uuid") {
      if (is_uuid(argv[i + 1])) id.instance_id = lower(argv[i + 1]);
    } else if (a == "-name" || a == "--name") {
      auto opts = qemu_opts(argv[i + 1]);
      for (size_t k = 0; k < opts.size(); ++k) {
        if (starts_with(opts[k], "guest=")) {
          id.instance_name = opts[k].substr(6);
        } else if (k == 0 && opts[k].find('=') == std::string::npos) {
          id.instance_name = opts[k];
        }
      }
    }
  }
  if (id.instance_id.empty()) id.instance_id = "pid-" + std::to_string(tgid);
  if (id.instance_name.empty()) id.instance_name = std::string(comm);
  return id;
}

std::optional<int> vcpu_index_from_comm(std::string_view comm) {
  constexpr std::string_view kPrefix = "CPU ";
  if (!starts_with(comm, kPrefix)) return std::nullopt;
  size_t slash = comm.find('/', kPrefix.size());
  if (slash == std::string_view::npos) return std::nullopt;
  auto n = parse_u64(comm.substr(kPrefix.size(), slash - kPrefix.size()));
  if (!n || *n > 65535) return std::nullopt;
  return static_cast<int>(*n);
}

std::vector<pid_t> ProcFs::processes() const {
  std::vector<pid_t> out;
  auto entries = list_dir(root_);
  if (!entries) return out;
  for (const auto& e : *entries)
    if (auto n = parse_u64(e); n && *n > 0) out.push_back(static_cast<pid_t>(*n));
  return out;
}

std::vector<TcgVmm> find_tcg_vmms(const ProcFs& proc) {
  std::vector<TcgVmm> out;
  for (pid_t pid : proc.processes()) {
    auto comm = proc.comm(pid);
    if (!comm || !starts_with(*comm, "qemu")) continue;  // TCG is QEMU's; skip every other process cheaply
    TcgVmm v{pid, {}, 0};
    for (pid_t tid : proc.threads(pid))
      if (auto c = proc.thread_comm(pid, tid); c && is_tcg_vcpu_comm(*c)) ++v.vcpus;
    if (!v.vcpus) continue;
    auto argv = proc.cmdline(pid);
    v.identity = identity_from_cmdline(argv ? *argv : std::vector<std::string>{}, *comm, pid);
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const TcgVmm& a, const TcgVmm& b) { return a.pid < b.pid; });
  return out;
}

bool is_tcg_vcpu_comm(std::string_view comm) {
  return vcpu_index_from_comm(comm) && comm.ends_with("/TCG");
}

}  // namespace hvtel::discovery
