// HTTP basic authentication against bcrypt hashes (basic_auth_users).
//
// bcrypt costs tens of milliseconds per check by design, and Prometheus sends
// the same credentials every scrape: a successful check is remembered by a
// SHA-256 of (user, password, hash), as exporter-toolkit does, so a scrape
// pays one hash, not one bcrypt. Failures are never cached.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace hvtel::web {

class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);  // user -> bcrypt hash

  bool enabled() const { return !users_.empty(); }
  bool check(std::string_view user, std::string_view password);

 private:
  using Digest = std::array<uint8_t, 32>;
  static constexpr size_t kMaxCached = 1024;

  const std::map<std::string, std::string> users_;
  std::mutex mu_;
  std::set<Digest> verified_;
};

}  // namespace hvtel::web
