#include "base/metrics/family.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <string>
#include <vector>

using hvtel::metrics::FamilyBuilder;
using hvtel::metrics::Log2Buckets;
using hvtel::metrics::MetricDesc;

TEST(Family, Log2HistogramBucketsAreCumulativeAndExact) {
  MetricDesc d{"x_seconds", "help", prometheus::MetricType::Histogram};
  __u64 slots[64] = {};
  slots[3] = 5;    // [8, 16) ns
  slots[10] = 7;   // [1024, 2048) ns
  slots[11] = 1;   // [2048, 4096) ns
  slots[21] = 2;   // [2.1 ms, 4.2 ms)
  slots[63] = 1;   // beyond the last bound
  FamilyBuilder b(d);
  b.add_histogram({{"a", "b"}}, slots, 64, 123456789, Log2Buckets{10, 2, 22});
  auto f = b.take();
  ASSERT_EQ(f.metric.size(), 1u);
  const auto& h = f.metric[0].histogram;
  // Bounds 2^10, 2^12, ..., 2^22 ns, then +Inf.
  ASSERT_EQ(h.bucket.size(), 7u + 1u);
  EXPECT_DOUBLE_EQ(h.bucket[0].upper_bound, 1024e-9);
  EXPECT_EQ(h.bucket[0].cumulative_count, 5u);   // slots 0..9
  EXPECT_EQ(h.bucket[1].cumulative_count, 13u);  // slots 0..11
  EXPECT_DOUBLE_EQ(h.bucket[5].upper_bound, std::ldexp(1.0, 20) / 1e9);
  EXPECT_EQ(h.bucket[5].cumulative_count, 13u);  // 2^20 ns = 1.048576 ms: below 2 ms
  EXPECT_EQ(h.bucket[6].cumulative_count, 15u);  // 2^22 ns = 4.194304 ms
  EXPECT_TRUE(std::isinf(h.bucket[7].upper_bound));
  EXPECT_EQ(h.bucket[7].cumulative_count, 16u);
  EXPECT_EQ(h.sample_count, 16u);
  EXPECT_DOUBLE_EQ(h.sample_sum, 0.123456789);
}

TEST(Family, EmptyFamilyIsNotAppended) {
  std::vector<prometheus::MetricFamily> out;
  hvtel::metrics::append(out, FamilyBuilder(MetricDesc{"y_total", "h", prometheus::MetricType::Counter}));
  EXPECT_TRUE(out.empty());
}

// The buffer size is only a hint: too small, none or far too big, the text is the library's own.
TEST(Family, SerializeTextIsTheTextSerializersWhateverTheSizeHint) {
  std::vector<prometheus::MetricFamily> families;
  for (const char* name : {"hv_test_a_total", "hv_test_b_total", "hv_test_c_total"}) {
    FamilyBuilder b(MetricDesc{name, "help \"quoted\"\n", prometheus::MetricType::Counter});
    for (int i = 0; i < 500; ++i)
      b.add({{"instance_id", "i-" + std::to_string(i)}, {"reason", "ioio"}}, 0.5 + i);
    hvtel::metrics::append(families, std::move(b));
  }
  const std::string want = prometheus::TextSerializer().Serialize(families);
  ASSERT_GT(want.size(), 40000u);
  for (size_t hint : {size_t{0}, size_t{100}, want.size(), want.size() * 4})
    EXPECT_EQ(hvtel::metrics::serialize_text(families, hint), want) << "hint " << hint;
}
