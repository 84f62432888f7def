#include "base/web/web_server.h"

#include <fmt/core.h>
#include <fmt/printf.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <prometheus/metric_family.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>

#include "base/metrics/catalog.h"
#include "base/metrics/family.h"
#include "base/util/log.h"
#include "base/web/basic_auth.h"

namespace hvtel::web {

// What one daemon's request handler needs; lives as long as that daemon.
struct MetricsServer::Site {
  const MetricsServer* server = nullptr;
  std::unique_ptr<BasicAuth> auth;  // null: no authentication
  ClientAuth client_auth = ClientAuth::kNone;
  std::string landing;  // the page on "/"
  std::string error;    // libmicrohttpd's log while starting
};

namespace {

void mhd_log(void* cls, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string line(buf);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  auto* site = static_cast<std::string*>(cls);
  if (site->empty()) *site = line;
  log::debug("web", "libmicrohttpd: {}", line);
}

MHD_Result reply(MHD_Connection* c, unsigned status, const std::string& body,
                 const char* content_type) {
  MHD_Response* r =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", content_type);
  const MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

// The same, handing `body` to libmicrohttpd instead of copying it: a /metrics
// text is megabytes on a busy host.
MHD_Result reply_owned(MHD_Connection* c, unsigned status, std::string body, const char* content_type) {
  auto* owned = new std::string(std::move(body));
  MHD_Response* r = MHD_create_response_from_buffer_with_free_callback_cls(
      owned->size(), owned->data(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  if (!r) {
    delete owned;
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", content_type);
  const MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

// The client certificate, checked against client_ca_file (GnuTLS asked for
// one when the trust was set; it does not fail the handshake itself).
bool client_cert_ok(MHD_Connection* c, ClientAuth mode) {
  if (mode == ClientAuth::kNone) return true;
  const MHD_ConnectionInfo* ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (!ci || !ci->tls_session) return false;
  auto session = static_cast<gnutls_session_t>(ci->tls_session);
  unsigned int n = 0;
  if (!gnutls_certificate_get_peers(session, &n) || n == 0)
    return mode == ClientAuth::kVerifyIfGiven;
  unsigned int status = 0;
  return gnutls_certificate_verify_peers2(session, &status) == 0 && status == 0;
}

std::string tls_priorities(int min_version) {
  std::string p = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
  if (min_version <= 0x0303) p += ":+VERS-TLS1.2";
  if (min_version <= 0x0302) p += ":+VERS-TLS1.1";
  if (min_version <= 0x0301) p += ":+VERS-TLS1.0";
  return p;
}

Result<int> listen_socket(const std::string& listen) {
  auto hp = split_listen(listen);
  if (!hp) return fail(hp.error());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(hp->first.empty() ? nullptr : hp->first.c_str(), hp->second.c_str(),
                             &hints, &res);
      rc != 0)
    return fail(fmt::format("listen on {}: {}", listen, gai_strerror(rc)));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  // With no host, prefer the IPv6 wildcard (dual stack), as Go's ":PORT".
  const addrinfo* ai = res;
  for (const addrinfo* a = res; a; a = a->ai_next)
    if (hp->first.empty() && a->ai_family == AF_INET6) ai = a;
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return fail_errno(errno, "listen on " + listen + ": socket");
  const int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
    const int e = errno;
    ::close(fd);
    return fail_errno(e, "listen on " + listen);
  }
  return fd;
}

}  // namespace

class MetricsServer::SelfMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    return {metrics::FamilyBuilder(metrics::catalog::kWebConfigErrors)
                .add({}, static_cast<double>(errors.load()))
                .take()};
  }
  std::atomic<uint64_t> errors{0};
};

Result<std::pair<std::string, std::string>> split_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size())
    return fail(fmt::format("listen address '{}': expected HOST:PORT, [V6]:PORT or :PORT", listen));
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::pair{host, listen.substr(colon + 1)};
}

MetricsServer::MetricsServer(ServerOptions opts)
    : opts_(std::move(opts)), self_(std::make_shared<SelfMetrics>()) {}

