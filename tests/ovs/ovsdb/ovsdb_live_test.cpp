// Privileged: the OVSDB client against a real ovsdb-server + ovs-vswitchd
// (netdev datapath) started in a private temp dir. ovs-vswitchd runs in its
// own network namespace (unshare -n): the netdev datapath creates a host tap
// named "ovs-netdev", which would collide with any other vswitchd on the host.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "ovs/ovsdb/client.h"
#include "support/test_env.h"
#include "base/util/strings.h"

namespace hvtel::ovsdb {
namespace {

constexpr const char* kVswitchd = "/usr/lib/openvswitch-switch/ovs-vswitchd";

bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds limit = std::chrono::seconds(2)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

bool have_tool(const char* name) {
  std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

class OvsSandbox {
 public:
  OvsSandbox() {
    char tmpl[] = "/tmp/hvtel-ovsdb-live.XXXXXX";
    dir_ = mkdtemp(tmpl);
    env_ = "OVS_RUNDIR=" + dir_ + " OVS_DBDIR=" + dir_ + " OVS_LOGDIR=" + dir_ +
           " OVS_SYSCONFDIR=" + dir_ + " ";
  }
  ~OvsSandbox() {
    stop("ovs-vswitchd");
    stop("ovsdb-server");
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string sock() const { return dir_ + "/db.sock"; }
  const std::string& dir() const { return dir_; }

  bool sh(const std::string& cmd) {
    int rc = std::system((env_ + cmd + " >>" + dir_ + "/commands.log 2>&1").c_str());
    if (rc != 0) ADD_FAILURE() << "command failed (" << rc << "): " << cmd;
    return rc == 0;
  }
  std::string out(const std::string& cmd) {
    std::string full = env_ + cmd + " 2>>" + dir_ + "/commands.log";
    std::string s;
    if (FILE* p = popen(full.c_str(), "r")) {
      char buf[512];
      while (fgets(buf, sizeof(buf), p) != nullptr) s += buf;
      pclose(p);
    }
    return std::string(trim(s));
  }
  bool vsctl(const std::string& args) {
    return sh("ovs-vsctl --timeout=10 --db=unix:" + sock() + " " + args);
  }

  bool create_db() {
    return sh("ovsdb-tool create " + dir_ + "/conf.db /usr/share/openvswitch/vswitch.ovsschema");
  }
  bool start_ovsdb() {
    return sh("ovsdb-server " + dir_ + "/conf.db --remote=punix:" + sock() + " --pidfile=" + dir_ +
              "/ovsdb-server.pid --unixctl=" + dir_ + "/ovsdb-server.ctl --log-file=" + dir_ +
              "/ovsdb-server.log --detach");
  }
  bool start_vswitchd() {
    return sh(std::string("unshare -n ") + kVswitchd + " unix:" + sock() + " --pidfile=" + dir_ +
              "/ovs-vswitchd.pid --unixctl=" + dir_ + "/ovs-vswitchd.ctl --log-file=" + dir_ +
              "/ovs-vswitchd.log --detach");
  }
  // Stops a daemon we started, by the pid in its pidfile, and waits until it is gone.
  bool stop(const std::string& name) {
    std::ifstream f(dir_ + "/" + name + ".pid");
    long pid = 0;
    if (!(f >> pid) || pid <= 1) return false;
    if (kill(static_cast<pid_t>(pid), SIGTERM) != 0) return false;
    bool gone = eventually([&] { return kill(static_cast<pid_t>(pid), 0) != 0; },
                           std::chrono::seconds(10));
    std::filesystem::remove(dir_ + "/" + name + ".pid");
    return gone;
  }

 private:
  std::string dir_;
  std::string env_;
};

std::string vif_cmd(const std::string& name, int n) {
  return "add-port br-int " + name + " -- set Interface " + name +
         " type=internal external_ids:iface-id=port-" + std::to_string(n) +
         " external_ids:attached-mac=fa:16:3e:00:00:0" + std::to_string(n) +
         " external_ids:vm-uuid=vm-" + std::to_string(n) + " external_ids:iface-status=active";
}

TEST(OvsdbLive, ModelFollowsRealOvsdbAndSurvivesRestart) {
  HV_REQUIRE_ROOT();
  HV_REQUIRE(have_tool("ovsdb-server") && have_tool("ovs-vsctl") && have_tool("unshare") &&
                 access(kVswitchd, X_OK) == 0,
             "needs openvswitch-switch and util-linux unshare");
  OvsSandbox ovs;
  ASSERT_TRUE(ovs.create_db());
  ASSERT_TRUE(ovs.start_ovsdb());
  ASSERT_TRUE(ovs.vsctl("--no-wait init"));
  ASSERT_TRUE(ovs.start_vswitchd());
  ASSERT_TRUE(ovs.vsctl("add-br br-int -- set bridge br-int datapath_type=netdev fail_mode=secure"));
  ASSERT_TRUE(ovs.vsctl(vif_cmd("tap1", 1)));
  ASSERT_TRUE(ovs.vsctl(vif_cmd("tap2", 2)));
  ASSERT_TRUE(ovs.vsctl("set Port tap2 tag=4095 vlan_mode=trunk trunks=4095"));

  ClientOptions opts;
  opts.socket_path = ovs.sock();
  opts.backoff_min = std::chrono::milliseconds(20);
  opts.backoff_max = std::chrono::milliseconds(200);
  OvsdbClient client(opts);
  std::mutex mu;
  std::vector<std::vector<std::string>> bridge_sets;
  client.set_bridge_callback([&](const std::vector<std::string>& b) {
    std::lock_guard lock(mu);
    bridge_sets.push_back(b);
  });
  ASSERT_TRUE(client.start());

  const std::string ofport1 = ovs.out("ovs-vsctl --db=unix:" + ovs.sock() + " get Interface tap1 ofport");
  const std::string ofport2 = ovs.out("ovs-vsctl --db=unix:" + ovs.sock() + " get Interface tap2 ofport");
  ASSERT_GT(std::stoi(ofport1), 0);
  ASSERT_GT(std::stoi(ofport2), 0);
  ASSERT_NE(ofport1, ofport2);

  auto complete = [&](const std::string& iface_id1) {
    auto m = client.snapshot();
    const InterfaceInfo* i1 = m->interface_by_name("tap1");
    return client.up() && m->synced && i1 != nullptr && i1->iface_id == iface_id1 &&
           i1->ofport == std::stoi(ofport1);
  };
  ASSERT_TRUE(eventually([&] { return complete("port-1"); }, std::chrono::seconds(5)));

  auto m = client.snapshot();
  ASSERT_EQ(m->bridges.size(), 1u);
  const BridgeInfo& b = m->bridges[0];
  EXPECT_EQ(b.name, "br-int");
  EXPECT_EQ(b.fail_mode, "secure");
  EXPECT_EQ(b.datapath_type, "netdev");
  ASSERT_EQ(b.ports.size(), 3u);  // br-int, tap1, tap2
  EXPECT_EQ(b.interface_count(), 3u);
  EXPECT_EQ(b.interface_by_ofport(65534)->name, "br-int");
  for (int n : {1, 2}) {
    const std::string name = "tap" + std::to_string(n);
    const InterfaceInfo* i = m->interface_by_name(name);
    ASSERT_NE(i, nullptr) << name;
    EXPECT_EQ(std::to_string(i->ofport), n == 1 ? ofport1 : ofport2);
    EXPECT_EQ(i->type, "internal");
    EXPECT_EQ(i->iface_id, "port-" + std::to_string(n));
    EXPECT_EQ(i->attached_mac, "fa:16:3e:00:00:0" + std::to_string(n));
    EXPECT_EQ(i->instance_id, "vm-" + std::to_string(n));
    EXPECT_EQ(i->iface_status, "active");
    EXPECT_EQ(i->error, "");
    EXPECT_FALSE(i->mac_in_use.empty());
    EXPECT_EQ(m->interface_by_iface_id("port-" + std::to_string(n)), i);
    EXPECT_EQ(m->interface_by_ofport("br-int", i->ofport), i);
    EXPECT_EQ(m->instance_of(name), "vm-" + std::to_string(n));
  }
  const PortInfo& tap2 = b.ports[2];
  EXPECT_EQ(tap2.name, "tap2");
  EXPECT_EQ(tap2.tag, 4095);
  EXPECT_EQ(tap2.vlan_mode, "trunk");
  EXPECT_EQ(tap2.trunks, std::vector<int64_t>{4095});
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(bridge_sets, std::vector<std::vector<std::string>>{{"br-int"}});
  }

  // Modify and delete: the model follows within 2 s.
  uint64_t gen = client.store()->generation();
  ASSERT_TRUE(ovs.vsctl("set Interface tap1 external_ids:iface-id=port-1b"));
  ASSERT_TRUE(eventually([&] { return complete("port-1b"); }));
  EXPECT_GT(client.store()->generation(), gen);
  EXPECT_EQ(client.snapshot()->interface_by_iface_id("port-1"), nullptr);
  ASSERT_TRUE(ovs.vsctl("del-port br-int tap2"));
  ASSERT_TRUE(eventually([&] { return client.snapshot()->interface_by_name("tap2") == nullptr; }));
  m = client.snapshot();
  EXPECT_EQ(m->bridges[0].interface_count(), 2u);
  EXPECT_EQ(m->bridges[0].released_ofports.count(std::stoi(ofport2)), 1u);

  // Restart ovsdb-server on the same database: the client notices, reconnects,
  // resyncs, and the model is complete again.
  ASSERT_TRUE(ovs.stop("ovsdb-server"));
  ASSERT_TRUE(eventually([&] { return !client.up(); }, std::chrono::seconds(5)));
  EXPECT_FALSE(client.snapshot()->synced);
  EXPECT_NE(client.snapshot()->interface_by_name("tap1"), nullptr);  // last known model kept
  ASSERT_TRUE(ovs.start_ovsdb());
  ASSERT_TRUE(eventually([&] { return complete("port-1b"); }, std::chrono::seconds(5)));
  m = client.snapshot();
  EXPECT_EQ(m->bridges.size(), 1u);
  EXPECT_EQ(m->bridges[0].interface_count(), 2u);
  EXPECT_EQ(client.store()->stats().connects, 2u);
  EXPECT_EQ(client.store()->stats().parse_errors, 0u);
  client.stop();
}

}  // namespace
}  // namespace hvtel::ovsdb
