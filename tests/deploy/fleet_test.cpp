// The fleet configuration of deploy/ proven end to end: real hvtel agents on
// loopback, a real Prometheus with the shipped scrape job, relabeling and
// alert rules, a real Alertmanager with the shipped routing and inhibition,
// and a webhook receiver that records every notification.
//
// Prometheus here is Debian's, built without Kubernetes discovery, so the
// shipped job's kubernetes_sd_configs become file_sd_configs that carry the
// same __meta_kubernetes_* labels Kubernetes discovery would: the job's own
// relabel_configs turn them into instance/hypervisor/zone/rack. Rule `for`
// durations are divided by 12 (their order is kept) and Alertmanager's
// group_wait is 2 s, so a scenario takes seconds, not minutes; everything
// else is the shipped text.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "libvirt_fixture.h"
#include "support/process.h"
#include "support/test_env.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hvtel::testing::Process;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

void write_file(const std::string& path, const std::string& text) {
  // file_sd watches with inotify: replace, never show a half-written file.
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  fs::rename(tmp, path);
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return pred();
}

// GET on loopback, parsed as JSON; null when the request or the parse fails.
json get_json(int port, const std::string& path) {
  bool ok = false;
  std::string body = hvtel::testing::http_get(port, path, &ok);
  if (!ok) return nullptr;
  return json::parse(body, nullptr, /*allow_exceptions=*/false);
}

// Records the body of every POST; answers 200.
class Webhook {
 public:
  Webhook() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Webhook() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::vector<json> received() const {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_;
  }

 private:
  void serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      timeval tv{5, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      std::string req;
      char buf[8192];
      size_t want = std::string::npos;
      while (true) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        auto hdr = req.find("\r\n\r\n");
        if (hdr != std::string::npos && want == std::string::npos) {
          auto cl = req.find("Content-Length: ");
          want = hdr + 4 + (cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16)));
        }
        if (want != std::string::npos && req.size() >= want) break;
      }
      const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!write(c, ok.data(), ok.size());
      close(c);
      auto hdr = req.find("\r\n\r\n");
      if (hdr == std::string::npos) continue;
      json body = json::parse(req.substr(hdr + 4), nullptr, false);
      std::lock_guard<std::mutex> l(mu_);
      bodies_.push_back(body);
    }
  }

  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<json> bodies_;
};

// One hypervisor of the test fleet: an `hvtel serve` on its own loopback port.
struct Hypervisor {
  std::string name, zone, rack, pod;
  int port = 0;
  std::vector<std::string> extra;
  std::unique_ptr<Process> agent;

  void start() {
    std::vector<std::string> argv{HVTEL_BIN, "serve", "--web.listen-address",
                                  "127.0.0.1:" + std::to_string(port), "--poll-interval-ms", "100",
                                  "--events-listen", "",
                                  // Clean guests show 0, not no series: the wait for hv4 below needs them.
                                  "--pinning-zero-series"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (std::find(extra.begin(), extra.end(), "--libvirt-uri") == extra.end()) {
      argv.push_back("--libvirt-uri");  // no libvirt on this "hypervisor"
      argv.push_back("");
    }
    agent = std::make_unique<Process>(argv);
  }
  bool serving() { return agent && agent->wait_output("serving /metrics", 60000, /*in_stderr=*/true); }
  void kill_agent() {  // a host that dies gives no warning
    if (agent && agent->running()) ::kill(agent->pid(), SIGKILL);
    if (agent) agent->wait(5000);
  }
};

// A target group as Kubernetes pod discovery (role: pod, attach_metadata.node)
// would describe the hvtel pod on `h`'s node.
json k8s_target(const Hypervisor& h) {
  return {{"targets", {"127.0.0.1:" + std::to_string(h.port)}},
          {"labels",
           {{"__meta_kubernetes_pod_name", h.pod},
            {"__meta_kubernetes_pod_node_name", h.name},
            {"__meta_kubernetes_pod_container_port_name", "metrics"},
            {"__meta_kubernetes_namespace", "monitoring"},
            {"__meta_kubernetes_node_label_topology_kubernetes_io_zone", h.zone},
            {"__meta_kubernetes_node_label_rack", h.rack}}}};
}

std::string emit(const YAML::Node& n) {
  YAML::Emitter out;
  out << n;
  return std::string(out.c_str()) + "\n";
}

int seconds_of(const std::string& d) {
  const int n = std::stoi(d);
  switch (d.back()) {
    case 's': return n;
    case 'm': return n * 60;
    case 'h': return n * 3600;
  }
  ADD_FAILURE() << "unexpected duration " << d;
  return n;
}

class Fleet : public ::testing::Test {
 protected:
  void SetUp() override {
    HV_REQUIRE_ROOT();
    HV_REQUIRE(fs::exists("/usr/bin/prometheus") && fs::exists("/usr/bin/prometheus-alertmanager"),
               "needs prometheus and prometheus-alertmanager");
    char tmpl[] = "/tmp/hvtel-fleet.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    prometheus_.reset();
    alertmanager_.reset();
    for (auto& h : hosts_) h.agent.reset();
    if (!dir_.empty() && !std::getenv("HVTEL_KEEP_TMP")) fs::remove_all(dir_);
  }