MetricsServer::~MetricsServer() {
  if (daemon_) MHD_stop_daemon(daemon_);  // closes the listening socket
  else if (listen_fd_ >= 0) ::close(listen_fd_);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(ServerOptions opts) {
  std::unique_ptr<MetricsServer> s(new MetricsServer(std::move(opts)));
  s->heartbeat();
  if (!s->opts_.config_file.empty()) {
    auto cfg = load_web_config(s->opts_.config_file);
    if (!cfg) return fail(cfg.error().context("--web.config.file"));
    s->config_ = std::move(*cfg);
  }
  auto fd = listen_socket(s->opts_.listen);
  if (!fd) return fail(fd.error());
  s->listen_fd_ = *fd;
  if (auto st = s->serve(s->config_); !st) return fail(st.error());
  s->watch();
  return s;
}

Status MetricsServer::serve(const WebConfig& cfg) {
  auto site = std::make_unique<Site>();
  site->server = this;
  site->landing = fmt::format(
      "<html><head><title>hvtel</title></head><body><h1>hvtel</h1>"
      "<p><a href=\"{0}\">Metrics</a> &middot; <a href=\"/healthz\">healthz</a> &middot; "
      "<a href=\"/readyz\">readyz</a></p></body></html>\n", opts_.telemetry_path);
  if (!cfg.users.empty()) site->auth = std::make_unique<BasicAuth>(cfg.users);
  std::string key, cert, trust;
  if (cfg.tls) {
    site->client_auth = cfg.tls->client_auth;
    for (auto [path, out] : {std::pair{&cfg.tls->key_file, &key}, {&cfg.tls->cert_file, &cert},
                             {&cfg.tls->client_ca_file, &trust}}) {
      if (path->empty()) continue;
      auto text = read_config_file(*path, 1 << 20);
      if (!text) return fail(text.error());
      *out = std::move(*text);
    }
  }
  const std::string priorities = cfg.tls ? tls_priorities(cfg.tls->min_version) : "";

  auto handler = [](void* cls, MHD_Connection* c, const char* url, const char* method,
                    const char*, const char*, size_t* upload_size, void**) -> MHD_Result {
    const Site& s = *static_cast<const Site*>(cls);
    if (*upload_size != 0) return MHD_NO;  // a GET has no body
    if (std::string_view(method) != "GET" && std::string_view(method) != "HEAD")
      return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", "text/plain");
    const std::string_view path(url);
    if (path == "/healthz") {
      const bool live = s.server->live();
      return reply(c, live ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                   live ? "ok\n" : "the main loop is stuck\n", "text/plain");
    }
    if (path == "/readyz") {
      if (!s.server->ready_.load())
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n", "text/plain");
      const std::string why = s.server->unready_reason();
      if (!why.empty()) return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, why + "\n", "text/plain");
      return reply(c, MHD_HTTP_OK, "ready\n", "text/plain");
    }
    if (!client_cert_ok(c, s.client_auth))
      return reply(c, MHD_HTTP_FORBIDDEN, "client certificate required\n", "text/plain");
    if (s.auth) {
      char* password = nullptr;
      char* user = MHD_basic_auth_get_username_password(c, &password);
      const bool ok = user && password && s.auth->check(user, password);
      MHD_free(user);
      MHD_free(password);
      if (!ok) {
        MHD_Response* r = MHD_create_response_from_buffer(13, const_cast<char*>("Unauthorized\n"),
                                                          MHD_RESPMEM_PERSISTENT);
        const MHD_Result res = MHD_queue_basic_auth_fail_response(c, "hvtel", r);
        MHD_destroy_response(r);
        return res;
      }
    }
    if (path == s.server->opts_.telemetry_path) {
      // The port is bound before the collectors exist: a scrape in between
      // would pass with half the metrics.
      if (!s.server->ready_.load())
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n", "text/plain");
      return reply_owned(c, MHD_HTTP_OK, s.server->render(), "text/plain; version=0.0.4; charset=utf-8");
    }
    if (path == "/") return reply(c, MHD_HTTP_OK, s.landing, "text/html; charset=utf-8");
    return reply(c, MHD_HTTP_NOT_FOUND, "not found\n", "text/plain");
  };

  // The listening socket: handed from the running daemon (quiesced: it stops
  // accepting, finishes what it has) to the new one.
  const int fd = daemon_ ? MHD_quiesce_daemon(daemon_) : listen_fd_;
  if (fd < 0) return fail("web: cannot take the listening socket over from the running server");
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (cfg.tls) flags |= MHD_USE_TLS;
  MHD_Daemon* d = nullptr;
  if (cfg.tls) {
    d = MHD_start_daemon(
        flags, 0, nullptr, nullptr, handler, site.get(), MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, std::max(1u, opts_.threads), MHD_OPTION_CONNECTION_LIMIT,
        std::max(1u, opts_.max_connections), MHD_OPTION_CONNECTION_TIMEOUT, opts_.idle_timeout_s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &site->error, MHD_OPTION_HTTPS_MEM_KEY, key.c_str(),
        MHD_OPTION_HTTPS_MEM_CERT, cert.c_str(), MHD_OPTION_HTTPS_PRIORITIES, priorities.c_str(),
        trust.empty() ? MHD_OPTION_END : MHD_OPTION_HTTPS_MEM_TRUST, trust.c_str(), MHD_OPTION_END);
  } else {
    d = MHD_start_daemon(
        flags, 0, nullptr, nullptr, handler, site.get(), MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, std::max(1u, opts_.threads), MHD_OPTION_CONNECTION_LIMIT,
        std::max(1u, opts_.max_connections), MHD_OPTION_CONNECTION_TIMEOUT, opts_.idle_timeout_s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &site->error, MHD_OPTION_END);
  }
  if (!d) {
    // The old daemon was quiesced: a fresh one on the same socket takes over.
    const std::string why = site->error.empty() ? "cannot start the HTTP server" : site->error;
    if (daemon_) {
      MHD_stop_daemon(daemon_);
      daemon_ = nullptr;
      listen_fd_ = fd;
    }
    return fail(fmt::format("serve {}{}: {}", opts_.listen, cfg.tls ? " (TLS)" : "", why));
  }
  if (daemon_) MHD_stop_daemon(daemon_);
  daemon_ = d;
  site_ = std::move(site);
  return {};
}

