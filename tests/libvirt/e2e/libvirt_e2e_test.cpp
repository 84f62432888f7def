// Privileged end to end: `hvtel serve --libvirt-uri` against a private libvirtd
// running two real QEMU guests defined the way Nova defines them (Nova 1.1
// metadata, dedicated <cputune> pins), scraped over HTTP.
//
// This machine has two CPUs. With `cpu_dedicated_set = 0-1`:
//   A: vCPU 0 pinned to pCPU 1, emulator on 1   (D(A) = {1})
//   B: vCPU 0 pinned to pCPU 0, emulator on 0   (D(B) = {0})
// so the clean state has no pinning violation, and moving either of A's pins
// to pCPU 0 is an overlap with B.
//
// Each test starts its own agent. The daemons and domains are shared within one
// process; a test that changes a domain's live state marks it dirty and the next
// SetUp restarts it from its XML.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "libvirt_fixture.h"
#include "support/exposition.h"
#include "support/process.h"
#include "support/test_env.h"
#include "base/util/files.h"
#include "base/util/strings.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace hvtel::libvirt::testing;
using hvtel::testing::Process;
using hvtel::testing::Scrape;
using Clock = std::chrono::steady_clock;
using Labels = std::map<std::string, std::string>;

// SeaBIOS retries the boot every second: each retry is a reset and a POST
// full of port I/O that QEMU handles, so the vCPU threads keep exiting to the
// VMM (which is what gives them a slot in an agent started later).
const TestDomain kA{"hvtel-e2e-a", "e2e0000a-7c1d-4b6e-9f00-0000000000aa", "billing \"db\" 02",
                    "c1.dedicated", "c1-dedicated", "5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d", "svc-billing",
                    "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5", "billing-prod",
                    {{0, {1}}}, {1}, {}, 0, /*vcpus=*/1, /*reboot_timeout_ms=*/1000};
const TestDomain kB{"hvtel-e2e-b", "e2e0000b-7c1d-4b6e-9f00-0000000000bb", "web\\frontend-01",
                    "c1.dedicated", "c1-dedicated", "11112222333344445555666677778888", "alice",
                    "99998888777766665555444433332222", "web-prod",
                    {{0, {0}}}, {0}, {}, 0, /*vcpus=*/1, /*reboot_timeout_ms=*/1000};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// `hvtel serve` on the private libvirtd, with dedicated pCPUs 0-1.
class Agent {
 public:
  Agent(const std::string& libvirt_uri, const std::string& nova_conf) : port_(hvtel::testing::free_port()) {
    proc_ = std::make_unique<Process>(std::vector<std::string>{
        HVTEL_BIN, "serve", "--listen", "127.0.0.1:" + std::to_string(port_), "--poll-interval-ms", "100",
        "--libvirt-uri", libvirt_uri, "--nova-conf", nova_conf,
        // Every class's series at 0: the checks below tell "tracked, clean" from "not tracked".
        "--pinning-zero-series"});
    ready_ = proc_->wait_output("serving /metrics", 15000, /*in_stderr=*/true);
  }
  bool ready() const { return ready_; }
  Process& process() { return *proc_; }
  // The body, or "" (and ok=false) unless HTTP 200.
  Scrape scrape(bool* ok = nullptr) const {
    bool good = false;
    std::string body = hvtel::testing::http_get(port_, "/metrics", &good);
    if (ok) *ok = good;
    return Scrape(good ? body : "");
  }
  // Scrapes every 50 ms until pred holds or the timeout passes; the last scrape.
  Scrape wait_for(const std::function<bool(const Scrape&)>& pred, std::chrono::milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      Scrape s = scrape();
      if (pred(s) || Clock::now() > deadline) return s;
      std::this_thread::sleep_for(50ms);
    }
  }

 private:
  int port_;
  std::unique_ptr<Process> proc_;
  bool ready_ = false;
};

