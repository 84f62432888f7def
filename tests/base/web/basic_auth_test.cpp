#include "base/web/basic_auth.h"

#include <crypt.h>
#include <gtest/gtest.h>

#include <memory>

namespace hvtel::web {
namespace {

// bcrypt at the lowest cost, so the test stays fast.
std::string bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt), nullptr);
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_rn(password.c_str(), salt, data.get(), sizeof(crypt_data));
  EXPECT_NE(out, nullptr);
  return out ? out : "";
}

TEST(BasicAuth, ChecksBcryptHashes) {
  BasicAuth auth(std::map<std::string, std::string>{{"prometheus", bcrypt("s3cret")}, {"grafana", bcrypt("other")}});
  EXPECT_TRUE(auth.enabled());
  EXPECT_TRUE(auth.check("prometheus", "s3cret"));
  EXPECT_TRUE(auth.check("prometheus", "s3cret"));  // remembered: the same answer
  EXPECT_FALSE(auth.check("prometheus", "s3cret "));
  EXPECT_FALSE(auth.check("prometheus", "other"));
  EXPECT_TRUE(auth.check("grafana", "other"));
  EXPECT_FALSE(auth.check("nobody", "s3cret"));
  EXPECT_FALSE(auth.check("", ""));
}

TEST(BasicAuth, AMalformedHashNeverMatches) {
  BasicAuth auth(std::map<std::string, std::string>{{"u", "$2b$04$tooshort"}});
  EXPECT_FALSE(auth.check("u", ""));
  EXPECT_FALSE(auth.check("u", "$2b$04$tooshort"));
  EXPECT_FALSE(BasicAuth(std::map<std::string, std::string>{}).enabled());
}

}  // namespace
}  // namespace hvtel::web