void MetricsServer::heartbeat() {
  heartbeat_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
}

void MetricsServer::set_unready_reason(std::string reason) {
  std::lock_guard lock(unready_mu_);
  unready_reason_ = std::move(reason);
}

std::string MetricsServer::unready_reason() const {
  std::lock_guard lock(unready_mu_);
  return unready_reason_;
}

bool MetricsServer::live() const {
  const auto last = std::chrono::steady_clock::time_point(
      std::chrono::steady_clock::duration(heartbeat_ns_.load()));
  return std::chrono::steady_clock::now() - last < kLivenessWindow;
}

std::string MetricsServer::render() const {
  std::vector<prometheus::MetricFamily> families;
  std::vector<std::shared_ptr<prometheus::Collectable>> live;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : collectables_)
      if (auto c = w.lock()) live.push_back(std::move(c));
  }
  live.push_back(self_);
  for (const auto& c : live) {
    auto f = c->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  std::string text = metrics::serialize_text(families, last_render_bytes_.load(std::memory_order_relaxed));
  last_render_bytes_.store(text.size(), std::memory_order_relaxed);
  return text;
}

void MetricsServer::watch() {
  if (opts_.config_file.empty()) return;
  std::vector<std::string> files{opts_.config_file};
  for (auto& f : config_.files()) files.push_back(std::move(f));
  files_.loaded(files);
}

void MetricsServer::add(const std::weak_ptr<prometheus::Collectable>& c) {
  std::lock_guard lock(mu_);
  collectables_.push_back(c);
}

void MetricsServer::poll() {
  if (!opts_.config_file.empty() && files_.changed()) reload();
}

void MetricsServer::reload() {
  if (opts_.config_file.empty()) return;
  auto cfg = load_web_config(opts_.config_file);
  Status st = cfg ? serve(*cfg) : Status(fail(cfg.error()));
  if (st) {
    config_ = std::move(*cfg);
    log::info("web", "{}: loaded ({}, {} basic-auth users)", opts_.config_file,
              config_.tls ? "TLS" : "plain HTTP", config_.users.size());
  } else {
    ++self_->errors;
    log::error("web", "{}; keeping the previous web configuration", st.error().message);
    if (!daemon_) {  // the new one failed after the old one let go of the socket
      if (auto again = serve(config_); !again)
        log::error("web", "restoring the previous web configuration: {}", again.error().message);
    }
  }
  watch();
}

std::vector<int> MetricsServer::ports() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const MHD_DaemonInfo* info = daemon_ ? MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_LISTEN_FD) : nullptr;
  const int fd = info ? info->listen_fd : listen_fd_;
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  if (ss.ss_family == AF_INET) return {ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)};
  if (ss.ss_family == AF_INET6) return {ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)};
  return {};
}

}  // namespace hvtel::web