double viol(const Scrape& s, const std::string& id, const std::string& cls) {
  return s.value("hvtel_pinning_violations_total", {{"instance_id", id}, {"class", cls}}).value_or(-1);
}
double active(const Scrape& s, const std::string& id, const std::string& cls) {
  return s.value("hvtel_pinning_violation_active", {{"instance_id", id}, {"class", cls}}).value_or(-1);
}
double run_seconds(const Scrape& s, const std::string& id) {
  return s.sum("hvtel_vcpu_run_seconds_total", {{"instance_id", id}});
}
double exits(const Scrape& s, const std::string& id) {
  return s.sum("hvtel_vcpu_userspace_exits_total", {{"instance_id", id}}) +
         s.sum("hvtel_vcpu_exits_total", {{"instance_id", id}});
}
bool has_info(const Scrape& s, const std::string& id) {
  return s.count("hvtel_instance_info", {{"instance_id", id}}) == 1;
}
// KVM guests exit; TCG guests (hosts without /dev/kvm) run no KVM code.
bool exits_as_expected(const Scrape& s, const std::string& id, const std::string& dom_type) {
  return dom_type == "kvm" ? exits(s, id) > 0
                           : s.count("hvtel_vcpu_exits_total", {{"instance_id", id}}) == 0 &&
                                 s.count("hvtel_vcpu_userspace_exits_total", {{"instance_id", id}}) == 0;
}
// Everything the agent says about a running, tracked, pinned domain.
bool fully_present(const Scrape& s, const std::string& id, const std::string& dom_type) {
  return has_info(s, id) && run_seconds(s, id) > 0 && exits_as_expected(s, id, dom_type) &&
         s.count("hvtel_pinning_violations_total", {{"instance_id", id}}) == 13 &&
         s.count("hvtel_pinning_violation_active", {{"instance_id", id}}) == 8;
}
// Samples that name `id`, in any label.
std::vector<std::string> series_naming(const Scrape& s, const std::string& id) {
  std::vector<std::string> out;
  for (const auto& smp : hvtel::testing::parse_exposition(s.text()))
    for (const auto& [k, v] : smp.labels)
      if (v == id) out.push_back(smp.name + "{" + k + "=" + v + "}");
  return out;
}

// The tid of QEMU's "CPU <n>/KVM" (or /TCG) thread.
pid_t vcpu_tid(pid_t qemu, int n) {
  auto tasks = hvtel::list_dir("/proc/" + std::to_string(qemu) + "/task");
  if (!tasks) return 0;
  const std::string prefix = "CPU " + std::to_string(n) + "/";
  for (const auto& t : *tasks) {
    auto comm = hvtel::read_file("/proc/" + std::to_string(qemu) + "/task/" + t + "/comm");
    if (comm && hvtel::trim(*comm).starts_with(prefix)) return static_cast<pid_t>(std::stoi(t));
  }
  return 0;
}

std::string affinity_list(pid_t tid) {
  auto st = hvtel::read_file("/proc/" + std::to_string(tid) + "/status");
  if (!st) return "";
  auto at = st->find("Cpus_allowed_list:");
  if (at == std::string::npos) return "";
  auto end = st->find('\n', at);
  return std::string(hvtel::trim(st->substr(at + 18, end - at - 18)));
}

// The cpuset.cpus file of a thread's cpuset cgroup (v1, else v2); "" if none.
std::string cpuset_cpus_file(pid_t qemu, pid_t tid) {
  auto cg = hvtel::read_file("/proc/" + std::to_string(qemu) + "/task/" + std::to_string(tid) + "/cgroup");
  if (!cg) return "";
  std::istringstream in(*cg);
  std::string line, v2;
  while (std::getline(in, line)) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string ctrl = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (ctrl == "cpuset") return "/sys/fs/cgroup/cpuset" + path + "/cpuset.cpus";
    if (ctrl.empty()) v2 = "/sys/fs/cgroup" + path + "/cpuset.cpus";
  }
  return fs::exists(v2) ? v2 : "";
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.flush();
  return f.good();
}