  Hypervisor& add(std::string name, std::string zone, std::string rack, std::vector<std::string> extra = {}) {
    Hypervisor h;
    h.name = std::move(name);
    h.zone = std::move(zone);
    h.rack = std::move(rack);
    h.pod = "hvtel-" + h.name + "-0";
    h.port = hvtel::testing::free_port();
    h.extra = std::move(extra);
    hosts_.push_back(std::move(h));
    return hosts_.back();
  }
  void start_agents() {
    for (auto& h : hosts_) h.start();
    for (auto& h : hosts_) ASSERT_TRUE(h.serving()) << h.name << ": " << h.agent->err();
  }
  void write_targets() {
    json groups = json::array();
    for (const auto& h : hosts_) groups.push_back(k8s_target(h));
    write_file(dir_ + "/targets.json", groups.dump(2));
  }

  // The shipped deploy/prometheus/prometheus.yml, on file discovery, 1 s
  // scrapes and evaluations, with `extra_jobs` appended.
  void start_prometheus(bool with_rules, const std::vector<YAML::Node>& extra_jobs = {}) {
    write_targets();
    YAML::Node cfg = YAML::LoadFile(HVTEL_SOURCE_DIR "/deploy/prometheus/prometheus.yml");
    cfg["global"]["scrape_interval"] = "1s";
    cfg["global"]["evaluation_interval"] = "1s";
    for (auto job : cfg["scrape_configs"]) {
      ASSERT_TRUE(job["kubernetes_sd_configs"]) << "the shipped job no longer uses Kubernetes discovery";
      job.remove("kubernetes_sd_configs");
      YAML::Node sd;
      sd["files"].push_back(dir_ + "/targets.json");
      job["file_sd_configs"].push_back(sd);
      job["scrape_timeout"] = "900ms";
    }
    for (const auto& j : extra_jobs) cfg["scrape_configs"].push_back(j);
    cfg.remove("rule_files");
    cfg.remove("alerting");
    if (with_rules) {
      cfg["rule_files"].push_back(dir_ + "/hvtel-rules.yaml");
      write_file(dir_ + "/hvtel-rules.yaml", scaled_rules());
      cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"].push_back(
          "127.0.0.1:" + std::to_string(am_port_));
    }
    write_file(dir_ + "/prometheus.yml", emit(cfg));
    prom_port_ = hvtel::testing::free_port();
    prometheus_ = std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
        "--storage.tsdb.path=" + dir_ + "/tsdb", "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_)});
    ASSERT_TRUE(wait_until([&] {
      bool ok = false;
      hvtel::testing::http_get(prom_port_, "/-/ready", &ok);
      return ok;
    }, 30s)) << prometheus_->err();
  }

  // deploy/prometheus/hvtel-rules.yaml with every `for` divided by 12.
  static std::string scaled_rules() {
    YAML::Node rules = YAML::LoadFile(HVTEL_SOURCE_DIR "/deploy/prometheus/hvtel-rules.yaml");
    for (auto group : rules["groups"])
      for (auto rule : group["rules"])
        if (rule["for"]) rule["for"] = std::to_string(std::max(1, seconds_of(rule["for"].as<std::string>()) / 12)) + "s";
    return emit(rules);
  }

