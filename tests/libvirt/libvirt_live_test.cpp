// Privileged: the libvirt client against a real libvirtd and real QEMU guests.
//
// The fixture (libvirt_fixture.h) starts its own virtlogd and libvirtd; only one
// libvirtd can run per machine, so one this test did not start is a failure.
#include <arpa/inet.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include <prometheus/text_serializer.h>

#include "libvirt/libvirt_client.h"
#include "libvirt/libvirt_collector.h"
#include "libvirt_fixture.h"
#include "support/exposition.h"
#include "support/process.h"
#include "support/test_env.h"
#include "base/util/files.h"
#include "base/util/strings.h"

namespace hvtel::libvirt {
namespace {

namespace fs = std::filesystem;
using namespace hvtel::libvirt::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Display names with a quote and a backslash exercise escaping end to end.
const TestDomain kDomA{"hvtel-test-a", "7a1d0c6e-0000-4000-8000-00000000000a",
                       "billing \"db\" 02", "c2.pinned", "c2-pinned",
                       "5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d", "svc-billing",
                       "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5", "billing-prod",
                       {{0, {0}}, {1, {1}}}, {0, 1}, {}, 0};
const TestDomain kDomB{"hvtel-test-b", "7a1d0c6e-0000-4000-8000-00000000000b",
                       "web\\frontend-01", "m1.small", "", "11112222333344445555666677778888",
                       "alice", "99998888777766665555444433332222", "web-prod",
                       {{0, {1}}, {1, {0}}}, {0}, {{1, {1}}}, 1};

const model::Instance* find(const Snapshot& s, const std::string& uuid) {
  for (const auto& i : s.instances)
    if (i.instance_id == uuid) return &i;
  return nullptr;
}

using hvtel::testing::parse_exposition;
using Series = hvtel::testing::Sample;

std::optional<std::string> http_get(int port, const std::string& path) {
  bool ok = false;
  std::string body = hvtel::testing::http_get(port, path, &ok);
  if (!ok) return std::nullopt;
  return body;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class LibvirtLive : public ::testing::Test {
 protected:
  // Shared across the tests of one process (ctest runs each in its own).
  static inline LibvirtDaemons daemons_;
  static inline bool ready_ = false;

  static std::string ro_uri() { return daemons_.ro_uri(); }
  static std::string virsh(const std::string& args) { return daemons_.virsh(args); }

  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(fs::exists("/usr/sbin/libvirtd") && fs::exists("/usr/bin/qemu-system-x86_64"),
               "needs libvirt-daemon-system and qemu-system-x86");
    if (!ready_) {
      const std::string err = daemons_.start("hvtel-libvirt-live");
      ASSERT_EQ(err, "");
      for (const auto* d : {&kDomA, &kDomB}) daemons_.remove_domain(d->name);  // leftovers of a crashed run
      std::string probe_err;
      daemons_.pick_type(kDomA, &probe_err);
      ASSERT_EQ(probe_err, "");
      ready_ = true;
    }
    ensure_running();
  }

  static void ensure_running() {
    for (const auto* d : {&kDomA, &kDomB}) ASSERT_EQ(daemons_.ensure_running(*d), "");
  }

  static void TearDownTestSuite() {
    daemons_.stop({kDomA.name, kDomB.name});
    ready_ = false;
  }

  ClientOptions client_options() const {
    ClientOptions o;
    o.uri = ro_uri();
    return o;
  }

  static bool both_present(const LibvirtClient& c) {
    auto s = c.snapshot();
    return c.up() && find(*s, kDomA.uuid) && find(*s, kDomB.uuid);
  }

  static pid_t pidfile(const std::string& name) { return LibvirtDaemons::qemu_pid(name); }
};

TEST_F(LibvirtLive, InventoryMatchesDomainXmlAndThreads) {
  LibvirtClient client(client_options());
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(poll_until([&] { return both_present(client); }, 10s));
  auto snap = client.snapshot();
  EXPECT_TRUE(snap->thread_problems.empty())
      << snap->thread_problems.begin()->first << ": " << snap->thread_problems.begin()->second;

  for (const auto* d : {&kDomA, &kDomB}) {
    SCOPED_TRACE(d->name);
    const model::Instance* i = find(*snap, d->uuid);
    ASSERT_NE(i, nullptr);
    EXPECT_EQ(i->source, model::Source::kLibvirt);
    EXPECT_EQ(i->instance_name, d->display_name);
    EXPECT_EQ(i->domain, d->name);
    EXPECT_EQ(i->vcpus, 2);
    ASSERT_TRUE(i->nova);
    EXPECT_EQ(i->nova->ns_version, "1.1");
    EXPECT_EQ(i->nova->display_name, d->display_name);
    EXPECT_EQ(i->nova->flavor_name, d->flavor);
    EXPECT_EQ(i->nova->flavor_id, d->flavor_id);
    EXPECT_EQ(i->nova->flavor_vcpus, 2);
    EXPECT_EQ(i->nova->flavor_memory_mib, 64u);
    EXPECT_EQ(i->nova->creation_time, "2026-04-11 03:22:09");
    EXPECT_EQ(i->nova->user_id, d->user_id);
    EXPECT_EQ(i->nova->user_name, d->user_name);
    EXPECT_EQ(i->nova->project_id, d->project_id);
    EXPECT_EQ(i->nova->project_name, d->project_name);
    EXPECT_EQ(i->intent.vcpu_pins, d->vcpu_pins);
    EXPECT_EQ(i->intent.emulator_pin, d->emulator_pin);
    EXPECT_EQ(i->intent.iothread_pins, d->iothread_pins);
    EXPECT_EQ(i->intent.policy, model::CpuPolicy::kDedicated);  // one pCPU per vCPU
    EXPECT_TRUE(i->interfaces.empty());

    // The QEMU pid is libvirt's.
    const pid_t pid = pidfile(d->name);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(i->pid, pid);

    // vCPU tids: libvirt's status XML (root-only, validation only) says which
    // tid is which vCPU; the cgroup and the thread name must agree.
    auto status = read_file("/run/libvirt/qemu/" + d->name + ".xml");
    ASSERT_TRUE(status);
    std::map<int, pid_t> from_status;
    std::regex re("<vcpu id='(\\d+)'[^>]*pid='(\\d+)'");
    for (auto it = std::sregex_iterator(status->begin(), status->end(), re); it != std::sregex_iterator(); ++it)
      from_status[std::stoi((*it)[1])] = std::stoi((*it)[2]);
    ASSERT_EQ(from_status.size(), 2u);
    ASSERT_EQ(i->vcpu_threads.size(), 2u);
    for (const auto& t : i->vcpu_threads) {
      EXPECT_EQ(from_status.at(t.index), t.tid) << "vcpu " << t.index;
      auto comm = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(t.tid) + "/comm");
      ASSERT_TRUE(comm);
      const std::string want = "CPU " + std::to_string(t.index) + (daemons_.dom_type() == "kvm" ? "/KVM" : "/TCG");
      EXPECT_EQ(trim(*comm), want);
      // `virsh vcpuinfo` affinity is the pin, and so is the kernel's for this tid.
      cpu_set_t set;
      CPU_ZERO(&set);
      ASSERT_EQ(sched_getaffinity(t.tid, sizeof set, &set), 0);
      std::vector<int> aff;
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) aff.push_back(c);
      EXPECT_EQ(aff, d->vcpu_pins.at(t.index)) << "tid " << t.tid;
    }
    auto vi = sh(virsh("vcpuinfo " + d->name));
    ASSERT_EQ(vi.rc, 0) << vi.out;
    std::regex aff_re("VCPU:\\s+(\\d+)[\\s\\S]*?CPU Affinity:\\s+(\\S+)");
    int seen = 0;
    for (auto it = std::sregex_iterator(vi.out.begin(), vi.out.end(), aff_re); it != std::sregex_iterator(); ++it) {
      const int v = std::stoi((*it)[1]);
      std::string mask = (*it)[2];
      std::vector<int> cpus;
      for (size_t c = 0; c < mask.size(); ++c)
        if (mask[c] == 'y') cpus.push_back(static_cast<int>(c));
      EXPECT_EQ(cpus, d->vcpu_pins.at(v)) << "virsh vcpuinfo vcpu " << v;
      ++seen;
    }
    EXPECT_EQ(seen, 2);
    // Main thread is an emulator thread; IOThreads are mapped by id.
    bool main_is_emulator = false;
    for (const auto& t : i->emulator_threads) main_is_emulator |= t.tid == pid;
    EXPECT_TRUE(main_is_emulator);
    ASSERT_EQ(i->iothreads.size(), static_cast<size_t>(d->iothreads));
    for (const auto& t : i->iothreads) {
      auto comm = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(t.tid) + "/comm");
      EXPECT_EQ(trim(comm.value_or("")), "IO iothread" + std::to_string(t.index));
    }
  }
  const auto c = client.counters();
  EXPECT_EQ(c.parse_errors, 0u);
  EXPECT_EQ(c.thread_map_errors, 0u);
  EXPECT_EQ(c.rpc_errors, 0u);
}

