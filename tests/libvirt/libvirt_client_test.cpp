// LibvirtClient against libvirt's in-process test driver (no daemon, no root).
#include "libvirt/libvirt_client.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace hvtel::libvirt {
namespace {

using namespace std::chrono_literals;

const std::string kNodeXml = std::string(HVTEL_LIBVIRT_TESTDATA) + "/test_node.xml";

const model::Instance* find(const Snapshot& s, const std::string& uuid) {
  for (const auto& i : s.instances)
    if (i.instance_id == uuid) return &i;
  return nullptr;
}

// Polls the published snapshot (the client's only output) until pred holds.
template <typename P>
bool wait_for(const LibvirtClient& c, P pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    uint64_t gen = c.generation();
    if (pred(*c.snapshot())) return true;
    c.wait_for_generation(gen, 100ms);
  }
  return pred(*c.snapshot());
}

ClientOptions test_options(const std::string& uri) {
  ClientOptions o;
  o.uri = uri;
  o.map_threads = false;  // the test driver has no QEMU processes
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  return o;
}

TEST(LibvirtClientTestDriver, InventoryFromCustomNodeXml) {
  LibvirtClient client(test_options("test://" + kNodeXml));
  EXPECT_FALSE(client.up());
  EXPECT_EQ(client.snapshot()->instances.size(), 0u);
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(wait_for(client, [&](const Snapshot& s) { return client.up() && s.instances.size() == 2; }));

  auto snap = client.snapshot();
  ASSERT_EQ(snap->instances.size(), 2u);
  // Sorted by instance_id.
  EXPECT_EQ(snap->instances[0].instance_id, "0e2a6c1a-4b6f-4c8e-9a0d-6a7b8c9d0e1f");
  EXPECT_EQ(snap->instances[1].instance_id, "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10");

  const model::Instance& nova = snap->instances[1];
  EXPECT_EQ(nova.source, model::Source::kLibvirt);
  EXPECT_EQ(nova.instance_name, "billing \"db\" 02");
  EXPECT_EQ(nova.domain, "instance-0001c3f2");
  EXPECT_EQ(nova.vcpus, 2);
  EXPECT_EQ(nova.pid, 0);
  EXPECT_TRUE(nova.vcpu_threads.empty());
  EXPECT_EQ(nova.intent.vcpu_pins, (std::map<int, std::vector<int>>{{0, {1}}, {1, {3}}}));
  EXPECT_EQ(nova.intent.emulator_pin, (std::vector<int>{0}));
  EXPECT_EQ(nova.intent.policy, model::CpuPolicy::kDedicated);
  ASSERT_TRUE(nova.nova);
  EXPECT_EQ(nova.nova->ns_version, "1.1");
  EXPECT_EQ(nova.nova->flavor_name, "c2.pinned");
  EXPECT_EQ(nova.nova->flavor_id, "c2-pinned");
  EXPECT_EQ(nova.nova->project_name, "billing-prod");
  EXPECT_EQ(nova.nova->user_id, "5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d");
  EXPECT_EQ(nova.nova->port_ids, (std::vector<std::string>{"e4d3c2b1-a0f9-48e7-b6d5-c4b3a2918070"}));
  ASSERT_EQ(nova.interfaces.size(), 1u);
  EXPECT_EQ(nova.interfaces[0].target_dev, "tape4d3c2b1-a0");
  EXPECT_EQ(nova.interfaces[0].mac, "fa:16:3e:5c:21:9a");

  const model::Instance& plain = snap->instances[0];
  EXPECT_EQ(plain.instance_name, "plain-vm");  // no Nova: the domain name
  EXPECT_EQ(plain.domain, "plain-vm");
  EXPECT_FALSE(plain.nova);
  EXPECT_EQ(plain.vcpus, 1);
  EXPECT_EQ(plain.intent.vcpu_cpuset, (std::vector<int>{0, 1}));
  EXPECT_EQ(plain.intent.policy, model::CpuPolicy::kShared);

  auto c = client.counters();
  EXPECT_EQ(c.connects, 1u);
  EXPECT_EQ(c.reconnects, 0u);
  EXPECT_EQ(c.resyncs, 1u);
  EXPECT_EQ(c.parse_errors, 0u);
  EXPECT_EQ(c.rpc_errors, 0u);
  client.stop();
  EXPECT_FALSE(client.up());
  // The last inventory stays readable after stop.
  EXPECT_EQ(client.snapshot()->instances.size(), 2u);
}

