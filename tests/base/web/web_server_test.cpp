#include "base/web/web_server.h"

#include <crypt.h>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include "base/http/http_client.h"
#include "support/hostile_clients.h"
#include "support/process.h"
#include "support/test_env.h"

namespace hvtel::web {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt), nullptr);
  auto data = std::make_unique<crypt_data>();
  return crypt_rn(password.c_str(), salt, data.get(), sizeof(crypt_data));
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

class MetricsServerTest : public ::testing::Test {
 protected:
  // A CA, a server certificate for 127.0.0.1 and a client certificate, once.
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/hvtel-web-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script = fmt::format(
        "set -e; cd {0}; "
        "openssl req -x509 {1} -keyout ca.key -out ca.crt -days 2 -subj /CN=hvtel-test-ca; "
        "for who in server client; do "
        "openssl req {1} -keyout $who.key -out $who.csr -subj /CN=$who; "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > $who.ext; "
        "openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile $who.ext -out $who.crt; done",
        dir_.string(), ec);
    write(dir_ / "make-certs.sh", script);
    ASSERT_EQ(testing::run_command("bash " + (dir_ / "make-certs.sh").string() + " >/dev/null 2>&1"), 0);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  void SetUp() override {
    registry_ = std::make_shared<prometheus::Registry>();
    prometheus::BuildCounter().Name("hvtel_test_scrapes_total").Help("t").Register(*registry_).Add({}).Increment(7);
  }

  std::unique_ptr<MetricsServer> start(const std::string& config_file = "") {
    auto s = MetricsServer::start({.listen = "127.0.0.1:0", .config_file = config_file});
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    if (!s) return nullptr;
    (*s)->add(registry_);
    (*s)->set_ready(true);
    return std::move(*s);
  }

  // curl's status code and body: "200 <body>"; "000" when TLS or the connection failed.
  static std::string curl(const std::string& url, const std::string& args = "") {
    std::string out;
    testing::run_command(fmt::format("curl -s --max-time 5 --cacert {}/ca.crt {} -w ' %{{http_code}}' '{}'",
                                     dir_.string(), args, url), &out);
    return out;
  }
  static std::string status_of(const std::string& curl_out) {
    return curl_out.size() >= 3 ? curl_out.substr(curl_out.size() - 3) : curl_out;
  }

  static inline fs::path dir_;
  std::shared_ptr<prometheus::Registry> registry_;
};

// With prometheus-cpp's defaults (2 workers, 30 s request timeout) two idle
// connections stalled every scrape for 30 s.
TEST_F(MetricsServerTest, ScrapesAnswerWhileIdleAndSlowlorisClientsHoldConnections) {
  auto server = start();
  ASSERT_TRUE(server);
  const int port = server->ports().at(0);
  testing::HostileClients hostile(port, 200, 4);
  ASSERT_EQ(hostile.connected(), 204);
  std::this_thread::sleep_for(300ms);  // the slowloris has started dripping
  auto worst = 0ms;
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = http::http_get(fmt::format("127.0.0.1:{}", port), "/metrics", 10s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("hvtel_test_scrapes_total 7"), std::string::npos);
    worst = std::max(worst, took);
  }
  testing::figure("scrape_ms_worst_with_200_idle_4_slowloris", worst.count());
  EXPECT_LT(worst, 1000ms);  // a starved scrape waits for a request timeout (10 s) or more
}

TEST_F(MetricsServerTest, TlsWithRequiredClientCertificates) {
  write(dir_ / "tls.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n");
  auto server = start((dir_ / "tls.yml").string());
  ASSERT_TRUE(server);
  ASSERT_TRUE(server->tls());
  const std::string url = fmt::format("https://127.0.0.1:{}/metrics", server->ports().at(0));
  const std::string client = fmt::format("--cert {0}/client.crt --key {0}/client.key", dir_.string());
  auto ok = curl(url, client);
  EXPECT_EQ(status_of(ok), "200");
  EXPECT_NE(ok.find("hvtel_test_scrapes_total 7"), std::string::npos) << ok;
  auto refused = curl(url);  // no client certificate
  EXPECT_EQ(status_of(refused), "403");
  EXPECT_EQ(refused.find("hvtel_test"), std::string::npos) << refused;
  // Plain HTTP on the TLS port gets no metrics.
  auto plain = curl(fmt::format("http://127.0.0.1:{}/metrics", server->ports().at(0)));
  EXPECT_EQ(plain.find("hvtel_test"), std::string::npos) << plain;
  // A certificate the CA did not sign (the CA's own, self-signed, is; a fresh one is not).
  testing::run_command(fmt::format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                                   "-nodes -keyout {0}/rogue.key -out {0}/rogue.crt -days 1 -subj /CN=rogue "
                                   ">/dev/null 2>&1", dir_.string()));
  EXPECT_EQ(status_of(curl(url, fmt::format("--cert {0}/rogue.crt --key {0}/rogue.key", dir_.string()))),
            "403");
}