TEST_F(LibvirtLive, VirshMetadataSetShowsInSnapshot) {
  LibvirtClient client(client_options());
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(poll_until([&] { return both_present(client); }, 10s));
  const uint64_t resyncs = client.counters().resyncs;
  auto r = sh(virsh("metadata " + kDomB.name + " --uri " + kNovaXmlns11 +
                    " --key nova --live --config --set " +
                    shq(nova_instance(kDomB, "web-renamed", false))));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(poll_until([&] {
    const auto* i = find(*client.snapshot(), kDomB.uuid);
    return i && i->instance_name == "web-renamed";
  }, 2s));
  EXPECT_GE(client.counters().events_metadata, 1u);
  EXPECT_EQ(client.counters().resyncs, resyncs);
  r = sh(virsh("metadata " + kDomB.name + " --uri " + kNovaXmlns11 + " --key nova --live --config --set " +
               shq(nova_instance(kDomB, kDomB.display_name, false))));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(poll_until([&] {
    const auto* i = find(*client.snapshot(), kDomB.uuid);
    return i && i->instance_name == kDomB.display_name;
  }, 2s));
}

TEST_F(LibvirtLive, VirshVcpupinFiresTunableCallback) {
  LibvirtClient client(client_options());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<PinChangeEvent> events;
  client.set_pin_change_callback([&](const PinChangeEvent& e) {
    std::lock_guard lk(mu);
    events.push_back(e);
    cv.notify_all();
  });
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(poll_until([&] { return both_present(client); }, 10s));

  auto r = sh(virsh("vcpupin " + kDomB.name + " 0 0 --live"));
  ASSERT_EQ(r.rc, 0) << r.out;
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 5s, [&] { return !events.empty(); }));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].instance_id, kDomB.uuid);
    EXPECT_EQ(events[0].domain, kDomB.name);
    EXPECT_EQ(events[0].kind, PinChangeEvent::Kind::kVcpu);
    EXPECT_EQ(events[0].index, 0);
    EXPECT_EQ(events[0].cpus, (std::vector<int>{0}));
    EXPECT_EQ(events[0].param, "cputune.vcpupin0");
  }
  // The callback runs after the refresh: the snapshot already has the new pin.
  const auto* i = find(*client.snapshot(), kDomB.uuid);
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->intent.vcpu_pins.at(0), (std::vector<int>{0}));
  EXPECT_EQ(client.counters().events_tunable, 1u);

  r = sh(virsh("emulatorpin " + kDomB.name + " 1 --live"));
  ASSERT_EQ(r.rc, 0) << r.out;
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 5s, [&] { return events.size() >= 2; }));
    EXPECT_EQ(events[1].kind, PinChangeEvent::Kind::kEmulator);
    EXPECT_EQ(events[1].cpus, (std::vector<int>{1}));
  }
  sh(virsh("vcpupin " + kDomB.name + " 0 1 --live"));
  sh(virsh("emulatorpin " + kDomB.name + " 0 --live"));
}

