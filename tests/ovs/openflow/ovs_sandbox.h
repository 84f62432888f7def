// A private Open vSwitch (ovsdb-server + ovs-vswitchd, userspace datapath) for
// privileged tests. Everything lives in a fresh temporary directory; the
// daemons are started with pidfiles there and stopped by those pids only.
//
// Reusable by any test that needs OVS: OvsSandbox::start(), add_bridge(),
// run("ovs-ofctl ..."), restart_vswitchd(), and the destructor cleans up.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/util/result.h"

namespace hvtel::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv (no shell) with extra environment entries ("K=V"); captures output.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::string>& env = {});

class OvsSandbox {
 public:
  static constexpr const char* kVswitchd = "/usr/lib/openvswitch-switch/ovs-vswitchd";

  OvsSandbox() = default;
  ~OvsSandbox();
  OvsSandbox(const OvsSandbox&) = delete;
  OvsSandbox& operator=(const OvsSandbox&) = delete;

  // True when the OVS binaries are installed (tests skip/fail otherwise).
  static bool available();

  Status start();
  void stop();

  Status add_bridge(const std::string& name);  // datapath_type=netdev
  // Runs an OVS utility ("ovs-ofctl", "ovs-vsctl", ...) against this sandbox.
  CommandResult ovs(const std::vector<std::string>& argv) const;
  // Same, failing with the stderr text on a non-zero exit.
  Result<std::string> ovs_ok(const std::vector<std::string>& argv) const;

  // Kills ovs-vswitchd by its pid (SIGKILL when hard) and starts it again.
  Status restart_vswitchd(bool hard = true);
  Status stop_vswitchd(bool hard);
  Status start_vswitchd();

  const std::string& dir() const { return dir_; }
  std::string mgmt_socket(const std::string& bridge) const { return dir_ + "/" + bridge + ".mgmt"; }
  pid_t vswitchd_pid() const { return vswitchd_pid_; }
  pid_t ovsdb_pid() const { return ovsdb_pid_; }

 private:
  std::vector<std::string> env() const;
  Result<pid_t> read_pidfile(const std::string& name) const;
  Status wait_for_file(const std::string& path, bool present) const;
  Status wait_connectable(const std::string& path) const;

  std::string dir_;
  pid_t ovsdb_pid_ = 0;
  pid_t vswitchd_pid_ = 0;
  std::vector<std::string> bridges_;
};

}  // namespace hvtel::testing
