#include "util/strings.h"

#include <gtest/gtest.h>

using hvtel::format_cpu_list;
using hvtel::parse_cpu_list;

TEST(Strings, CpuList) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list(" 5 , 1-2 "), (std::vector<int>{1, 2, 5}));
  EXPECT_EQ(parse_cpu_list(""), std::vector<int>{});
  EXPECT_FALSE(parse_cpu_list("3-1"));
  EXPECT_FALSE(parse_cpu_list("a"));
  EXPECT_FALSE(parse_cpu_list("1,,2"));
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list({}), "");
}

TEST(Strings, Numbers) {
  EXPECT_EQ(hvtel::parse_u64("0xae80", 16), 0xae80u);
  EXPECT_EQ(hvtel::parse_u64("42"), 42u);
  EXPECT_FALSE(hvtel::parse_u64("42x"));
  EXPECT_FALSE(hvtel::parse_u64(""));
}