TEST_F(LibvirtLive, VirshDestroyRemovesDomainByEvent) {
  LibvirtClient client(client_options());
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(poll_until([&] { return both_present(client); }, 10s));
  const auto before = client.counters();
  auto r = sh(virsh("destroy " + kDomB.name));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(poll_until([&] { return find(*client.snapshot(), kDomB.uuid) == nullptr; }, 5s));
  EXPECT_NE(find(*client.snapshot(), kDomA.uuid), nullptr);
  const auto after = client.counters();
  EXPECT_GT(after.events_lifecycle, before.events_lifecycle);
  EXPECT_EQ(after.resyncs, before.resyncs);  // event-driven, not a resync

  r = sh(virsh("start " + kDomB.name));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(poll_until([&] {
    const auto* i = find(*client.snapshot(), kDomB.uuid);
    return i && i->vcpu_threads.size() == 2 && i->pid == pidfile(kDomB.name);
  }, 10s));
}

TEST_F(LibvirtLive, SurvivesFiveLibvirtdRestarts) {
  LibvirtClient client(client_options());
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(poll_until([&] { return both_present(client); }, 10s));
  const pid_t qa = find(*client.snapshot(), kDomA.uuid)->pid;
  const pid_t qb = find(*client.snapshot(), kDomB.uuid)->pid;
  ASSERT_GT(qa, 0);
  ASSERT_GT(qb, 0);

  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("restart " + std::to_string(round));
    const uint64_t resyncs = client.counters().resyncs;
    daemons_.stop_libvirtd(round % 2 ? SIGKILL : SIGTERM);
    ASSERT_TRUE(poll_until([&] { return !client.up(); }, 20s)) << "up() stayed true";
    // The cached inventory stays while libvirt is down.
    EXPECT_NE(find(*client.snapshot(), kDomA.uuid), nullptr);
    daemons_.start_libvirtd();
    const auto t0 = Clock::now();
    ASSERT_TRUE(poll_until([&] { return client.up() && client.counters().resyncs > resyncs && both_present(client); },
                           5s))
        << "not restored within 5 s";
    fprintf(stderr, "round %d: restored in %lld ms\n", round,
            static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
    auto snap = client.snapshot();
    EXPECT_EQ(find(*snap, kDomA.uuid)->pid, qa);
    EXPECT_EQ(find(*snap, kDomB.uuid)->pid, qb);
    EXPECT_EQ(find(*snap, kDomA.uuid)->vcpu_threads.size(), 2u);
    EXPECT_EQ(kill(qa, 0), 0) << "QEMU of " << kDomA.name << " died";
    EXPECT_EQ(kill(qb, 0), 0) << "QEMU of " << kDomB.name << " died";
  }
  EXPECT_EQ(client.counters().reconnects, 5u);
  EXPECT_EQ(pidfile(kDomA.name), qa);
}

