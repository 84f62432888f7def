#include "libvirt_fixture.h"

#include <fcntl.h>
#include <grp.h>
#include <libvirt/virterror.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/util/files.h"
#include "base/util/strings.h"

namespace hvtel::libvirt::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kNovaXmlns11 = "http://openstack.org/xmlns/libvirt/nova/1.1";

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string nova_instance(const TestDomain& d, const std::string& display_name, bool prefixed) {
  const std::string p = prefixed ? "nova:" : "";
  std::string x = "<" + p + "instance" +
                  (prefixed ? " xmlns:nova=\"" + kNovaXmlns11 + "\"" : std::string()) + ">";
  x += "<" + p + "package version=\"32.1.0\"/>";
  x += "<" + p + "name>" + xml_escape(display_name) + "</" + p + "name>";
  x += "<" + p + "creationTime>2026-04-11 03:22:09</" + p + "creationTime>";
  x += "<" + p + "flavor name=\"" + xml_escape(d.flavor) + "\"" +
       (d.flavor_id.empty() ? "" : " id=\"" + d.flavor_id + "\"") + ">";
  x += "<" + p + "memory>64</" + p + "memory><" + p + "vcpus>" + std::to_string(d.vcpus) + "</" + p +
       "vcpus></" + p + "flavor>";
  x += "<" + p + "owner><" + p + "user uuid=\"" + d.user_id + "\">" + xml_escape(d.user_name) +
       "</" + p + "user><" + p + "project uuid=\"" + d.project_id + "\">" +
       xml_escape(d.project_name) + "</" + p + "project></" + p + "owner>";
  x += "</" + p + "instance>";
  return x;
}

std::string domain_xml(const TestDomain& d, const std::string& type) {
  std::string x = "<domain type='" + type + "'><name>" + d.name + "</name><uuid>" + d.uuid +
                  "</uuid><metadata>" + nova_instance(d, d.display_name, true) +
                  "</metadata><memory unit='MiB'>64</memory><vcpu placement='static'>" +
                  std::to_string(d.vcpus) + "</vcpu>";
  if (d.iothreads) x += "<iothreads>" + std::to_string(d.iothreads) + "</iothreads>";
  x += "<cputune>";
  for (const auto& [v, cpus] : d.vcpu_pins)
    x += "<vcpupin vcpu='" + std::to_string(v) + "' cpuset='" + format_cpu_list(cpus) + "'/>";
  if (!d.emulator_pin.empty()) x += "<emulatorpin cpuset='" + format_cpu_list(d.emulator_pin) + "'/>";
  for (const auto& [id, cpus] : d.iothread_pins)
    x += "<iothreadpin iothread='" + std::to_string(id) + "' cpuset='" + format_cpu_list(cpus) + "'/>";
  x += "</cputune>";
  // No disk and no boot device: the guest sits in SeaBIOS, which is all we need.
  x += "<os><type arch='x86_64' machine='pc'>hvm</type>";
  if (d.reboot_timeout_ms >= 0) x += "<bios rebootTimeout='" + std::to_string(d.reboot_timeout_ms) + "'/>";
  x += "</os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator><memballoon model='none'/>"
       "</devices></domain>";
  return x;
}

CmdResult sh(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string shq(const std::string& s) {
  std::string o = "'";
  for (char c : s) {
    if (c == '\'') o += "'\\''";
    else o += c;
  }
  return o + "'";
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  return pid;
}

void stop_pid(pid_t& pid, int sig) {
  if (pid <= 0) return;
  kill(pid, sig);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) {
      pid = 0;
      return;
    }
    std::this_thread::sleep_for(50ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  pid = 0;
}

std::vector<pid_t> others_named(const std::string& comm, pid_t mine) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    auto pid = parse_u64(e.path().filename().string());
    if (!pid || static_cast<pid_t>(*pid) == mine) continue;
    auto c = read_file(e.path().string() + "/comm");
    if (c && trim(*c) == comm) {
      // Our own zombies/children do not count.
      auto st = read_file(e.path().string() + "/stat");
      if (st && st->find(") Z ") != std::string::npos) continue;
      out.push_back(static_cast<pid_t>(*pid));
    }
  }
  return out;
}

