// Series budget benchmark (issue 13, docs/performance.md §4): /metrics for
// N instances x V vCPUs of busy guests, all features on, rendered by the
// agent's own collectors (over the in-memory host of tests/app/series_host.h)
// and served by its own MetricsServer, side by side in the same run with
// Debian's prometheus-libvirt-exporter scraping N domains of a libvirt test
// driver node, and the RSS of a real `hvtel serve` that knows the same N
// domains through that driver. Prints a table and JSON; asserts nothing.
#include <malloc.h>
#include <prometheus/collectable.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/http/http_client.h"
#include "base/http/prom_text.h"
#include "base/util/log.h"
#include "base/web/web_server.h"
#include "series_host.h"
#include "support/process.h"

namespace fs = std::filesystem;
using hvtel::testing::Process;
using hvtel::testing::SeriesFlags;
using hvtel::testing::SeriesHost;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  int instances = 500;
  int vcpus = 8;
  int scrapes = 50;
  std::string exporter = "/usr/bin/prometheus-libvirt-exporter";  // "" skips it
  std::string hvtel;                                              // "" skips the real serve
  std::string json_path;
};

// VmRSS or VmHWM of a process, in bytes (0 when unreadable).
size_t status_kb(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  return 0;
}

struct Scrapes {
  std::string name;
  std::vector<double> ms;  // one per scrape, sorted
  size_t bytes = 0;        // of the last scrape
  size_t series = 0;
  size_t bad_lines = 0;
  double median() const { return ms.empty() ? 0 : ms[ms.size() / 2]; }
  // Nearest rank: with 50 scrapes the 50th, i.e. the slowest.
  double p99() const {
    return ms.empty() ? 0 : ms[std::min(ms.size() - 1, static_cast<size_t>(0.99 * ms.size()))];
  }
};

std::optional<hvtel::http::HttpResponse> get(int port, const std::string& path, int timeout_ms = 30000) {
  auto r = hvtel::http::http_get("127.0.0.1:" + std::to_string(port), path,
                                 std::chrono::milliseconds(timeout_ms), size_t{256} << 20);
  if (!r) return std::nullopt;
  return *r;
}

// Two warm-up scrapes, then n timed ones, each a fresh connection (as
// Prometheus without keep-alive; the agent's client speaks HTTP/1.0).
std::optional<Scrapes> scrape(const std::string& name, int port, int n) {
  Scrapes s{.name = name};
  std::string body;
  for (int i = -2; i < n; ++i) {
    auto t0 = Clock::now();
    auto r = get(port, "/metrics");
    auto t1 = Clock::now();
    if (!r || r->status != 200) {
      std::cerr << name << ": scrape failed" << (r ? " with status " + std::to_string(r->status) : "")
                << "\n";
      return std::nullopt;
    }
    if (i >= 0) s.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    body = std::move(r->body);
  }
  std::sort(s.ms.begin(), s.ms.end());
  s.bytes = body.size();
  auto parsed = hvtel::http::parse_prometheus_text(body);
  s.series = parsed.samples.size();
  s.bad_lines = parsed.bad_lines;
  return s;
}

double sample_value(int port, const std::string& name, const std::string& label = "",
                    const std::string& value = "") {
  auto r = get(port, "/metrics", 5000);
  if (!r || r->status != 200) return -1;
  for (const auto& s : hvtel::http::parse_prometheus_text(r->body).samples)
    if (s.name == name && (label.empty() || s.label(label) == value)) return s.value;
  return -1;
}

// Samples of `name` in one scrape, -1 when the scrape failed.
long count_samples(int port, const std::string& name) {
  auto r = get(port, "/metrics", 5000);
  if (!r || r->status != 200) return -1;
  auto samples = hvtel::http::parse_prometheus_text(r->body).samples;
  return std::count_if(samples.begin(), samples.end(), [&](const auto& s) { return s.name == name; });
}

