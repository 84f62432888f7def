// The /metrics endpoint, on libmicrohttpd: an event loop (epoll), so an idle
// or slowloris connection costs a file descriptor and a little memory, never a
// worker; a scrape is answered while hundreds are held open. TLS (GnuTLS) and
// basic authentication come from --web.config.file, and a change of that file
// (or of a certificate it names) rebuilds the server on the same listening
// socket, without a gap: the old one finishes the requests it accepted.
//
// Why not prometheus-cpp's exposer: civetweb gives each connection a worker
// thread for its whole life (two idle clients stalled scrapes for 30 s), and
// Debian's civetweb cannot load OpenSSL 3 for TLS. The metrics are still
// prometheus-cpp Collectables, serialised by its TextSerializer.
#pragma once

#include <prometheus/collectable.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <utility>
#include <mutex>
#include <string>
#include <vector>

#include "base/util/files.h"
#include "base/util/result.h"
#include "base/web/web_config.h"

struct MHD_Daemon;

namespace hvtel::web {

struct ServerOptions {
  std::string listen = "0.0.0.0:9477";  // HOST:PORT, [V6]:PORT or :PORT (every address)
  std::string config_file;              // --web.config.file; empty: plain HTTP, no auth
  std::string telemetry_path = "/metrics";
  unsigned max_connections = 512;       // open connections; more are refused
  unsigned idle_timeout_s = 10;         // a connection silent this long is closed
  unsigned threads = 2;                 // event loops (a scrape serialises on one)
};

// Splits HOST:PORT, [V6]:PORT or :PORT (as Go servers take it; empty host:
// every address).
Result<std::pair<std::string, std::string>> split_listen(const std::string& listen);

class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> start(ServerOptions opts);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Served on /metrics; kept across rebuilds (the server holds weak_ptrs).
  void add(const std::weak_ptr<prometheus::Collectable>& c);
  // Reloads --web.config.file when it or a file it names changed and settled.
  // A broken configuration is logged and counted; the running one stays.
  void poll();
  // Reloads now (SIGHUP).
  void reload();

  // /healthz answers 200 while the main loop beats (at least every
  // kLivenessWindow); /readyz, and the metrics, once set_ready(true) (503
  // before). Both without
  // authentication: they tell nothing, and Kubernetes probes carry no secret.
  static constexpr std::chrono::seconds kLivenessWindow{30};
  void heartbeat();
  bool live() const;
  void set_ready(bool ready) { ready_ = ready; }
  bool ready() const { return ready_; }
  // While `reason` is not empty /readyz answers 503 with it, the metrics are
  // still served: an agent that observes nothing (no probe attached) is not
  // ready, so a rollout that breaks it stops at the first node while
  // Prometheus still sees why.
  void set_unready_reason(std::string reason);
  std::string unready_reason() const;

  std::vector<int> ports() const;
  std::string render() const;  // the /metrics text
  bool tls() const { return config_.tls.has_value(); }

 private:
  class SelfMetrics;
  struct Site;
  explicit MetricsServer(ServerOptions opts);
  // Starts a daemon for `cfg` on the listening socket; the old one, if any,
  // stops once the new one runs (or keeps running when it cannot start).
  Status serve(const WebConfig& cfg);
  void watch();

  ServerOptions opts_;
  WebConfig config_;
  FileWatch files_;
  int listen_fd_ = -1;
  MHD_Daemon* daemon_ = nullptr;
  std::unique_ptr<Site> site_;  // what the running daemon's handler reads
  mutable std::mutex mu_;       // collectables_
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;
  std::shared_ptr<SelfMetrics> self_;  // hvtel_web_config_errors_total, served with the rest
  std::atomic<int64_t> heartbeat_ns_{0};  // steady_clock
  std::atomic<bool> ready_{false};
  mutable std::atomic<size_t> last_render_bytes_{0};  // sizes the next render's buffer
  mutable std::mutex unready_mu_;
  std::string unready_reason_;
};

}  // namespace hvtel::web
