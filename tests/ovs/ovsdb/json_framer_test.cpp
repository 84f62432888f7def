#include "ovs/ovsdb/json_framer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hvtel::ovsdb {
namespace {

std::vector<std::string> drain(JsonFramer& f) {
  std::vector<std::string> out;
  while (auto m = f.pop()) out.push_back(*m);
  return out;
}

TEST(JsonFramer, SplitsConcatenatedMessages) {
  JsonFramer f;
  ASSERT_TRUE(f.feed(R"({"id":1,"result":{}}{"method":"echo","params":[],"id":"x"} [1,2])"));
  EXPECT_EQ(drain(f), (std::vector<std::string>{R"({"id":1,"result":{}})",
                                                R"({"method":"echo","params":[],"id":"x"})",
                                                "[1,2]"}));
  EXPECT_EQ(f.partial_bytes(), 0u);
}

TEST(JsonFramer, ReassemblesByteByByte) {
  const std::string msg = R"({"a":{"b":["c",{"d":"}"}]},"e":"\"{"})";
  JsonFramer f;
  for (size_t i = 0; i < msg.size(); ++i) {
    ASSERT_TRUE(f.feed(std::string_view(&msg[i], 1)));
    if (i + 1 < msg.size()) {
      EXPECT_FALSE(f.pop().has_value()) << "early at byte " << i;
    }
  }
  EXPECT_EQ(drain(f), std::vector<std::string>{msg});
}

TEST(JsonFramer, BracesAndEscapesInsideStrings) {
  // A string holding braces, an escaped quote, and an escaped backslash right
  // before the closing quote: depth must not move inside strings.
  const std::string a = R"({"s":"{{[[ \" }} \\"})";
  const std::string b = R"({"t":"\\\"}"})";
  JsonFramer f;
  ASSERT_TRUE(f.feed(a.substr(0, 9)));
  ASSERT_TRUE(f.feed(a.substr(9) + "\n" + b.substr(0, 5)));
  ASSERT_TRUE(f.feed(b.substr(5)));
  EXPECT_EQ(drain(f), (std::vector<std::string>{a, b}));
}

TEST(JsonFramer, SplitInsideEscape) {
  JsonFramer f;
  ASSERT_TRUE(f.feed(R"({"s":"a\)"));
  ASSERT_TRUE(f.feed(R"("}"})"));
  EXPECT_EQ(drain(f), std::vector<std::string>{R"({"s":"a\"}"})"});
}

TEST(JsonFramer, Utf8PassesThrough) {
  JsonFramer f;
  ASSERT_TRUE(f.feed("{\"n\":\"br\xc3\xa9\xe2\x82\xac}\"}"));
  EXPECT_EQ(drain(f).size(), 1u);
}

TEST(JsonFramer, GarbageBetweenMessagesFails) {
  JsonFramer f;
  ASSERT_TRUE(f.feed(R"({"id":1})"));
  auto st = f.feed("x{}");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("0x78"), std::string::npos);
  EXPECT_TRUE(f.failed());
  EXPECT_FALSE(f.feed("{}"));  // stays failed
  f.reset();
  ASSERT_TRUE(f.feed("{}"));
  EXPECT_EQ(drain(f), std::vector<std::string>{"{}"});
}

TEST(JsonFramer, OversizedMessageFails) {
  JsonFramer f(16);
  ASSERT_TRUE(f.feed(R"({"a":")"));
  auto st = f.feed(std::string(32, 'x'));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("exceeds 16 bytes"), std::string::npos);
}

}  // namespace
}  // namespace hvtel::ovsdb