// Polls until the exporter/agent reports `want` for the sample; false after 60 s.
bool wait_value(int port, const std::string& name, double want, const std::string& label = "",
                const std::string& value = "") {
  for (int i = 0; i < 600; ++i) {
    if (sample_value(port, name, label, value) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// A libvirt test-driver node: n running domains shaped like Nova instances
// (Nova 1.1 metadata, v vCPUs, one virtio disk, one OVS VIF), the same
// identities as SeriesHost's.
void write_node(const fs::path& path, int n, int v) {
  std::ofstream f(path);
  f << "<node>\n  <cpu><nodes>2</nodes><sockets>2</sockets><cores>32</cores><threads>2</threads>"
       "<mhz>2600</mhz></cpu>\n  <memory>1073741824</memory>\n";
  for (int i = 0; i < n; ++i) {
    const std::string id = SeriesHost::instance_id(i);
    char tap[32], mac[32], port[64];
    std::snprintf(port, sizeof port, "5f%06d-aa00-4b00-8c00-%012d", i, i);
    std::snprintf(tap, sizeof tap, "tap5f%06d-aa", i);
    std::snprintf(mac, sizeof mac, "fa:16:3e:%02x:%02x:%02x", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    f << "  <domain type='test'>\n    <name>instance-" << i << "</name>\n    <uuid>" << id << "</uuid>\n"
      << "    <metadata><nova:instance xmlns:nova=\"http://openstack.org/xmlns/libvirt/nova/1.1\">"
      << "<nova:package version=\"27.1.0\"/><nova:name>vm-" << i << "</nova:name>"
      << "<nova:creationTime>2026-11-02 10:00:00</nova:creationTime>"
      << "<nova:flavor name=\"m1.large\"><nova:memory>8192</nova:memory><nova:disk>40</nova:disk>"
      << "<nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral><nova:vcpus>" << v
      << "</nova:vcpus></nova:flavor><nova:owner><nova:user uuid=\"5f0e9a8d7c6b4a3f9e8d7c6b5a4f3e2d\">"
      << "alice</nova:user><nova:project uuid=\"0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5\">web</nova:project>"
      << "</nova:owner><nova:root type=\"image\" uuid=\"77777777-8888-4999-aaaa-bbbbbbbbbbbb\"/>"
      << "</nova:instance></metadata>\n"
      << "    <memory>8388608</memory>\n    <vcpu placement='static'>" << v << "</vcpu>\n"
      << "    <os><type>hvm</type></os>\n    <devices>\n"
      << "      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
      << "<source file='/var/lib/nova/instances/" << id << "/disk'/><target dev='vda' bus='virtio'/></disk>\n"
      << "      <interface type='bridge'><mac address='" << mac << "'/><source bridge='br-int'/>"
      << "<virtualport type='openvswitch'><parameters interfaceid='" << port << "'/></virtualport>"
      << "<target dev='" << tap << "'/><model type='virtio'/></interface>\n"
      << "    </devices>\n  </domain>\n";
  }
  f << "</node>\n";
}

// Serves SeriesHost::collect() with the flags of the moment.
struct HostCollectable : prometheus::Collectable {
  const SeriesHost* host = nullptr;
  SeriesFlags flags;
  std::vector<prometheus::MetricFamily> Collect() const override { return host->collect(flags); }
};

struct Exporter {
  std::optional<Scrapes> scrapes;
  size_t rss_idle = 0, rss_after = 0, hwm = 0;
  double domains = -1;
  std::string error;
};

// prometheus-libvirt-exporter on `uri`: RSS before and after the scrapes.
Exporter run_exporter(const Options& o, const std::string& uri, int n_scrapes, int want_domains) {
  Exporter e;
  const int port = hvtel::testing::free_port();
  Process p({o.exporter, "--web.listen-address=127.0.0.1:" + std::to_string(port), "--libvirt.uri=" + uri,
             "--libvirt.export-nova-metadata"});
  // It opens the connection per scrape: the first answer means it listens.
  if (!wait_value(port, "libvirt_domains_number", want_domains)) {
    e.error = "no libvirt_domains_number " + std::to_string(want_domains) + ": " + p.err();
    return e;
  }
  e.domains = want_domains;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  e.rss_idle = status_kb(p.pid(), "VmRSS");
  if (n_scrapes > 0) e.scrapes = scrape("libvirt-exporter", port, n_scrapes);
  e.rss_after = status_kb(p.pid(), "VmRSS");
  e.hwm = status_kb(p.pid(), "VmHWM");
  p.terminate();
  return e;
}

struct Serve {
  size_t rss_idle = 0, rss_after = 0;
  std::optional<Scrapes> scrapes;
  std::string error;
};

// A real `hvtel serve` that knows the domains through libvirt (no vCPU
// threads: the test driver runs no QEMU), idle and after scrapes.
Serve run_serve(const Options& o, const std::string& uri, const fs::path& tmp, int domains) {
  Serve s;
  const int port = hvtel::testing::free_port();
  fs::create_directories(tmp / "ovs");  // empty: no OVS of the host
  const int slots = o.instances * (o.vcpus + 1);
  Process p({o.hvtel, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--events-listen", "",
             "--libvirt-uri", uri, "--ovs-rundir", (tmp / "ovs").string(), "--max-vcpus",
             std::to_string(std::max(1024, slots))});
  // The tracker counts only instances with a process (hvtel_instances); the
  // libvirt collector has one hvtel_instance_info per domain.
  bool known = false;
  for (int i = 0; i < 600 && !known; ++i) {
    known = count_samples(port, "hvtel_instance_info") == domains;
    if (!known) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!known) {
    s.error =
        "hvtel_instance_info never had " + std::to_string(domains) + " series: " + p.err().substr(0, 2000);
    return s;
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  s.rss_idle = status_kb(p.pid(), "VmRSS");
  s.scrapes = scrape("hvtel serve (libvirt only)", port, std::min(o.scrapes, 10));
  s.rss_after = status_kb(p.pid(), "VmRSS");
  p.terminate();
  return s;
}

// The idle-RSS goal's process: a real `hvtel serve` with its defaults (1024 vCPU slots, libvirt's
// default URI, the events listener) and nothing to watch, 10 s after start and one scrape; its RSS
// split by what backs it (/proc/PID/smaps).
struct Idle {
  size_t rss = 0, anon = 0, file = 0, bpf_maps = 0;
  std::string error;
};

Idle run_idle(const Options& o, const fs::path& tmp) {
  Idle r;
  const int port = hvtel::testing::free_port(), events = hvtel::testing::free_port();
  fs::create_directories(tmp / "ovs-idle");
  Process p({o.hvtel, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--events-listen",
             "127.0.0.1:" + std::to_string(events), "--ovs-rundir", (tmp / "ovs-idle").string()});
  std::this_thread::sleep_for(std::chrono::seconds(10));
  bool ok = false;
  hvtel::testing::http_get(port, "/metrics", &ok);
  if (!ok) {
    r.error = "idle hvtel serve did not answer: " + p.err().substr(0, 2000);
    return r;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::ifstream smaps("/proc/" + std::to_string(p.pid()) + "/smaps");
  std::string name;
  for (std::string line; std::getline(smaps, line);) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 16) {
      std::istringstream in(line);
      std::string range, perms, off, dev, inode;
      name.clear();
      in >> range >> perms >> off >> dev >> inode >> name;
    } else if (line.rfind("Rss:", 0) == 0) {
      size_t b = std::stoull(line.substr(4)) * 1024;
      r.rss += b;
      if (name == "anon_inode:bpf-map") {
        r.bpf_maps += b;
      } else if (name.empty() || name[0] == '[') {
        r.anon += b;  // heap, stacks, anonymous mappings
      } else {
        r.file += b;  // the binary and shared libraries
      }
    }
  }
  p.terminate();
  return r;
}

std::string json_scrapes(const std::optional<Scrapes>& s) {
  if (!s) return "null";
  std::ostringstream j;
  j << "{\"median_ms\":" << s->median() << ",\"p99_ms\":" << s->p99() << ",\"min_ms\":" << s->ms.front()
    << ",\"max_ms\":" << s->ms.back() << ",\"scrapes\":" << s->ms.size() << ",\"bytes\":" << s->bytes
    << ",\"series\":" << s->series << ",\"bad_lines\":" << s->bad_lines << "}";
  return j.str();
}

int usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " [-n INSTANCES] [-v VCPUS] [-s SCRAPES] [--exporter PATH|''] [--hvtel PATH] [-o JSON]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    std::optional<std::string> v;
    if (a == "-h" || a == "--help") return usage(argv[0]), 0;
    if (!(v = next())) return usage(argv[0]);
    if (a == "-n" || a == "--instances")
      o.instances = std::stoi(*v);
    else if (a == "-v" || a == "--vcpus")
      o.vcpus = std::stoi(*v);
    else if (a == "-s" || a == "--scrapes")
      o.scrapes = std::stoi(*v);
    else if (a == "--exporter")
      o.exporter = *v;
    else if (a == "--hvtel")
      o.hvtel = *v;
    else if (a == "-o" || a == "--output")
      o.json_path = *v;
    else
      return usage(argv[0]);
  }
  if (o.instances < 1 || o.vcpus < 1 || o.scrapes < 1) return usage(argv[0]);

  hvtel::log::set_level(hvtel::log::Level::kWarn);  // not 500 "instance discovered" lines
  // 1. The in-process agent: the collectors of SeriesHost behind the real /metrics server.
  const size_t rss0 = status_kb(0, "VmRSS");
  auto t0 = Clock::now();
  SeriesHost host(o.instances, o.vcpus);
  const double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const size_t rss_host = status_kb(0, "VmRSS");
  auto server = hvtel::web::MetricsServer::start({.listen = "127.0.0.1:0"});
  if (!server) {
    std::cerr << "metrics server: " << server.error().message << "\n";
    return 1;
  }
  (*server)->set_ready(true);
  (*server)->heartbeat();
  const int port = (*server)->ports().at(0);
  auto coll = std::make_shared<HostCollectable>();
  coll->host = &host;
  (*server)->add(coll);

  struct Config {
    std::string name;
    SeriesFlags flags;
    std::optional<Scrapes> s;
    double render_ms = 0;  // in-process collect + serialise, median
    size_t rss = 0;        // after its scrapes, 1 s idle
  };
  std::vector<Config> configs = {{.name = "default", .flags = {}},
                                 {.name = "per-vcpu", .flags = {.per_vcpu = true}}};
  for (auto& c : configs) {
    coll->flags = c.flags;
    c.s = scrape("hvtel " + c.name, port, o.scrapes);
    if (!c.s) return 1;
    std::vector<double> r;
    for (int i = 0; i < std::min(o.scrapes, 20); ++i) {
      auto a = Clock::now();
      auto text = host.render(c.flags);
      r.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    }
    std::sort(r.begin(), r.end());
    c.render_ms = r[r.size() / 2];
    std::this_thread::sleep_for(std::chrono::seconds(1));
    c.rss = status_kb(0, "VmRSS");
  }
  coll->flags = {};
  // The agent's idle RSS is the default's: it never renders --per-vcpu too.
  const size_t rss_after = configs[0].rss;
  const size_t hwm = status_kb(0, "VmHWM");
  // What of it is live data rather than heap glibc keeps after freeing the
  // scrapes' buffers (the agent never calls malloc_trim).
  ::malloc_trim(0);
  const size_t rss_trimmed = status_kb(0, "VmRSS");

  // 2. prometheus-libvirt-exporter on a test-driver node of the same domains,
  //    and on an empty node (its own baseline RSS).
  char tmpl[] = "/tmp/hvtel-bench-series.XXXXXX";
  const fs::path tmp = ::mkdtemp(tmpl);
  const fs::path node = tmp / "node.xml", empty = tmp / "empty.xml";
  write_node(node, o.instances, o.vcpus);
  write_node(empty, 0, o.vcpus);
  const std::string uri = "test://" + node.string();
  std::optional<Exporter> lv, lv0;
  if (!o.exporter.empty()) {
    lv = run_exporter(o, uri, o.scrapes, o.instances);
    lv0 = run_exporter(o, "test://" + empty.string(), 0, 0);
  }
  // 3. A real hvtel serve with the same domains known through libvirt.
  std::optional<Serve> serve, serve0;
  std::optional<Idle> idle;
  if (!o.hvtel.empty()) {
    idle = run_idle(o, tmp);
    serve = run_serve(o, uri, tmp, o.instances);
    serve0 = run_serve(o, "test://" + empty.string(), tmp, 0);
  }
  fs::remove_all(tmp);

  // Report.
  const double n = o.instances;
  const double mb = 1024.0 * 1024.0;
  std::printf("series budget: %d instances x %d vCPUs, %d scrapes each (host built in %.1f s)\n\n",
              o.instances, o.vcpus, o.scrapes, build_s);
  std::printf("%-28s %10s %10s %12s %9s %10s %10s\n", "scrape /metrics", "median ms", "p99 ms", "bytes",
              "series", "series/inst", "ms/inst");
  auto row = [&](const Scrapes& s) {
    std::printf("%-28s %10.2f %10.2f %12zu %9zu %10.1f %10.4f\n", s.name.c_str(), s.median(), s.p99(),
                s.bytes, s.series, s.series / n, s.median() / n);
  };
  for (const auto& c : configs) row(*c.s);
  if (lv && lv->scrapes) row(*lv->scrapes);
  if (serve && serve->scrapes) row(*serve->scrapes);
  std::printf("\nin-process collect+serialise (median): default %.2f ms, per-vcpu %.2f ms; goal <= 50 ms\n",
              configs[0].render_ms, configs[1].render_ms);
  const double hv_delta = (static_cast<double>(rss_after) - static_cast<double>(rss0));
  std::printf("\nRSS\n");
  std::printf(
      "  hvtel in-process: before host %.1f MB, host built %.1f MB, after default scrapes %.1f MB;"
      " delta %.1f MB = %.1f KB/instance\n",
      rss0 / mb, rss_host / mb, rss_after / mb, hv_delta / mb, hv_delta / n / 1024);
  std::printf(
      "                    after per-vcpu scrapes %.1f MB (peak %.1f MB); after malloc_trim %.1f MB\n",
      configs[1].rss / mb, hwm / mb, rss_trimmed / mb);
  if (serve) {
    if (serve->error.empty() && serve0->error.empty())
      std::printf(
          "  hvtel serve (real, %d libvirt domains, no vCPU threads): idle %.1f MB, after scrapes %.1f MB;"
          " empty node %.1f MB\n",
          o.instances, serve->rss_idle / mb, serve->rss_after / mb, serve0->rss_idle / mb);
    else
      std::printf("  hvtel serve: %s%s\n", serve->error.c_str(), serve0->error.c_str());
  }
  if (idle) {
    if (idle->error.empty())
      std::printf(
          "  hvtel serve (real, defaults, nothing to watch): idle %.1f MB = anonymous %.1f + binary and"
          " libraries %.1f + BPF maps %.1f; goal <= 32 MB\n",
          idle->rss / mb, idle->anon / mb, idle->file / mb, idle->bpf_maps / mb);
    else
      std::printf("  hvtel serve idle: %s\n", idle->error.c_str());
  }
  double lv_delta = 0;
  if (lv) {
    if (lv->error.empty() && lv0->error.empty()) {
      lv_delta = static_cast<double>(lv->rss_after) - static_cast<double>(lv0->rss_idle);
      std::printf(
          "  libvirt-exporter: empty node %.1f MB; %d domains idle %.1f MB, after scrapes %.1f MB (peak %.1f"
          " MB); delta %.1f MB = %.1f KB/instance\n",
          lv0->rss_idle / mb, o.instances, lv->rss_idle / mb, lv->rss_after / mb, lv->hwm / mb, lv_delta / mb,
          lv_delta / n / 1024);
    } else {
      std::printf("  libvirt-exporter: %s%s\n", lv->error.c_str(), lv0->error.c_str());
    }
  }
  const bool have_lv = lv && lv->scrapes && lv->error.empty() && lv0->error.empty();
  if (have_lv) {
    const auto& d = *configs[0].s;
    const auto& l = *lv->scrapes;
    std::printf("\nhvtel default / libvirt-exporter, per instance: series %.2f, ms %.2f, RSS %.2f\n",
                static_cast<double>(d.series) / static_cast<double>(l.series), d.median() / l.median(),
                hv_delta / lv_delta);
  }

  std::ostringstream j;
  j << "{\"instances\":" << o.instances << ",\"vcpus\":" << o.vcpus << ",\"scrapes\":" << o.scrapes
    << ",\"goals\":{\"render_ms\":50,\"rss_mb\":32},\"hvtel\":{";
  for (const auto& c : configs)
    j << "\"" << c.name << "\":{\"scrape\":" << json_scrapes(c.s) << ",\"render_median_ms\":" << c.render_ms
      << "},";
  j << "\"rss_bytes\":{\"before_host\":" << rss0 << ",\"host_built\":" << rss_host
    << ",\"after_scrapes\":" << rss_after << ",\"after_per_vcpu_scrapes\":" << configs[1].rss
    << ",\"peak\":" << hwm << ",\"after_malloc_trim\":" << rss_trimmed << "}},\"hvtel_serve\":";
  if (serve && serve->error.empty() && serve0->error.empty())
    j << "{\"rss_empty_node_bytes\":" << serve0->rss_idle << ",\"rss_idle_bytes\":" << serve->rss_idle
      << ",\"rss_after_bytes\":" << serve->rss_after << ",\"scrape\":" << json_scrapes(serve->scrapes) << "}";
  else
    j << "null";
  j << ",\"hvtel_serve_idle\":";
  if (idle && idle->error.empty())
    j << "{\"rss_bytes\":" << idle->rss << ",\"anon_bytes\":" << idle->anon
      << ",\"file_bytes\":" << idle->file << ",\"bpf_map_bytes\":" << idle->bpf_maps << "}";
  else
    j << "null";
  j << ",\"libvirt_exporter\":";
  if (have_lv)
    j << "{\"scrape\":" << json_scrapes(lv->scrapes) << ",\"rss_empty_node_bytes\":" << lv0->rss_idle
      << ",\"rss_idle_bytes\":" << lv->rss_idle << ",\"rss_after_bytes\":" << lv->rss_after
      << ",\"peak_bytes\":" << lv->hwm << "}";
  else
    j << "null";
  j << "}";
  std::printf("\n%s\n", j.str().c_str());
  if (!o.json_path.empty()) std::ofstream(o.json_path) << j.str() << "\n";
  const bool ok = configs[0].s->bad_lines == 0 && configs[1].s->bad_lines == 0 && (!lv || have_lv) &&
                  (!serve || (serve->error.empty() && serve0->error.empty())) &&
                  (!idle || idle->error.empty());
  return ok ? 0 : 1;
}
