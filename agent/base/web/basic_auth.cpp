#include "base/web/basic_auth.h"

#include <crypt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <cstring>
#include <memory>
#include <optional>

namespace hvtel::web {
namespace {

// bcrypt of a fixed password: unknown users pay the same time as known ones,
// so a timing probe cannot list the users.
constexpr const char* kDummyHash = "$2b$10$6xeSq5hp6Fct2ukaxKj5V.4oX3f4MzhyB3DiH/3RnvMkXm89eEePi";

// Constant time: the comparison must not tell how many characters matched.
bool same(const char* a, const std::string& b) {
  if (std::strlen(a) != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < b.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool bcrypt_matches(std::string_view password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();  // ~32 KB: not on a server thread's stack
  const std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  return out != nullptr && same(out, hash);  // a malformed hash yields null or "*0"
}

std::optional<std::array<uint8_t, 32>> digest(std::string_view user, std::string_view password,
                                              const std::string& hash) {
  std::string text;
  text.append(user).push_back('\0');
  text.append(password).push_back('\0');
  text.append(hash);
  std::array<uint8_t, 32> d{};
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, text.data(), text.size(), d.data()) != 0) return std::nullopt;
  return d;
}

}  // namespace

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

bool BasicAuth::check(std::string_view user, std::string_view password) {
  auto it = users_.find(std::string(user));
  if (it == users_.end()) {
    bcrypt_matches(password, kDummyHash);
    return false;
  }
  auto d = digest(user, password, it->second);
  if (d) {
    std::lock_guard lock(mu_);
    if (verified_.count(*d)) return true;
  }
  if (!bcrypt_matches(password, it->second)) return false;
  if (d) {
    std::lock_guard lock(mu_);
    if (verified_.size() >= kMaxCached) verified_.clear();  // bounded: rotating passwords
    verified_.insert(*d);
  }
  return true;
}

}  // namespace hvtel::web