class LibvirtE2e : public ::testing::Test {
 protected:
  static inline LibvirtDaemons daemons_;
  static inline bool ready_ = false;
  static inline std::set<std::string> dirty_;  // domains whose live state a test changed
  static inline std::string nova_conf_;

  static std::string virsh(const std::string& args) { return daemons_.virsh(args); }
  static void mark_dirty(const TestDomain& d) { dirty_.insert(d.name); }

  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(fs::exists("/usr/sbin/libvirtd") && fs::exists("/usr/bin/qemu-system-x86_64") &&
                   fs::exists("/usr/bin/virsh"),
               "needs libvirt-daemon-system, libvirt-clients and qemu-system-x86");
    HV_REQUIRE(std::thread::hardware_concurrency() >= 2, "needs two CPUs");
    if (!ready_) {
      const std::string err = daemons_.start("hvtel-libvirt-e2e");
      ASSERT_EQ(err, "");
      for (const auto* d : {&kA, &kB}) daemons_.remove_domain(d->name);  // leftovers of a crashed run
      std::string probe_err;
      daemons_.pick_type(kA, &probe_err);
      ASSERT_EQ(probe_err, "");
      nova_conf_ = daemons_.dir() + "/nova.conf";
      std::ofstream(nova_conf_) << "[DEFAULT]\nhost = e2e\n\n[compute]\ncpu_dedicated_set = 0-1\n";
      ready_ = true;
    }
    for (const auto* d : {&kA, &kB}) {
      if (dirty_.erase(d->name)) daemons_.remove_domain(d->name);
      ASSERT_EQ(daemons_.ensure_running(*d), "");
    }
    qa_ = LibvirtDaemons::qemu_pid(kA.name);
    qb_ = LibvirtDaemons::qemu_pid(kB.name);
    ASSERT_GT(qa_, 0);
    ASSERT_GT(qb_, 0);
  }

  static void TearDownTestSuite() {
    daemons_.stop({kA.name, kB.name});
    ready_ = false;
    dirty_.clear();
  }

  // A fresh agent that has found both guests: names, vCPU threads, pins.
  std::unique_ptr<Agent> start_agent() {
    auto agent = std::make_unique<Agent>(daemons_.ro_uri(), nova_conf_);
    EXPECT_TRUE(agent->ready()) << agent->process().err();
    if (!agent->ready()) return nullptr;
    const std::string& t = daemons_.dom_type();
    Scrape s = agent->wait_for([&](const Scrape& x) { return fully_present(x, kA.uuid, t) && fully_present(x, kB.uuid, t); },
                               15s);
    EXPECT_TRUE(fully_present(s, kA.uuid, t) && fully_present(s, kB.uuid, t))
        << s.text() << "\n--- agent stderr:\n" << agent->process().err();
    return agent;
  }

  pid_t qa_ = 0, qb_ = 0;
};

