// A private virtlogd + libvirtd for privileged tests, and Nova test domains.
//
// libvirtd gets its own config, sockets and logs in a temp dir. Its QEMU
// driver state (/run/libvirt/qemu) cannot be moved for a privileged daemon, so
// only one libvirtd can run per machine: a libvirtd or virtqemud this fixture
// did not start is an error, not something to share. Everything started here
// is stopped by pid; /dev/kvm permissions are restored.
#pragma once

#include <libvirt/libvirt.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace hvtel::libvirt::testing {

extern const std::string kNovaXmlns11;  // http://openstack.org/xmlns/libvirt/nova/1.1

struct TestDomain {
  std::string name, uuid, display_name, flavor, flavor_id, user_id, user_name, project_id,
      project_name;
  std::map<int, std::vector<int>> vcpu_pins;
  std::vector<int> emulator_pin;
  std::map<int, std::vector<int>> iothread_pins;
  int iothreads = 0;
  int vcpus = 2;
  // SeaBIOS's retry delay after "No bootable device" (-boot reboot-timeout);
  // < 0: QEMU's default (60 s). A short one keeps the guest exiting to QEMU.
  int reboot_timeout_ms = -1;
};

std::string xml_escape(const std::string& s);
// Nova 1.1 <instance> metadata; `prefixed` as in the domain XML, unprefixed
// for `virsh metadata --set`.
std::string nova_instance(const TestDomain& d, const std::string& display_name, bool prefixed);
// type: "kvm" or "qemu" (TCG). No disk, no boot device: the guest sits in SeaBIOS.
std::string domain_xml(const TestDomain& d, const std::string& type);

struct CmdResult {
  int rc = -1;
  std::string out;  // stdout and stderr
};
CmdResult sh(const std::string& cmd);
std::string shq(const std::string& s);  // single-quoted for sh

// fork/exec with stdout and stderr appended to `log`.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log);
// Signals our child and reaps it (SIGKILL after 5 s); sets pid to 0.
void stop_pid(pid_t& pid, int sig = SIGTERM);
// Live (not zombie) processes whose comm is `comm`, other than `mine`.
std::vector<pid_t> others_named(const std::string& comm, pid_t mine);

template <typename P>
bool poll_until(P pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

class LibvirtDaemons {
 public:
  LibvirtDaemons() = default;
  LibvirtDaemons(const LibvirtDaemons&) = delete;
  LibvirtDaemons& operator=(const LibvirtDaemons&) = delete;
  ~LibvirtDaemons() { stop(); }

  // Starts virtlogd (unless one serves already) and libvirtd, and opens
  // /dev/kvm to the kvm group. Empty on success, else why not.
  std::string start(const std::string& tmp_prefix = "hvtel-libvirt");
  // Removes `domains`, stops what start() started, restores /dev/kvm and
  // removes the temp dir (kept with HVTEL_KEEP_TMP). Idempotent.
  void stop(const std::vector<std::string>& domains = {});
  bool started() const { return !dir_.empty(); }

  void start_libvirtd();
  void stop_libvirtd(int sig = SIGTERM);
  pid_t libvirtd_pid() const { return libvirtd_; }

  const std::string& dir() const { return dir_; }
  std::string ro_uri() const { return "qemu:///system?socket=" + dir_ + "/run/libvirt-sock-ro"; }
  std::string rw_uri() const { return "qemu:///system?socket=" + dir_ + "/run/libvirt-sock"; }
  std::string virsh(const std::string& args) const { return "virsh -q -c " + shq(rw_uri()) + " " + args; }

  // The read-write connection, reopened (up to 10 s) after a libvirtd restart.
  virConnectPtr rw();
  void remove_domain(const std::string& name);
  // Defines `d` (type from pick_type) and starts it unless active. Empty on
  // success, else the libvirt error.
  std::string ensure_running(const TestDomain& d);
  // Picks the domain type the host supports ("kvm" with /dev/kvm, else TCG,
  // "qemu") for every later domain, and defines and starts `probe` with it.
  std::string pick_type(const TestDomain& probe, std::string* error);
  const std::string& dom_type() const { return dom_type_; }

  // The QEMU pid from libvirt's pidfile, 0 if none.
  static pid_t qemu_pid(const std::string& domain);

 private:
  std::string dir_;
  pid_t virtlogd_ = 0;  // 0: not ours (reused) or not running
  pid_t libvirtd_ = 0;
  bool kvm_changed_ = false;
  mode_t kvm_mode_ = 0;
  gid_t kvm_gid_ = 0;
  std::string dom_type_ = "kvm";
  virConnectPtr rw_ = nullptr;
};

}  // namespace hvtel::libvirt::testing