// A pre-Flamingo guest (no hw:cpu_policy) is dedicated when every vCPU has
// one pCPU inside cpu_dedicated_set: a reloaded nova.conf re-infers it (it
// used to be read only at start-up).
TEST(LibvirtClientTestDriver, ReloadedDedicatedSetReinfersPolicies) {
  LibvirtClient client(test_options("test://" + kNodeXml));
  ASSERT_TRUE(client.start());
  const std::string billing = "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10";  // vCPUs pinned to 1 and 3
  auto policy = [&](const Snapshot& s) {
    const model::Instance* i = find(s, billing);
    return i ? i->intent.policy : model::CpuPolicy::kUnknown;
  };
  ASSERT_TRUE(wait_for(client, [&](const Snapshot& s) { return policy(s) == model::CpuPolicy::kDedicated; }));
  client.set_dedicated_set(std::vector<int>{1});  // pCPU 3 is no longer dedicated
  EXPECT_TRUE(wait_for(client, [&](const Snapshot& s) { return policy(s) == model::CpuPolicy::kMixed; }));
  client.set_dedicated_set(std::vector<int>{1, 3});
  EXPECT_TRUE(wait_for(client, [&](const Snapshot& s) { return policy(s) == model::CpuPolicy::kDedicated; }));
  client.stop();
}

TEST(LibvirtClientTestDriver, MetadataViaApiMatchesXml) {
  auto o = test_options("test://" + kNodeXml);
  o.metadata_via_api = true;
  LibvirtClient client(o);
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(wait_for(client, [&](const Snapshot& s) { return s.instances.size() == 2; }));
  auto snap = client.snapshot();
  const auto* i = find(*snap, "3b9a7c1e-5d2f-4e8a-9c61-0f7d2a4b8e10");
  ASSERT_NE(i, nullptr);
  ASSERT_TRUE(i->nova);
  EXPECT_EQ(i->nova->ns_version, "1.1");
  EXPECT_EQ(i->nova->display_name, "billing \"db\" 02");
  EXPECT_EQ(i->nova->flavor_name, "c2.pinned");
  EXPECT_EQ(i->nova->project_id, "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5");
  const auto* p = find(*snap, "0e2a6c1a-4b6f-4c8e-9a0d-6a7b8c9d0e1f");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->nova);
  // "no metadata" is VIR_ERR_NO_DOMAIN_METADATA, not an RPC error.
  EXPECT_EQ(client.counters().rpc_errors, 0u);
}

const char* kEventDomain = R"(<domain type='test'>
  <name>instance-000000ee</name>
  <uuid>eeeeeeee-1111-4222-8333-444444444444</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.0">
      <nova:name>first-name</nova:name>
      <nova:flavor name="m1.tiny"><nova:vcpus>2</nova:vcpus></nova:flavor>
    </nova:instance>
  </metadata>
  <memory>65536</memory>
  <vcpu placement='static'>2</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='0'/><vcpupin vcpu='1' cpuset='1'/></cputune>
  <os><type>hvm</type></os>
</domain>)";

// test:///default is one shared in-process driver, so a second (read-write)
// connection in the test can change what the client's read-only one sees and
// fire real libvirt events at it.
TEST(LibvirtClientTestDriver, EventsDriveTheSnapshot) {
  virConnectPtr rw = virConnectOpen("test:///default");
  ASSERT_NE(rw, nullptr);
  LibvirtClient client(test_options("test:///default"));
  std::mutex mu;
  std::vector<PinChangeEvent> pins;
  client.set_pin_change_callback([&](const PinChangeEvent& e) {
    std::lock_guard lk(mu);
    pins.push_back(e);
  });
  int changes = 0;
  client.set_change_callback([&](const SnapshotPtr&) { ++changes; });
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(wait_for(client, [&](const Snapshot&) { return client.up(); }));
  const std::string uuid = "eeeeeeee-1111-4222-8333-444444444444";
  ASSERT_EQ(find(*client.snapshot(), uuid), nullptr);
  const uint64_t resyncs = client.counters().resyncs;

  virDomainPtr dom = virDomainDefineXML(rw, kEventDomain);
  ASSERT_NE(dom, nullptr);
  ASSERT_EQ(virDomainCreate(dom), 0);
  ASSERT_TRUE(wait_for(client, [&](const Snapshot& s) { return find(s, uuid) != nullptr; }));
  {
    auto s = client.snapshot();
    const auto* i = find(*s, uuid);
    EXPECT_EQ(i->instance_name, "first-name");
    EXPECT_EQ(i->nova->ns_version, "1.0");
    EXPECT_EQ(i->intent.vcpu_pins, (std::map<int, std::vector<int>>{{0, {0}}, {1, {1}}}));
  }

  // Nova's set_metadata after an interface attach.
  const char* md =
      "<instance><name>renamed</name><flavor name='m1.small'><vcpus>2</vcpus></flavor></instance>";
  ASSERT_EQ(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, md, "nova",
                                 "http://openstack.org/xmlns/libvirt/nova/1.1",
                                 VIR_DOMAIN_AFFECT_LIVE),
            0);
  ASSERT_TRUE(wait_for(client, [&](const Snapshot& s) {
    const auto* i = find(s, uuid);
    return i && i->instance_name == "renamed";
  }));
  {
    auto s = client.snapshot();
    const auto* i = find(*s, uuid);
    EXPECT_EQ(i->nova->ns_version, "1.1");  // 1.1 now preferred over the old 1.0
    EXPECT_EQ(i->nova->flavor_name, "m1.small");
  }
  // The name can already show via the STARTED refresh racing the metadata
  // write; the METADATA_CHANGE event itself must still arrive.
  EXPECT_TRUE(wait_for(client, [&](const Snapshot&) { return client.counters().events_metadata >= 1; }));

  ASSERT_EQ(virDomainDestroy(dom), 0);
  ASSERT_TRUE(wait_for(client, [&](const Snapshot& s) { return find(s, uuid) == nullptr; }));
  EXPECT_GE(client.counters().events_lifecycle, 3u);  // defined, started, stopped
  EXPECT_EQ(client.counters().resyncs, resyncs);     // events only, no resync
  EXPECT_GT(changes, 0);
  {
    // The test driver sends no TUNABLE events; the live test covers them.
    std::lock_guard lk(mu);
    EXPECT_TRUE(pins.empty());
  }
  virDomainUndefine(dom);
  virDomainFree(dom);
  client.stop();
  virConnectClose(rw);
}