TEST_F(LibvirtLive, CollectorExpositionPassesPromtool) {
  LibvirtClient client(client_options());
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(poll_until([&] { return both_present(client); }, 10s));
  LibvirtCollector col(client);
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, col.Collect());
  const std::string file = daemons_.dir() + "/hvtel.prom";
  std::ofstream(file) << text.str();
  auto r = sh("promtool check metrics < " + file);
  EXPECT_EQ(r.rc, 0) << r.out << "\n" << text.str();

  std::map<std::string, std::map<std::string, std::string>> info;
  for (const auto& s : parse_exposition(text.str()))
    if (s.name == "hvtel_instance_info") info[s.labels.at("instance_id")] = s.labels;
  ASSERT_EQ(info.size(), 2u);
  for (const auto* d : {&kDomA, &kDomB}) {
    const std::map<std::string, std::string> want = {
        {"instance_id", d->uuid},         {"instance_name", d->display_name},
        {"domain", d->name},              {"flavor", d->flavor},
        {"project_id", d->project_id},    {"project_name", d->project_name},
        {"user_id", d->user_id},          {"user_name", d->user_name}};
    EXPECT_EQ(info.at(d->uuid), want);
  }
  EXPECT_NE(text.str().find("hvtel_libvirt_up 1\n"), std::string::npos);
  EXPECT_NE(text.str().find("instance_name=\"billing \\\"db\\\" 02\""), std::string::npos);
  EXPECT_NE(text.str().find("instance_name=\"web\\\\frontend-01\""), std::string::npos);
}

TEST_F(LibvirtLive, NovaLabelParityWithPrometheusLibvirtExporter) {
  HV_REQUIRE(fs::exists("/usr/bin/prometheus-libvirt-exporter"), "needs prometheus-libvirt-exporter");
  LibvirtClient client(client_options());
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(poll_until([&] { return both_present(client); }, 10s));

  const int port = free_port();
  pid_t exporter = spawn({"/usr/bin/prometheus-libvirt-exporter",
                          "--web.listen-address=127.0.0.1:" + std::to_string(port),
                          "--libvirt.export-nova-metadata", "--libvirt.uri=" + daemons_.rw_uri()},
                         daemons_.dir() + "/exporter.out");
  std::optional<std::string> theirs;
  poll_until([&] { return (theirs = http_get(port, "/metrics")).has_value(); }, 10s);
  stop_pid(exporter);
  ASSERT_TRUE(theirs) << read_file(daemons_.dir() + "/exporter.out").value_or("");

  std::ostringstream ours_text;
  prometheus::TextSerializer().Serialize(ours_text, LibvirtCollector(client).Collect());
  std::map<std::string, Series> ours_info;
  std::map<std::string, double> ours_vcpus;
  for (auto& s : parse_exposition(ours_text.str())) {
    if (s.name == "hvtel_instance_info") ours_info[s.labels["instance_id"]] = s;
    if (s.name == "hvtel_instance_vcpus") ours_vcpus[s.labels["instance_id"]] = s.value;
  }
  int compared = 0;
  for (const auto& s : parse_exposition(*theirs)) {
    if (s.name != "libvirt_domain_info_virtual_cpus") continue;
    const std::string uuid = s.labels.at("uuid");
    if (uuid != kDomA.uuid && uuid != kDomB.uuid) continue;
    SCOPED_TRACE(uuid);
    ASSERT_TRUE(ours_info.count(uuid));
    const auto& mine = ours_info[uuid].labels;
    // Their label -> ours: every Nova attribute the exporter knows.
    EXPECT_EQ(s.labels.at("name"), mine.at("instance_name"));
    EXPECT_EQ(s.labels.at("flavor"), mine.at("flavor"));
    EXPECT_EQ(s.labels.at("project_name"), mine.at("project_name"));
    EXPECT_EQ(s.labels.at("domain"), mine.at("domain"));
    EXPECT_EQ(s.value, ours_vcpus.at(uuid));
    EXPECT_EQ(s.labels.size(), 5u) << "exporter grew labels; extend the parity check";
    ++compared;
  }
  EXPECT_EQ(compared, 2);
}

}  // namespace
}  // namespace hvtel::libvirt