std::string LibvirtDaemons::start(const std::string& tmp_prefix) {
  if (started()) return "";
  // A connection to a libvirtd that a test killed must fail, not kill us.
  signal(SIGPIPE, SIG_IGN);
  // Our own connection reports through return values, not stderr.
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  auto foreign = others_named("libvirtd", 0);
  for (pid_t p : others_named("virtqemud", 0)) foreign.push_back(p);
  if (!foreign.empty())
    return "another libvirtd/virtqemud (pid " + std::to_string(foreign[0]) +
           ") is running that this test did not start. A privileged libvirtd owns "
           "/run/libvirt/qemu, so only one can run per machine; stop it or wait for its owner.";

  std::string tmpl = "/tmp/" + tmp_prefix + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) return "mkdtemp failed";
  dir_ = tmpl;
  fs::create_directories(dir_ + "/run");
  std::ofstream(dir_ + "/libvirtd.conf")
      << "unix_sock_dir = \"" << dir_ << "/run\"\n"
      << "auth_unix_ro = \"none\"\nauth_unix_rw = \"none\"\n"
      << "log_outputs = \"3:file:" << dir_ << "/libvirtd.log\"\n";
  std::ofstream(dir_ + "/virtlogd.conf") << "log_outputs = \"3:file:" << dir_ << "/virtlogd.log\"\n";

  // virtlogd's socket (/run/libvirt/virtlogd-sock) is fixed too; reuse one
  // that is already serving rather than fight over it.
  if (others_named("virtlogd", 0).empty()) {
    virtlogd_ = spawn({"/usr/sbin/virtlogd", "-f", dir_ + "/virtlogd.conf", "-p", dir_ + "/virtlogd.pid"},
                      dir_ + "/virtlogd.out");
    if (!poll_until([] { return fs::exists("/run/libvirt/virtlogd-sock"); }, 5s))
      return "virtlogd did not create its socket";
  }
  start_libvirtd();
  if (!rw()) return "libvirtd did not come up: " + read_file(dir_ + "/libvirtd.out").value_or("");

  // QEMU runs as libvirt-qemu:kvm; without udev /dev/kvm is 0600 root.
  struct stat st{};
  if (stat("/dev/kvm", &st) == 0) {
    if (struct group* g = getgrnam("kvm")) {
      kvm_mode_ = st.st_mode & 07777;
      kvm_gid_ = st.st_gid;
      if (chown("/dev/kvm", static_cast<uid_t>(-1), g->gr_gid) == 0 && chmod("/dev/kvm", 0660) == 0)
        kvm_changed_ = true;
    }
  }
  return "";
}

void LibvirtDaemons::stop(const std::vector<std::string>& domains) {
  if (!started()) return;
  if (libvirtd_ > 0 && rw()) {
    for (const auto& d : domains) remove_domain(d);
  }
  if (rw_) virConnectClose(rw_);
  rw_ = nullptr;
  stop_pid(libvirtd_);
  stop_pid(virtlogd_);
  if (kvm_changed_) {
    if (chown("/dev/kvm", static_cast<uid_t>(-1), kvm_gid_) != 0 || chmod("/dev/kvm", kvm_mode_) != 0)
      fprintf(stderr, "could not restore /dev/kvm\n");
    kvm_changed_ = false;
  }
  if (!getenv("HVTEL_KEEP_TMP")) fs::remove_all(dir_);
  dir_.clear();
}

void LibvirtDaemons::start_libvirtd() {
  libvirtd_ = spawn({"/usr/sbin/libvirtd", "-f", dir_ + "/libvirtd.conf", "-p", dir_ + "/libvirtd.pid"},
                    dir_ + "/libvirtd.out");
}

void LibvirtDaemons::stop_libvirtd(int sig) { stop_pid(libvirtd_, sig); }

virConnectPtr LibvirtDaemons::rw() {
  // A cheap RPC, not virConnectIsAlive: without a running event loop a
  // connection to a restarted libvirtd still looks alive.
  unsigned long ver = 0;
  if (rw_ && virConnectGetLibVersion(rw_, &ver) == 0) return rw_;
  if (rw_) virConnectClose(rw_);
  rw_ = nullptr;
  const std::string uri = rw_uri();
  poll_until([&] { return (rw_ = virConnectOpen(uri.c_str())) != nullptr; }, 10s);
  return rw_;
}

void LibvirtDaemons::remove_domain(const std::string& name) {
  virConnectPtr c = rw();
  if (!c) return;
  virDomainPtr dom = virDomainLookupByName(c, name.c_str());
  if (!dom) return;
  if (virDomainIsActive(dom) == 1) virDomainDestroy(dom);
  virDomainUndefine(dom);
  virDomainFree(dom);
}

std::string LibvirtDaemons::ensure_running(const TestDomain& d) {
  virConnectPtr c = rw();
  if (!c) return "no libvirt connection";
  virDomainPtr dom = virDomainDefineXML(c, domain_xml(d, dom_type_).c_str());
  if (!dom) return d.name + ": define: " + virGetLastErrorMessage();
  std::string err;
  if (virDomainIsActive(dom) != 1 && virDomainCreate(dom) != 0)
    err = d.name + ": start: " + virGetLastErrorMessage();
  virDomainFree(dom);
  return err;
}

std::string LibvirtDaemons::pick_type(const TestDomain& probe, std::string* error) {
  // The type the host supports, decided up front: with /dev/kvm a KVM guest
  // that fails to start is an error to report, not a reason to fall back.
  dom_type_ = access("/dev/kvm", F_OK) == 0 ? "kvm" : "qemu";
  fprintf(stderr, "libvirt test domains: type='%s' (%s)\n", dom_type_.c_str(),
          dom_type_ == "kvm" ? "/dev/kvm present" : "no /dev/kvm: TCG, vCPU threads are CPU n/TCG");
  std::string err = ensure_running(probe);
  if (error) *error = err;
  return dom_type_;
}

pid_t LibvirtDaemons::qemu_pid(const std::string& domain) {
  auto t = read_file("/run/libvirt/qemu/" + domain + ".pid");
  if (!t) return 0;
  return static_cast<pid_t>(parse_u64(trim(*t)).value_or(0));
}

}  // namespace hvtel::libvirt::testing