TEST_F(LibvirtE2e, InstanceInfoEqualsNovaXmlAndVcpuSeriesCarryTheNovaUuid) {
  auto agent = start_agent();
  ASSERT_TRUE(agent);
  const Scrape s = agent->scrape();
  RecordProperty("domain_type", daemons_.dom_type());  // kvm with /dev/kvm, else qemu (TCG)

  // 1. hvtel_instance_info: exactly the XML.
  for (const auto* d : {&kA, &kB}) {
    SCOPED_TRACE(d->name);
    std::vector<Labels> info;
    for (const auto& smp : hvtel::testing::parse_exposition(s.text()))
      if (smp.name == "hvtel_instance_info" && smp.labels.at("instance_id") == d->uuid) {
        info.push_back(smp.labels);
        EXPECT_EQ(smp.value, 1.0);
      }
    ASSERT_EQ(info.size(), 1u) << s.text();
    const Labels want = {{"instance_id", d->uuid},      {"instance_name", d->display_name},
                         {"domain", d->name},           {"flavor", d->flavor},
                         {"project_id", d->project_id}, {"project_name", d->project_name},
                         {"user_id", d->user_id},       {"user_name", d->user_name}};
    EXPECT_EQ(info[0], want);
    EXPECT_EQ(s.value("hvtel_instance_vcpus", {{"instance_id", d->uuid}}), 1.0);
  }

  // 2. Exit and scheduling series of the QEMU vCPU threads carry the Nova UUID.
  for (const auto& [d, qemu] : {std::pair{&kA, qa_}, std::pair{&kB, qb_}}) {
    SCOPED_TRACE(d->name);
    // libvirt gives QEMU -uuid = domain UUID; the libvirt identity is what wins.
    auto cmdline = hvtel::read_file("/proc/" + std::to_string(qemu) + "/cmdline");
    ASSERT_TRUE(cmdline);
    EXPECT_NE(cmdline->find(std::string("-uuid") + '\0' + d->uuid + '\0'), std::string::npos);
    EXPECT_TRUE(exits_as_expected(s, d->uuid, daemons_.dom_type())) << s.text();
    EXPECT_GT(run_seconds(s, d->uuid), 0);
    EXPECT_EQ(s.value("hvtel_vcpu_threads", {{"instance_id", d->uuid}}), 1.0);
    // Never under a procfs identity.
    EXPECT_TRUE(series_naming(s, "pid-" + std::to_string(qemu)).empty());
  }
  EXPECT_GE(s.value("hvtel_instances", {{"source", "libvirt"}}).value_or(0), 2.0);
  EXPECT_EQ(s.value("hvtel_libvirt_up"), 1.0);

  // 3. Under TCG (no /dev/kvm) hvtel status names both guests and says why they have no exits.
  if (daemons_.dom_type() == "qemu") {
    std::string out;
    ASSERT_EQ(hvtel::testing::run_command(std::string(HVTEL_BIN) + " status --json 2>/dev/null", &out), 0);
    const auto tcg = nlohmann::json::parse(out)["tcg_vmms"];
    std::map<std::string, int> vcpus;
    for (const auto& v : tcg) {
      vcpus[v["instance_id"].get<std::string>()] = v["vcpus"].get<int>();
      EXPECT_NE(v["reason"].get<std::string>().find("no VM exit"), std::string::npos) << v;
    }
    EXPECT_EQ(vcpus, (std::map<std::string, int>{{kA.uuid, 1}, {kB.uuid, 1}})) << out;
  }

  // 6a. A clean Nova layout: no static pinning violation, no off-pin run.
  for (const auto* d : {&kA, &kB}) {
    SCOPED_TRACE(d->name);
    for (const char* cls : {"affinity_drift", "dedicated_overlap", "emulator_policy_mismatch", "shared_on_dedicated"})
      EXPECT_EQ(active(s, d->uuid, cls), 0.0) << cls;
    for (const char* cls : {"offpin_run", "pin_changed", "dedicated_migration", "affinity_drift", "dedicated_overlap"})
      EXPECT_EQ(viol(s, d->uuid, cls), 0.0) << cls;
  }
  EXPECT_EQ(s.value("hvtel_pinning_config_errors_total", {{"source", "nova_conf"}}).value_or(0), 0.0);
}

TEST_F(LibvirtE2e, VirshMetadataDisplayNameShowsWithinTwoSeconds) {
  auto agent = start_agent();
  ASSERT_TRUE(agent);
  mark_dirty(kA);
  const auto t0 = Clock::now();
  auto r = sh(virsh("metadata " + kA.name + " --uri " + kNovaXmlns11 + " --key nova --live --set " +
                    shq(nova_instance(kA, "billing-renamed", false))));
  ASSERT_EQ(r.rc, 0) << r.out;
  const Labels renamed = {{"instance_id", kA.uuid}, {"instance_name", "billing-renamed"}};
  Scrape s = agent->wait_for([&](const Scrape& x) { return x.count("hvtel_instance_info", renamed) == 1; }, 2s);
  const double took = ms_since(t0);
  EXPECT_EQ(s.count("hvtel_instance_info", renamed), 1u) << s.text();
  EXPECT_EQ(s.count("hvtel_instance_info", {{"instance_id", kA.uuid}}), 1u);  // replaced, not added
  EXPECT_EQ(s.count("hvtel_instance_info", {{"instance_id", kB.uuid}, {"instance_name", kB.display_name}}), 1u);
  EXPECT_GE(s.value("hvtel_libvirt_events_total", {{"type", "metadata_change"}}).value_or(0), 1.0);
  fprintf(stderr, "metadata change visible after %.0f ms\n", took);
  EXPECT_LE(took, 2000);
}

