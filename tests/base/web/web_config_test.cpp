#include "base/web/web_config.h"

#include <fmt/core.h>
#include <gtest/gtest.h>

namespace hvtel::web {
namespace {

constexpr const char* kHash = "$2b$04$abcdefghijklmnopqrstuu5Q7wbmWJl9DC3iyrqkgz1PyyIs3.CjG";

TEST(WebConfig, ParsesTheToolkitFormat) {
  auto cfg = parse_web_config(fmt::format(R"(
tls_server_config:
  cert_file: tls/server.crt
  key_file: /etc/hvtel/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
basic_auth_users:
  prometheus: {0}
  grafana: '{0}'
)", kHash), "web.yml", "/etc/hvtel");
  ASSERT_TRUE(cfg) << cfg.error().message;
  ASSERT_TRUE(cfg->tls);
  EXPECT_EQ(cfg->tls->cert_file, "/etc/hvtel/tls/server.crt");
  EXPECT_EQ(cfg->tls->key_file, "/etc/hvtel/server.key");
  EXPECT_EQ(cfg->tls->client_ca_file, "/etc/hvtel/ca.crt");
  EXPECT_EQ(cfg->tls->client_auth, ClientAuth::kRequireAndVerify);
  EXPECT_EQ(cfg->tls->min_version, 0x0304);
  EXPECT_EQ(cfg->users.size(), 2u);
  EXPECT_EQ(cfg->users.at("grafana"), kHash);
  EXPECT_EQ(cfg->files(), (std::vector<std::string>{"/etc/hvtel/tls/server.crt",
                                                    "/etc/hvtel/server.key", "/etc/hvtel/ca.crt"}));
}

TEST(WebConfig, EmptyFileIsPlainHttp) {
  auto cfg = parse_web_config("", "web.yml", "/");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_FALSE(cfg->tls);
  EXPECT_TRUE(cfg->users.empty());
  auto minimal = parse_web_config("tls_server_config:\n  cert_file: a\n  key_file: b\n", "w", "/d");
  ASSERT_TRUE(minimal) << minimal.error().message;
  EXPECT_EQ(minimal->tls->min_version, 0x0303);  // TLS 1.2, the toolkit's default
  EXPECT_EQ(minimal->tls->client_auth, ClientAuth::kNone);
}

TEST(WebConfig, ErrorsNameFileLineAndWhat) {
  auto msg = [](const std::string& yaml) {
    auto cfg = parse_web_config(yaml, "web.yml", "/d");
    return cfg ? std::string("ok") : cfg.error().message;
  };
  EXPECT_EQ(msg("tls_server_config:\n  cert_file: a\n"),
            "web.yml:2: tls_server_config: cert_file and key_file are required");
  EXPECT_EQ(msg("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n"),
            "web.yml:4: tls_server_config: 'cipher_suites' is not supported");
  EXPECT_EQ(msg("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                "  client_auth_type: RequireAndVerifyClientCert\n"),
            "web.yml:2: tls_server_config: client_auth_type verifies client certificates: "
            "client_ca_file is required");
  EXPECT_EQ(msg("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Any\n"),
            "web.yml:4: client_auth_type 'Any' is not supported (NoClientCert, "
            "VerifyClientCertIfGiven, RequireAndVerifyClientCert)");
  EXPECT_EQ(msg("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n"),
            "web.yml:4: min_version 'SSL3': expected TLS10..TLS13");
  EXPECT_EQ(msg("basic_auth_users:\n  alice: secret\n"),
            "web.yml:2: basic_auth_users: alice: not a bcrypt hash");
  EXPECT_EQ(msg("basic_auth_users: [alice]\n"),
            "web.yml:1: basic_auth_users: expected a mapping of user: bcrypt hash");
  EXPECT_EQ(msg("http_server_config:\n  http2: false\n"),
            "web.yml:1: 'http_server_config' is not supported (tls_server_config, basic_auth_users)");
  EXPECT_EQ(msg("tls_server_config: [\n"), "web.yml:2: end of sequence flow not found");
  EXPECT_EQ(msg("- a\n"), "web.yml:1: expected a mapping");
}

}  // namespace
}  // namespace hvtel::web