TEST(TunableParam, PinFieldsAreRecognised) {
  auto v = parse_tunable_pin("cputune.vcpupin3", "0-2,^1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kind, PinChangeEvent::Kind::kVcpu);
  EXPECT_EQ(v->index, 3);
  EXPECT_EQ(v->cpus, (std::vector<int>{0, 2}));
  EXPECT_EQ(v->param, "cputune.vcpupin3");
  auto e = parse_tunable_pin("cputune.emulatorpin", "1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, PinChangeEvent::Kind::kEmulator);
  EXPECT_EQ(e->index, -1);
  auto io = parse_tunable_pin("cputune.iothreadpin1", "4-5");
  ASSERT_TRUE(io);
  EXPECT_EQ(io->kind, PinChangeEvent::Kind::kIothread);
  EXPECT_EQ(io->index, 1);
  EXPECT_EQ(io->cpus, (std::vector<int>{4, 5}));
  EXPECT_FALSE(parse_tunable_pin("cputune.cpu_shares", "1024"));
  EXPECT_FALSE(parse_tunable_pin("cputune.vcpupin", "1"));
  EXPECT_FALSE(parse_tunable_pin("cputune.vcpupinX", "1"));
  EXPECT_FALSE(parse_tunable_pin("cputune.vcpupin0", "nonsense"));
  EXPECT_FALSE(parse_tunable_pin("cputune.vcpupin0", nullptr));
}

TEST(LibvirtClientTestDriver, UnreachableDaemonBacksOffAndStaysDown) {
  auto o = test_options("qemu:///system?socket=/nonexistent/hvtel/libvirt-sock-ro");
  LibvirtClient client(o);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.start());
  // Retries wait 20, 40, 80 ms (doubling, capped at 200): four failed
  // attempts cannot happen in less than 140 ms, however fast the machine.
  while (client.counters().connect_failures < 4) std::this_thread::sleep_for(5ms);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 140ms);
  EXPECT_FALSE(client.up());
  const auto c = client.counters();
  EXPECT_EQ(c.connects, 0u);
  EXPECT_EQ(client.snapshot()->instances.size(), 0u);
  client.stop();
}

TEST(LibvirtClientTestDriver, TwoClientsShareTheEventLoop) {
  LibvirtClient a(test_options("test://" + kNodeXml));
  LibvirtClient b(test_options("test://" + kNodeXml));
  ASSERT_TRUE(a.start());
  ASSERT_TRUE(b.start());
  EXPECT_TRUE(wait_for(a, [](const Snapshot& s) { return s.instances.size() == 2; }));
  EXPECT_TRUE(wait_for(b, [](const Snapshot& s) { return s.instances.size() == 2; }));
  a.stop();
  // b keeps working after a released its reference to the loop.
  EXPECT_TRUE(b.up());
  b.stop();
  // And a loop can be started again afterwards.
  LibvirtClient c(test_options("test://" + kNodeXml));
  ASSERT_TRUE(c.start());
  EXPECT_TRUE(wait_for(c, [](const Snapshot& s) { return s.instances.size() == 2; }));
}

}  // namespace
}  // namespace hvtel::libvirt