  // deploy/alertmanager/alertmanager.yml with every receiver posting to the
  // webhook under its own path, and group_wait 2 s.
  void start_alertmanager(const Webhook& hook) {
    YAML::Node cfg = YAML::LoadFile(HVTEL_SOURCE_DIR "/deploy/alertmanager/alertmanager.yml");
    cfg["route"]["group_wait"] = "2s";
    for (auto r : cfg["receivers"])
      for (auto w : r["webhook_configs"])
        w["url"] = "http://127.0.0.1:" + std::to_string(hook.port()) + "/" + r["name"].as<std::string>();
    write_file(dir_ + "/alertmanager.yml", emit(cfg));
    am_port_ = hvtel::testing::free_port();
    alertmanager_ = std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/prometheus-alertmanager", "--config.file=" + dir_ + "/alertmanager.yml",
        "--storage.path=" + dir_ + "/am", "--web.listen-address=127.0.0.1:" + std::to_string(am_port_),
        "--cluster.listen-address="});
    ASSERT_TRUE(wait_until([&] {
      bool ok = false;
      hvtel::testing::http_get(am_port_, "/-/ready", &ok);
      return ok;
    }, 30s)) << alertmanager_->err();
  }

  json query(const std::string& expr) {
    json r = get_json(prom_port_, "/api/v1/query?query=" + url_encode(expr));
    return r.is_object() && r["status"] == "success" ? r["data"]["result"] : json::array();
  }
  // Every series (name and labels) Prometheus has stored for `selector`.
  std::set<std::string> series(const std::string& selector) {
    json r = get_json(prom_port_, "/api/v1/series?match[]=" + url_encode(selector));
    std::set<std::string> out;
    if (r.is_object() && r["status"] == "success")
      for (const auto& s : r["data"]) out.insert(s.dump());
    return out;
  }
  // Alertmanager's view of the alert whose labels include `labels`:
  // "active", "suppressed" (inhibited or silenced) or "" if it has none.
  std::string am_state(const std::map<std::string, std::string>& labels) {
    json alerts = get_json(am_port_, "/api/v2/alerts");
    if (!alerts.is_array()) return "";
    for (const auto& a : alerts) {
      bool match = true;
      for (const auto& [k, v] : labels) match = match && a["labels"].value(k, "") == v;
      if (match) return a["status"].value("state", "");
    }
    return "";
  }

  std::string dir_;
  std::vector<Hypervisor> hosts_;
  int prom_port_ = 0, am_port_ = 0;
  std::unique_ptr<Process> prometheus_, alertmanager_;
};

// A rolling update replaces every hvtel pod (new pod name, new process) on
// the same node: the shipped relabeling names targets by node, so Prometheus
// stores no series it did not have before. A control job that keeps the pod
// name shows the test would see new series if it did.
TEST_F(Fleet, RollingRestartOfAnAgentAddsNoSeries) {
  add("hv1", "z1", "r1");
  add("hv2", "z1", "r1");
  ASSERT_NO_FATAL_FAILURE(start_agents());
  YAML::Node control = YAML::Load(R"(
job_name: control
file_sd_configs: [{files: [TARGETS]}]
relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
)");
  control["file_sd_configs"][0]["files"][0] = dir_ + "/targets.json";
  ASSERT_NO_FATAL_FAILURE(start_prometheus(/*with_rules=*/false, {control}));

  const std::string ours = "{job=\"hvtel\"}", theirs = "{job=\"control\"}";
  auto scrapes_of = [&](const std::string& host) {
    json r = query("sum(count_over_time(up{job=\"hvtel\",instance=\"" + host + "\"}[1h]))");
    return r.empty() ? 0.0 : std::stod(r[0]["value"][1].get<std::string>());
  };
  // Both agents scraped a few times: their full series set is stored.
  ASSERT_TRUE(wait_until([&] { return scrapes_of("hv1") >= 5 && scrapes_of("hv2") >= 5; }, 60s));
  json up = query("up{job=\"hvtel\"} == 1");
  ASSERT_EQ(up.size(), 2u) << up.dump();
  for (const auto& s : up) {
    // Named by node, with the node's topology, and nothing of the pod.
    const json& m = s["metric"];
    EXPECT_EQ(m["instance"], m["hypervisor"]);
    EXPECT_EQ(m["zone"], "z1");
    EXPECT_EQ(m["rack"], "r1");
    EXPECT_FALSE(m.contains("pod")) << m.dump();
  }
  const auto before = series(ours), control_before = series(theirs);
  ASSERT_GT(before.size(), 50u);

  // The rollout: the old pod stops, a new one (new name, new pid) serves on
  // the same node and port.
  Hypervisor& hv1 = hosts_[0];
  const pid_t old_pid = hv1.agent->pid();
  hv1.agent.reset();
  hv1.pod = "hvtel-hv1-1";
  write_targets();
  hv1.start();
  ASSERT_TRUE(hv1.serving()) << hv1.agent->err();
  ASSERT_NE(hv1.agent->pid(), old_pid);
  const double scraped = scrapes_of("hv1");
  // Prometheus passes discovery changes on at most every 5 s: wait until the
  // new pod's target is scraped by the control job as well, or the control
  // would count nothing.
  auto control_scrapes_of_new_pod = [&] {
    json r = query("sum(count_over_time(up{job=\"control\",pod=\"hvtel-hv1-1\"}[1h]))");
    return r.empty() ? 0.0 : std::stod(r[0]["value"][1].get<std::string>());
  };
  ASSERT_TRUE(wait_until([&] { return scrapes_of("hv1") >= scraped + 5 && control_scrapes_of_new_pod() >= 5; },
                         60s));
  ASSERT_EQ(query("up{job=\"hvtel\",instance=\"hv1\"} == 1").size(), 1u);

  const auto after = series(ours), control_after = series(theirs);
  std::vector<std::string> added;
  for (const auto& s : after)
    if (!before.count(s)) added.push_back(s);
  hvtel::testing::figure("series_before", static_cast<double>(before.size()));
  hvtel::testing::figure("series_added_by_rollout", static_cast<double>(added.size()));
  EXPECT_TRUE(added.empty()) << added.size() << " new series, e.g. " << added.front();
  EXPECT_EQ(after.size(), before.size());
  // The same rollout under a pod-named job: every series of hv1 again.
  const double control_added = static_cast<double>(control_after.size() - control_before.size());
  hvtel::testing::figure("series_added_when_named_by_pod", control_added);
  EXPECT_GE(control_added, static_cast<double>(before.size()) / 2 - 10);
}

