#include "base/web/web_config.h"

#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <utility>

#include "base/util/files.h"

// GCC 12 with -fsanitize=address reports the strings of an engaged
// optional<TlsConfig> as maybe-uninitialized when a WebConfig moves into a
// Result: a false positive (plain builds and clang do not see it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace hvtel::web {
namespace {

constexpr size_t kMaxWebConfigBytes = 64 << 10;
constexpr size_t kMaxUsers = 1000;

int line_of(const YAML::Node& n) { return n.Mark().line < 0 ? 0 : n.Mark().line + 1; }

class Parser {
 public:
  Parser(std::string_view origin, const std::string& base_dir)
      : origin_(origin), base_dir_(base_dir) {}

  std::unexpected<Error> error(const YAML::Node& at, const std::string& what) const {
    return fail(fmt::format("{}:{}: {}", origin_, line_of(at), what));
  }

  Result<std::string> scalar(const YAML::Node& n, std::string_view key) const {
    if (!n.IsScalar() || n.Scalar().empty())
      return error(n, fmt::format("{}: expected a non-empty string", key));
    return n.Scalar();
  }

  Result<std::string> path(const YAML::Node& n, std::string_view key) const {
    auto s = scalar(n, key);
    if (!s) return s;
    if (s->front() == '/' || base_dir_.empty()) return s;
    return base_dir_ + "/" + *s;
  }

  Result<TlsConfig> tls(const YAML::Node& n) const {
    if (!n.IsMap()) return error(n, "tls_server_config: expected a mapping");
    TlsConfig t;
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "cert_file" || key == "key_file" || key == "client_ca_file") {
        auto p = path(v, key);
        if (!p) return fail(p.error());
        (key == "cert_file" ? t.cert_file : key == "key_file" ? t.key_file : t.client_ca_file) = *p;
      } else if (key == "client_auth_type") {
        auto s = scalar(v, key);
        if (!s) return fail(s.error());
        if (*s == "NoClientCert") t.client_auth = ClientAuth::kNone;
        else if (*s == "VerifyClientCertIfGiven") t.client_auth = ClientAuth::kVerifyIfGiven;
        else if (*s == "RequireAndVerifyClientCert") t.client_auth = ClientAuth::kRequireAndVerify;
        else
          return error(v, fmt::format("client_auth_type '{}' is not supported (NoClientCert, "
                                      "VerifyClientCertIfGiven, RequireAndVerifyClientCert)", *s));
      } else if (key == "min_version") {
        static constexpr std::array<std::pair<std::string_view, int>, 4> kVersions{
            {{"TLS10", 0x0301}, {"TLS11", 0x0302}, {"TLS12", 0x0303}, {"TLS13", 0x0304}}};
        auto s = scalar(v, key);
        if (!s) return fail(s.error());
        bool known = false;
        for (const auto& [name, value] : kVersions)
          if (*s == name) t.min_version = value, known = true;
        if (!known) return error(v, fmt::format("min_version '{}': expected TLS10..TLS13", *s));
      } else {
        return error(kv.first, fmt::format("tls_server_config: '{}' is not supported", key));
      }
    }
    if (t.cert_file.empty() || t.key_file.empty())
      return error(n, "tls_server_config: cert_file and key_file are required");
    if (t.client_auth != ClientAuth::kNone && t.client_ca_file.empty())
      return error(n, "tls_server_config: client_auth_type verifies client certificates: "
                      "client_ca_file is required");
    return t;
  }

  Result<std::map<std::string, std::string>> users(const YAML::Node& n) const {
    if (!n.IsMap()) return error(n, "basic_auth_users: expected a mapping of user: bcrypt hash");
    std::map<std::string, std::string> out;
    for (const auto& kv : n) {
      auto user = scalar(kv.first, "basic_auth_users");
      if (!user) return fail(user.error());
      auto hash = scalar(kv.second, *user);
      if (!hash) return fail(hash.error());
      // Only bcrypt, as the toolkit: a plain or weaker hash here is a mistake.
      if (hash->size() != 60 || (*hash)[0] != '$' || (*hash)[1] != '2' || (*hash)[3] != '$')
        return error(kv.second, fmt::format("basic_auth_users: {}: not a bcrypt hash", *user));
      if (out.size() == kMaxUsers) return error(kv.first, "basic_auth_users: too many users");
      out.emplace(std::move(*user), std::move(*hash));
    }
    return out;
  }

 private:
  std::string_view origin_;
  const std::string& base_dir_;
};

}  // namespace

std::vector<std::string> WebConfig::files() const {
  std::vector<std::string> out;
  if (tls) {
    out = {tls->cert_file, tls->key_file};
    if (!tls->client_ca_file.empty()) out.push_back(tls->client_ca_file);
  }
  return out;
}

Result<WebConfig> parse_web_config(std::string_view yaml, std::string_view origin,
                                   const std::string& base_dir) {
  Parser p(origin, base_dir);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return fail(fmt::format("{}:{}: {}", origin, e.mark.line < 0 ? 0 : e.mark.line + 1, e.msg));
  }
  WebConfig cfg;
  if (root.IsNull()) return cfg;  // an empty file: plain HTTP, no authentication
  if (!root.IsMap()) return p.error(root, "expected a mapping");
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      if (key == "tls_server_config") {
        auto t = p.tls(kv.second);
        if (!t) return fail(t.error());
        cfg.tls = std::move(*t);
      } else if (key == "basic_auth_users") {
        auto u = p.users(kv.second);
        if (!u) return fail(u.error());
        cfg.users = std::move(*u);
      } else {
        return p.error(kv.first, fmt::format("'{}' is not supported (tls_server_config, "
                                             "basic_auth_users)", key));
      }
    }
  } catch (const YAML::Exception& e) {  // a non-scalar key, an alias loop
    return fail(fmt::format("{}:{}: {}", origin, e.mark.line < 0 ? 0 : e.mark.line + 1, e.msg));
  }
  return cfg;
}

Result<WebConfig> load_web_config(const std::string& path) {
  auto text = read_config_file(path, kMaxWebConfigBytes);
  if (!text) return fail(text.error());
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  return parse_web_config(*text, path, dir.empty() ? "/" : dir);
}

}  // namespace hvtel::web