TEST_F(LibvirtE2e, DestroyedDomainSeriesAreGone) {
  auto agent = start_agent();
  ASSERT_TRUE(agent);
  ASSERT_FALSE(series_naming(agent->scrape(), kB.uuid).empty());
  mark_dirty(kB);
  auto r = sh(virsh("destroy " + kB.name));
  ASSERT_EQ(r.rc, 0) << r.out;
  std::this_thread::sleep_for(1s);
  const Scrape s = agent->scrape();
  ASSERT_FALSE(s.text().empty());
  // Not one series names B any more: info, vCPU, scheduling, pinning, foreign time.
  const auto left = series_naming(s, kB.uuid);
  EXPECT_TRUE(left.empty()) << left.size() << " series left, first " << left.front() << "\n" << s.text();
  // A is untouched.
  EXPECT_TRUE(fully_present(s, kA.uuid, daemons_.dom_type())) << s.text();
  EXPECT_EQ(s.value("hvtel_instances", {{"source", "libvirt"}}).value_or(0),
            s.count("hvtel_instance_info"));
}

TEST_F(LibvirtE2e, FiveLibvirtdRestartsUnderContinuousScrapes) {
  auto agent = start_agent();
  ASSERT_TRUE(agent);

  struct Result {
    Clock::time_point at;
    bool ok = false, has_up = false, up = false, mapped = false;
  };
  std::mutex mu;
  std::vector<Result> results;
  std::atomic<bool> stop{false};
  std::thread scraper([&] {  // every 100 ms, whatever libvirtd is doing
    auto next = Clock::now();
    while (!stop) {
      Result r;
      Scrape s = agent->scrape(&r.ok);
      r.at = Clock::now();
      auto up = s.value("hvtel_libvirt_up");
      r.has_up = up.has_value();
      r.up = up == 1.0;
      r.mapped = has_info(s, kA.uuid) && has_info(s, kB.uuid);
      {
        std::lock_guard lk(mu);
        results.push_back(r);
      }
      next += 100ms;
      std::this_thread::sleep_until(next);
    }
  });
  auto last = [&] {
    std::lock_guard lk(mu);
    return results.empty() ? Result{} : results.back();
  };
  auto wait_result = [&](const std::function<bool(const Result&)>& pred, std::chrono::milliseconds timeout,
                         Clock::time_point after) {
    return poll_until([&] {
      Result r = last();
      return r.at > after && pred(r);
    }, timeout);
  };

  std::vector<double> restore_ms;
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("restart " + std::to_string(round));
    const auto killed = Clock::now();
    daemons_.stop_libvirtd(round % 2 ? SIGKILL : SIGTERM);
    EXPECT_TRUE(wait_result([](const Result& r) { return r.ok && r.has_up && !r.up; }, 20s, killed))
        << "hvtel_libvirt_up never went to 0";
    daemons_.start_libvirtd();
    const auto started = Clock::now();
    const bool restored =
        wait_result([](const Result& r) { return r.ok && r.up && r.mapped; }, 10s, started);
    restore_ms.push_back(ms_since(started));
    fprintf(stderr, "round %d (%s): restored in %.0f ms\n", round, round % 2 ? "SIGKILL" : "SIGTERM",
            restore_ms.back());
    ASSERT_TRUE(restored) << "not restored within 10 s";
    EXPECT_LE(restore_ms.back(), 5000) << "restored, but after 5 s";
    EXPECT_EQ(kill(qa_, 0), 0) << "QEMU of " << kA.name << " died";
    EXPECT_EQ(kill(qb_, 0), 0) << "QEMU of " << kB.name << " died";
  }
  stop = true;
  scraper.join();

  size_t failed = 0, without_up = 0, unmapped = 0;
  for (const auto& r : results) {
    failed += !r.ok;
    without_up += r.ok && !r.has_up;
    unmapped += r.ok && !r.mapped;
  }
  fprintf(stderr, "%zu scrapes: %zu failed, %zu without hvtel_libvirt_up, %zu without both instance_info\n",
          results.size(), failed, without_up, unmapped);
  // Each round waited for a scrape with libvirt down and one restored.
  EXPECT_GE(results.size(), 10u);
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(without_up, 0u);
  // The last inventory is kept while libvirtd is away (docs/metrics.md).
  EXPECT_EQ(unmapped, 0u);
  const Scrape s = agent->scrape();
  EXPECT_EQ(s.value("hvtel_libvirt_reconnects_total"), 5.0);
  EXPECT_TRUE(fully_present(s, kA.uuid, daemons_.dom_type()) && fully_present(s, kB.uuid, daemons_.dom_type()))
      << s.text();
  // The vCPU threads never changed identity.
  for (pid_t q : {qa_, qb_}) EXPECT_TRUE(series_naming(s, "pid-" + std::to_string(q)).empty());
}