// Two racks: r1 (hv1, hv2), r2 (hv3 and hv4, whose agent watches a private
// libvirtd with two Nova guests pinned to dedicated pCPUs). The whole of r1
// dies: one page (RackDown), its HypervisorDown alerts inhibited. hv3 dies:
// one page. A pin is moved on hv4: it pages once per alert, not per instance.
TEST_F(Fleet, ADeadRackPagesOnceADeadHypervisorPagesOncePinningStillPages) {
  using namespace hvtel::libvirt::testing;
  HV_REQUIRE(fs::exists("/usr/sbin/libvirtd") && fs::exists("/usr/bin/qemu-system-x86_64"),
             "needs libvirt-daemon-system and qemu-system-x86");
  HV_REQUIRE(std::thread::hardware_concurrency() >= 2, "needs two CPUs");
  // As tests/libvirt/e2e: A on pCPU 1, B on pCPU 0, both dedicated.
  const TestDomain a{"hvtel-fleet-a", "f1ee7000-7c1d-4b6e-9f00-0000000000aa", "fleet-a", "c1.dedicated",
                     "c1-dedicated", "5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d", "svc", "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5",
                     "fleet", {{0, {1}}}, {1}, {}, 0, 1, 1000};
  const TestDomain b{"hvtel-fleet-b", "f1ee7000-7c1d-4b6e-9f00-0000000000bb", "fleet-b", "c1.dedicated",
                     "c1-dedicated", "5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d", "svc", "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5",
                     "fleet", {{0, {0}}}, {0}, {}, 0, 1, 1000};
  LibvirtDaemons daemons;
  ASSERT_EQ(daemons.start("hvtel-fleet"), "");
  struct Cleanup {
    LibvirtDaemons& d;
    std::vector<std::string> domains;
    ~Cleanup() { d.stop(domains); }
  } cleanup{daemons, {a.name, b.name}};
  for (const auto* d : {&a, &b}) daemons.remove_domain(d->name);
  std::string err;
  daemons.pick_type(a, &err);
  ASSERT_EQ(err, "");
  ASSERT_EQ(daemons.ensure_running(b), "");
  const std::string nova_conf = daemons.dir() + "/nova.conf";
  std::ofstream(nova_conf) << "[DEFAULT]\nhost = hv4\n\n[compute]\ncpu_dedicated_set = 0-1\n";

  add("hv1", "z1", "r1");
  add("hv2", "z1", "r1");
  add("hv3", "z1", "r2");
  add("hv4", "z1", "r2", {"--libvirt-uri", daemons.ro_uri(), "--nova-conf", nova_conf});
  ASSERT_NO_FATAL_FAILURE(start_agents());
  Webhook hook;
  ASSERT_GT(hook.port(), 0);
  ASSERT_NO_FATAL_FAILURE(start_alertmanager(hook));
  ASSERT_NO_FATAL_FAILURE(start_prometheus(/*with_rules=*/true));
  ASSERT_TRUE(wait_until([&] { return query("up{job=\"hvtel\"} == 1").size() == 4; }, 60s));
  // hv4 watches both guests, and they are clean.
  ASSERT_TRUE(wait_until([&] {
    return query("hvtel_pinning_violation_active{instance=\"hv4\",class=\"dedicated_overlap\"} == 0").size() == 2;
  }, 60s)) << query("hvtel_pinning_violation_active").dump();

  auto pages = [&] {
    std::vector<json> out;
    for (const auto& n : hook.received())
      if (n.value("receiver", "") == "pager") out.push_back(n);
    return out;
  };
  auto describe = [&] {
    std::string s;
    for (const auto& n : pages()) s += n["groupLabels"].dump() + " " + std::to_string(n["alerts"].size()) + " alert(s)\n";
    return s;
  };

  // Rack r1 dies.
  hosts_[0].kill_agent();
  hosts_[1].kill_agent();
  ASSERT_TRUE(wait_until([&] { return !pages().empty(); }, 90s)) << "no page for the dead rack";
  // Its hypervisors' alerts reach Alertmanager a little later, held back.
  const std::map<std::string, std::string> down1{{"alertname", "HypervisorDown"}, {"hypervisor", "hv1"}},
      down2{{"alertname", "HypervisorDown"}, {"hypervisor", "hv2"}};
  EXPECT_TRUE(wait_until([&] { return am_state(down1) == "suppressed" && am_state(down2) == "suppressed"; }, 60s))
      << "hv1 " << am_state(down1) << ", hv2 " << am_state(down2);
  std::this_thread::sleep_for(5s);  // > group_wait: a page that was coming has come
  auto p = pages();
  ASSERT_EQ(p.size(), 1u) << describe();
  EXPECT_EQ(p[0]["status"], "firing");
  EXPECT_EQ(p[0]["groupLabels"], (json{{"alertname", "RackDown"}, {"zone", "z1"}}));
  ASSERT_EQ(p[0]["alerts"].size(), 1u);
  EXPECT_EQ(p[0]["alerts"][0]["labels"]["rack"], "r1");

  // hv3 dies; hv4 lives, so r2 is not down.
  hosts_[2].kill_agent();
  ASSERT_TRUE(wait_until([&] { return pages().size() >= 2; }, 90s)) << describe();
  std::this_thread::sleep_for(5s);
  p = pages();
  ASSERT_EQ(p.size(), 2u) << describe();
  EXPECT_EQ(p[1]["groupLabels"],
            (json{{"alertname", "HypervisorDown"}, {"zone", "z1"}, {"rack", "r2"}, {"hypervisor", "hv3"}}));
  ASSERT_EQ(p[1]["alerts"].size(), 1u);
  EXPECT_EQ(am_state({{"alertname", "RackDown"}, {"rack", "r2"}}), "");

  // A's vCPU is moved onto B's dedicated pCPU: both instances overlap.
  auto r = sh(daemons.virsh("vcpupin " + a.name + " 0 0 --live"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto drift_page = [&] {
    for (const auto& n : pages())
      if (n["groupLabels"].value("alertname", "") == "PinningIntentDrift") return n;
    return json();
  };
  ASSERT_TRUE(wait_until([&] { return !drift_page().is_null(); }, 90s)) << describe();
  std::this_thread::sleep_for(5s);
  const json drift = drift_page();
  EXPECT_EQ(drift["groupLabels"],
            (json{{"alertname", "PinningIntentDrift"}, {"zone", "z1"}, {"rack", "r2"}, {"hypervisor", "hv4"}}));
  ASSERT_EQ(drift["alerts"].size(), 1u) << drift.dump();
  EXPECT_EQ(drift["alerts"][0]["labels"]["class"], "dedicated_overlap");
  EXPECT_EQ(drift["alerts"][0]["annotations"]["summary"], "hv4: 2 instance(s) with dedicated_overlap");
  // Every page after the first two is hv4's, one per alert name (the kernel
  // may also see the two vCPUs co-run: DedicatedVcpuOffPin).
  p = pages();
  std::set<std::string> names;
  for (size_t i = 2; i < p.size(); ++i) {
    EXPECT_EQ(p[i]["groupLabels"].value("hypervisor", ""), "hv4") << describe();
    EXPECT_TRUE(names.insert(p[i]["groupLabels"].value("alertname", "")).second) << describe();
  }
  for (const auto& n : hook.received())
    std::fprintf(stderr, "notification: %s %s %s, %zu alert(s)\n", n.value("receiver", "").c_str(),
                 n.value("status", "").c_str(), n["groupLabels"].dump().c_str(), n["alerts"].size());
  hvtel::testing::figure("pages", static_cast<double>(p.size()));
  hvtel::testing::figure("notifications", static_cast<double>(hook.received().size()));
}

}  // namespace
