#include "base/http/prom_text.h"

#include <gtest/gtest.h>

#include <cmath>

namespace hvtel::http {
namespace {

TEST(PromText, ParsesCommentsLabelsEscapesInfAndTimestamps) {
  const std::string text =
      "# HELP hvtel_vcpu_exits_total VM exits.\n"
      "# TYPE hvtel_vcpu_exits_total counter\n"
      "\n"
      "hvtel_vcpu_exits_total{instance_id=\"a\",reason=\"hlt\"} 12\n"
      "hvtel_instance_info{instance_id=\"a\",instance_name=\"say \\\"hi\\\"\\\\ \\n\",} 1\n"
      "h_bucket{le=\"+Inf\"} 7 1700000000000\n"
      "  spaced { a = \"x,}\" , b=\"\" }   -1.5e-3\n"
      "nolabels +Inf\n"
      "neg -Inf\n"
      "nan NaN\r\n";
  PromText p = parse_prometheus_text(text);
  EXPECT_EQ(p.bad_lines, 0u) << p.first_error;
  ASSERT_EQ(p.samples.size(), 7u);
  EXPECT_EQ(p.samples[0].name, "hvtel_vcpu_exits_total");
  EXPECT_EQ(p.samples[0].label("reason"), "hlt");
  EXPECT_EQ(p.samples[0].value, 12.0);
  EXPECT_EQ(p.samples[1].label("instance_name"), "say \"hi\"\\ \n");
  EXPECT_EQ(p.samples[2].name, "h_bucket");
  EXPECT_TRUE(std::isinf(*parse_prom_value(p.samples[2].label("le"))));
  EXPECT_EQ(p.samples[2].value, 7.0);
  EXPECT_EQ(p.samples[3].name, "spaced");
  EXPECT_EQ(p.samples[3].label("a"), "x,}");
  EXPECT_EQ(p.samples[3].label("b"), "");
  EXPECT_EQ(p.samples[3].labels.size(), 2u);
  EXPECT_DOUBLE_EQ(p.samples[3].value, -1.5e-3);
  EXPECT_TRUE(std::isinf(p.samples[4].value) && p.samples[4].value > 0);
  EXPECT_TRUE(std::isinf(p.samples[5].value) && p.samples[5].value < 0);
  EXPECT_TRUE(std::isnan(p.samples[6].value));
  EXPECT_EQ(p.samples[0].label("missing"), "");
}

TEST(PromText, BadLinesAreSkippedAndCounted) {
  PromText p = parse_prometheus_text(
      "good 1\n"
      "bad{a=\"unterminated} 1\n"
      "9name 1\n"
      "novalue{a=\"b\"}\n"
      "x{a=b} 1\n"
      "y 1 2 3\n"
      "z 0x\n"
      "after 2\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].name, "good");
  EXPECT_EQ(p.samples[1].name, "after");
  EXPECT_EQ(p.samples[1].value, 2.0);
  EXPECT_EQ(p.bad_lines, 6u);
  EXPECT_EQ(p.first_error, "line 2: unterminated value of label a");
}

TEST(PromText, Values) {
  EXPECT_EQ(parse_prom_value("1e3"), 1000.0);
  EXPECT_EQ(parse_prom_value("+2.5"), 2.5);
  EXPECT_EQ(parse_prom_value("1.024e-06"), 1.024e-06);
  EXPECT_FALSE(parse_prom_value(""));
  EXPECT_FALSE(parse_prom_value("+"));
  EXPECT_FALSE(parse_prom_value("1.5x"));
}

}  // namespace
}  // namespace hvtel::http