TEST_F(MetricsServerTest, BasicAuthAndReloadKeepTheLastGoodConfiguration) {
  const fs::path cfg = dir_ / "auth.yml";
  write(cfg, "basic_auth_users:\n  prometheus: " + bcrypt("first") + "\n");
  auto server = start(cfg.string());
  ASSERT_TRUE(server);
  const std::string url = fmt::format("http://127.0.0.1:{}/metrics", server->ports().at(0));
  EXPECT_EQ(status_of(curl(url)), "401");
  EXPECT_EQ(status_of(curl(url, "-u prometheus:wrong")), "401");
  EXPECT_EQ(status_of(curl(url, "-u prometheus:first")), "200");
  // Health endpoints answer Kubernetes probes, which carry no credentials.
  EXPECT_EQ(status_of(curl(fmt::format("http://127.0.0.1:{}/healthz", server->ports().at(0)))), "200");

  // A valid edit: in force after the change has settled (two polls).
  write(cfg, "basic_auth_users:\n  prometheus: " + bcrypt("second") + "\n");
  server->poll();
  server->poll();
  EXPECT_EQ(status_of(curl(url, "-u prometheus:first")), "401");
  EXPECT_EQ(status_of(curl(url, "-u prometheus:second")), "200");

  // A broken edit: counted, and the last good configuration stays.
  write(cfg, "basic_auth_users:\n  prometheus: plaintext\n");
  server->poll();
  server->poll();
  auto body = curl(url, "-u prometheus:second");
  EXPECT_EQ(status_of(body), "200");
  EXPECT_NE(body.find("hvtel_web_config_errors_total 1\n"), std::string::npos) << body;
  server->poll();  // no further change: no second error
  EXPECT_NE(curl(url, "-u prometheus:second").find("hvtel_web_config_errors_total 1\n"),
            std::string::npos);

  // Switching to TLS on reload: the same port, now https.
  write(cfg, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
  server->reload();  // SIGHUP
  EXPECT_TRUE(server->tls());
  const std::string https = fmt::format("https://127.0.0.1:{}/metrics", server->ports().at(0));
  EXPECT_EQ(status_of(curl(https)), "200");
}

TEST(MetricsServer, StartFailsOnABrokenConfigurationOrAFile) {
  auto s = MetricsServer::start({.listen = "127.0.0.1:0", .config_file = "/nonexistent/web.yml"});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("--web.config.file: "), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("/nonexistent/web.yml"), std::string::npos) << s.error().message;
}

TEST(MetricsServer, ListenAddressesAsGoServersTakeThem) {
  using HP = std::pair<std::string, std::string>;
  EXPECT_EQ(split_listen(":9477").value(), (HP{"", "9477"}));
  EXPECT_EQ(split_listen("0.0.0.0:9477").value(), (HP{"0.0.0.0", "9477"}));
  EXPECT_EQ(split_listen("[::1]:9477").value(), (HP{"::1", "9477"}));
  EXPECT_FALSE(split_listen("9477"));
  EXPECT_FALSE(split_listen("host:"));
  auto busy = MetricsServer::start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(busy);
  auto again = MetricsServer::start({.listen = fmt::format("127.0.0.1:{}", (*busy)->ports().at(0))});
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("Address already in use"), std::string::npos) << again.error().message;
}

TEST(MetricsServer, OnlyGetAndKnownPaths) {
  auto s = MetricsServer::start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(s);
  const std::string at = fmt::format("127.0.0.1:{}", (*s)->ports().at(0));
  auto landing = http::http_get(at, "/", 5s);
  ASSERT_TRUE(landing);
  EXPECT_EQ(landing->status, 200);
  EXPECT_NE(landing->body.find("href=\"/metrics\""), std::string::npos);
  auto missing = http::http_get(at, "/nope", 5s);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  std::string out;
  testing::run_command(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' -X POST http://{}/metrics", at), &out);
  EXPECT_EQ(out, "405");
  auto health = http::http_get(at, "/healthz", 5s);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto ready = http::http_get(at, "/readyz", 5s);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);  // not before the agent says so
  (*s)->set_ready(true);
  ready = http::http_get(at, "/readyz", 5s);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  // An agent that observes nothing is not ready (a broken rollout stops at the
  // first node) but still serves its metrics, which say why.
  (*s)->set_unready_reason("no probe attached");
  ready = http::http_get(at, "/readyz", 5s);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "no probe attached\n");
  auto metrics = http::http_get(at, "/metrics", 5s);
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  (*s)->set_unready_reason("");
  ready = http::http_get(at, "/readyz", 5s);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
}

TEST(MetricsServer, TelemetryPath) {
  auto s = MetricsServer::start({.listen = "127.0.0.1:0", .telemetry_path = "/hv/metrics"});
  ASSERT_TRUE(s) << s.error().message;
  const std::string at = fmt::format("127.0.0.1:{}", (*s)->ports().at(0));
  EXPECT_EQ(http::http_get(at, "/hv/metrics", 5s)->status, 503);  // collectors not all registered yet
  (*s)->set_ready(true);
  EXPECT_EQ(http::http_get(at, "/metrics", 5s)->status, 404);
  auto m = http::http_get(at, "/hv/metrics", 5s);
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("hvtel_web_config_errors_total 0"), std::string::npos);
  EXPECT_NE(http::http_get(at, "/", 5s)->body.find("href=\"/hv/metrics\""), std::string::npos);
}

}  // namespace
}  // namespace hvtel::web