TEST_F(LibvirtE2e, VirshVcpupinIsPinChangedAndOverlapsTheOtherDedicatedInstance) {
  auto agent = start_agent();
  ASSERT_TRUE(agent);
  Scrape s = agent->scrape();
  ASSERT_EQ(active(s, kA.uuid, "dedicated_overlap"), 0.0) << s.text();
  ASSERT_EQ(viol(s, kA.uuid, "pin_changed"), 0.0);

  mark_dirty(kA);
  auto r = sh(virsh("vcpupin " + kA.name + " 0 0 --live"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto t0 = Clock::now();
  s = agent->wait_for([](const Scrape& x) {
    return viol(x, kA.uuid, "pin_changed") >= 1 && active(x, kA.uuid, "dedicated_overlap") == 1.0 &&
           active(x, kB.uuid, "dedicated_overlap") == 1.0;
  }, 3s);
  fprintf(stderr, "vcpupin: pin_changed %.0f, overlap after %.0f ms\n", viol(s, kA.uuid, "pin_changed"), ms_since(t0));
  // One TUNABLE event from libvirt; libvirtd's own sched_setaffinity is allowed.
  EXPECT_EQ(viol(s, kA.uuid, "pin_changed"), 1.0) << s.text();
  EXPECT_EQ(active(s, kA.uuid, "dedicated_overlap"), 1.0);
  EXPECT_EQ(active(s, kB.uuid, "dedicated_overlap"), 1.0);
  EXPECT_GE(viol(s, kA.uuid, "dedicated_overlap"), 1.0);
  EXPECT_GE(viol(s, kB.uuid, "dedicated_overlap"), 1.0);
  EXPECT_EQ(viol(s, kB.uuid, "pin_changed"), 0.0);
  // The live intent moved with the pin: the thread is where libvirt put it.
  EXPECT_EQ(affinity_list(vcpu_tid(qa_, 0)), "0");
  EXPECT_EQ(active(s, kA.uuid, "affinity_drift"), 0.0);
  EXPECT_GE(s.value("hvtel_libvirt_events_total", {{"type", "tunable"}}).value_or(0), 1.0);

  // Back to its own pCPU: the overlap clears for both.
  r = sh(virsh("vcpupin " + kA.name + " 0 1 --live"));
  ASSERT_EQ(r.rc, 0) << r.out;
  s = agent->wait_for([](const Scrape& x) {
    return active(x, kA.uuid, "dedicated_overlap") == 0.0 && active(x, kB.uuid, "dedicated_overlap") == 0.0;
  }, 3s);
  EXPECT_EQ(active(s, kA.uuid, "dedicated_overlap"), 0.0) << s.text();
  EXPECT_EQ(active(s, kB.uuid, "dedicated_overlap"), 0.0);
  EXPECT_EQ(viol(s, kA.uuid, "pin_changed"), 2.0);
}

TEST_F(LibvirtE2e, TasksetOnAQemuVcpuThreadIsDriftOffpinAndPinChanged) {
  auto agent = start_agent();
  ASSERT_TRUE(agent);
  const pid_t tid = vcpu_tid(qa_, 0);
  ASSERT_GT(tid, 0);
  ASSERT_EQ(affinity_list(tid), "1");
  Scrape s = agent->scrape();
  ASSERT_EQ(active(s, kA.uuid, "affinity_drift"), 0.0) << s.text();
  ASSERT_EQ(viol(s, kA.uuid, "offpin_run"), 0.0);

  // libvirt confines vCPU 0 to its pin with the vcpu0 cpuset cgroup too, so
  // taskset alone gets EINVAL. Widen the cgroup first, as a cgroup reset
  // (systemctl daemon-reload, cpuset v1 CPU hotplug) does: that is drift by
  // cgroup already, but no thread has moved and nobody called sched_setaffinity.
  mark_dirty(kA);
  const std::string cpus_file = cpuset_cpus_file(qa_, tid);
  ASSERT_NE(cpus_file, "") << "vCPU 0 of " << kA.name << " is in no cpuset cgroup";
  ASSERT_EQ(hvtel::trim(hvtel::read_file(cpus_file).value_or("")), "1") << cpus_file;
  ASSERT_TRUE(write_text(cpus_file, "0-1")) << cpus_file;
  s = agent->wait_for([](const Scrape& x) { return active(x, kA.uuid, "affinity_drift") == 1.0; }, 3s);
  EXPECT_EQ(active(s, kA.uuid, "affinity_drift"), 1.0) << "cgroup widened to 0-1\n" << s.text();
  EXPECT_EQ(viol(s, kA.uuid, "pin_changed"), 0.0);
  EXPECT_EQ(viol(s, kA.uuid, "offpin_run"), 0.0);
  fprintf(stderr, "after widening the cgroup: affinity %s\n", affinity_list(tid).c_str());

  const auto t0 = Clock::now();
  auto r = sh("taskset -p -c 0 " + std::to_string(tid));
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_EQ(affinity_list(tid), "0");
  s = agent->wait_for([](const Scrape& x) {
    return active(x, kA.uuid, "affinity_drift") == 1.0 && viol(x, kA.uuid, "offpin_run") >= 1 &&
           viol(x, kA.uuid, "pin_changed") >= 1;
  }, 1s);
  const double took = ms_since(t0);
  fprintf(stderr, "taskset: drift/offpin/pin_changed after %.0f ms (offpin %.0f, pin_changed %.0f)\n", took,
          viol(s, kA.uuid, "offpin_run"), viol(s, kA.uuid, "pin_changed"));
  EXPECT_EQ(active(s, kA.uuid, "affinity_drift"), 1.0) << s.text();
  EXPECT_GE(viol(s, kA.uuid, "offpin_run"), 1.0);
  EXPECT_GE(viol(s, kA.uuid, "pin_changed"), 1.0);
  EXPECT_GE(viol(s, kA.uuid, "affinity_drift"), 1.0);
  // Nothing happened to B's pins (A's vCPU on pCPU 0 is a kernel-side co-run
  // or intruder on B, not a static change of B).
  EXPECT_EQ(active(s, kB.uuid, "affinity_drift"), 0.0);
  EXPECT_EQ(viol(s, kB.uuid, "pin_changed"), 0.0);

  // Moved back and the cgroup restored: the drift clears.
  r = sh("taskset -p -c 1 " + std::to_string(tid));
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(write_text(cpus_file, "1")) << cpus_file;
  s = agent->wait_for([](const Scrape& x) { return active(x, kA.uuid, "affinity_drift") == 0.0; }, 3s);
  EXPECT_EQ(active(s, kA.uuid, "affinity_drift"), 0.0) << s.text();
}

}  // namespace
