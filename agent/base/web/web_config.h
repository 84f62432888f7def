// --web.config.file: TLS and basic authentication for the metrics endpoint,
// in the exporter-toolkit format node_exporter and Prometheus users know:
//
//   tls_server_config:
//     cert_file: server.crt        # relative paths: to the config file's directory
//     key_file: server.key
//     client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
//     client_ca_file: ca.crt
//     min_version: TLS12          # TLS10..TLS13
//   basic_auth_users:
//     prometheus: $2y$10$...      # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\n')
//
// Options of the toolkit hvtel does not implement (cipher_suites,
// curve_preferences, max_version, http_server_config, ...) are errors, not
// silently ignored: an operator who sets them expects them to hold.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/util/result.h"

namespace hvtel::web {

enum class ClientAuth { kNone, kVerifyIfGiven, kRequireAndVerify };

struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: no client certificates
  ClientAuth client_auth = ClientAuth::kNone;
  int min_version = 0x0303;  // TLS 1.2, as the toolkit defaults; OpenSSL's TLS1_x_VERSION values
  bool operator==(const TlsConfig&) const = default;
};

struct WebConfig {
  std::optional<TlsConfig> tls;
  std::map<std::string, std::string> users;  // user -> bcrypt hash; empty: no authentication
  bool operator==(const WebConfig&) const = default;

  // The files the configuration names (certificates, keys, CAs): a change of
  // any of them is a reload.
  std::vector<std::string> files() const;
};

// `origin` names the file in errors ("web.yml:4: ..."); relative paths are
// resolved against `base_dir`.
Result<WebConfig> parse_web_config(std::string_view yaml, std::string_view origin,
                                   const std::string& base_dir);
// Reads (a regular file, size-capped) and parses PATH.
Result<WebConfig> load_web_config(const std::string& path);

}  // namespace hvtel::web
