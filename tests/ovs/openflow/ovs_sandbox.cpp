#include "ovs_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

namespace hvtel::testing {
namespace {

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0) return errno != ESRCH;
  // A detached daemon is reparented; a zombie waiting for its reaper is dead,
  // but only once its last thread has gone: a killed multithreaded daemon's
  // main thread turns zombie while the others still hold its files (and the
  // pidfile lock a restarted daemon needs).
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  bool zombie = false;
  int threads = 1;
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("State:")) zombie = line.find('Z') != std::string::npos;
    if (line.starts_with("Threads:")) threads = std::atoi(line.c_str() + 8);
  }
  return !(zombie && threads <= 1);
}

bool wait_dead(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (process_alive(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::string>& extra_env) {
  CommandResult res;
  if (argv.empty()) return res;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return res;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return res;
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    bool overridden = false;
    for (const auto& x : extra_env) {
      auto k = x.substr(0, x.find('=') + 1);
      if (kv.compare(0, k.size(), k) == 0) overridden = true;
    }
    if (!overridden) env_strings.push_back(kv);
  }
  for (const auto& x : extra_env) env_strings.push_back(x);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return res;
  }
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? res.out : res.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

OvsSandbox::~OvsSandbox() { stop(); }

bool OvsSandbox::available() {
  return access(kVswitchd, X_OK) == 0 && run_command({"ovsdb-tool", "--version"}).exit_code == 0 &&
         run_command({"ovs-ofctl", "--version"}).exit_code == 0;
}

std::vector<std::string> OvsSandbox::env() const {
  return {"OVS_RUNDIR=" + dir_, "OVS_DBDIR=" + dir_, "OVS_LOGDIR=" + dir_,
          "OVS_SYSCONFDIR=" + dir_, "OVS_PKGDATADIR=/usr/share/openvswitch"};
}

CommandResult OvsSandbox::ovs(const std::vector<std::string>& argv) const {
  return run_command(argv, env());
}

Result<std::string> OvsSandbox::ovs_ok(const std::vector<std::string>& argv) const {
  auto r = ovs(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    return fail(cmd + "exited " + std::to_string(r.exit_code) + ": " + r.err);
  }
  return r.out;
}

Result<pid_t> OvsSandbox::read_pidfile(const std::string& name) const {
  std::ifstream f(dir_ + "/" + name + ".pid");
  long pid = 0;
  if (!(f >> pid) || pid <= 0) return fail("no pid in " + name + ".pid");
  return static_cast<pid_t>(pid);
}

Status OvsSandbox::wait_for_file(const std::string& path, bool present) const {
  for (int i = 0; i < 1000; ++i) {
    if ((access(path.c_str(), F_OK) == 0) == present) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fail("timed out waiting for " + path);
}

Status OvsSandbox::wait_connectable(const std::string& path) const {
  for (int i = 0; i < 2000; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail_errno(errno, "socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fail("timed out waiting for " + path + " to accept connections");
}

Status OvsSandbox::start() {
  char tmpl[] = "/tmp/hvtel-ovs-XXXXXX";
  if (!mkdtemp(tmpl)) return fail_errno(errno, "mkdtemp");
  dir_ = tmpl;
  auto db = dir_ + "/conf.db";
  if (auto r = ovs_ok({"ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"}); !r) {
    return fail(r.error());
  }
  if (auto r = ovs_ok({"ovsdb-server", db, "--remote=punix:" + dir_ + "/db.sock",
                       "--pidfile=" + dir_ + "/ovsdb-server.pid",
                       "--log-file=" + dir_ + "/ovsdb-server.log", "--detach", "--no-chdir"});
      !r) {
    return fail(r.error());
  }
  auto pid = read_pidfile("ovsdb-server");
  if (!pid) return fail(pid.error());
  ovsdb_pid_ = *pid;
  if (auto r = ovs_ok({"ovs-vsctl", "--db=unix:" + dir_ + "/db.sock", "--no-wait", "init"}); !r) {
    return fail(r.error());
  }
  return start_vswitchd();
}

Status OvsSandbox::start_vswitchd() {
  // A private network namespace: the netdev datapath creates a host-wide tap
  // device ("ovs-netdev"), which would collide with any other vswitchd on the
  // machine. Unix sockets live in the filesystem and are unaffected.
  if (auto r = ovs_ok({"unshare", "--net", kVswitchd, "unix:" + dir_ + "/db.sock",
                       "--pidfile=" + dir_ + "/ovs-vswitchd.pid",
                       "--log-file=" + dir_ + "/ovs-vswitchd.log", "--detach", "--no-chdir"});
      !r) {
    return fail(r.error());
  }
  auto pid = read_pidfile("ovs-vswitchd");
  if (!pid) return fail(pid.error());
  vswitchd_pid_ = *pid;
  // Ready when every bridge's management socket accepts connections again
  // (a killed vswitchd leaves its stale socket files behind).
  for (const auto& b : bridges_) {
    if (auto st = wait_connectable(mgmt_socket(b)); !st) return st;
  }
  return {};
}

Status OvsSandbox::stop_vswitchd(bool hard) {
  if (vswitchd_pid_ <= 0) return {};
  if (kill(vswitchd_pid_, hard ? SIGKILL : SIGTERM) != 0 && errno != ESRCH) {
    return fail_errno(errno, "kill ovs-vswitchd");
  }
  if (!wait_dead(vswitchd_pid_, std::chrono::seconds(10))) return fail("ovs-vswitchd did not exit");
  vswitchd_pid_ = 0;
  return {};
}

Status OvsSandbox::restart_vswitchd(bool hard) {
  if (auto st = stop_vswitchd(hard); !st) return st;
  return start_vswitchd();
}

Status OvsSandbox::add_bridge(const std::string& name) {
  auto r = ovs_ok({"ovs-vsctl", "--db=unix:" + dir_ + "/db.sock", "--timeout=20", "add-br", name,
                   "--", "set", "bridge", name, "datapath_type=netdev"});
  if (!r) return fail(r.error());
  bridges_.push_back(name);
  return wait_connectable(mgmt_socket(name));
}

void OvsSandbox::stop() {
  for (pid_t* p : {&vswitchd_pid_, &ovsdb_pid_}) {
    if (*p > 0) {
      kill(*p, SIGTERM);
      if (!wait_dead(*p, std::chrono::seconds(5))) {
        kill(*p, SIGKILL);
        wait_dead(*p, std::chrono::seconds(5));
      }
      *p = 0;
    }
  }
  if (!dir_.empty() && std::getenv("HVTEL_KEEP_SANDBOX") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  dir_.clear();
}

}  // namespace hvtel::testing
