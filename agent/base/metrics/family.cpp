#include "base/metrics/family.h"

#include <prometheus/text_serializer.h>

#include <cmath>
#include <limits>
#include <sstream>

namespace hvtel::metrics {

FamilyBuilder::FamilyBuilder(const MetricDesc& d) {
  family_.name = d.name;
  family_.help = d.help;
  family_.type = d.type;
}

namespace {
prometheus::ClientMetric with_labels(const Labels& labels) {
  prometheus::ClientMetric m;
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  return m;
}
}  // namespace

FamilyBuilder& FamilyBuilder::add(const Labels& labels, double value) {
  auto m = with_labels(labels);
  switch (family_.type) {
    case prometheus::MetricType::Counter: m.counter.value = value; break;
    case prometheus::MetricType::Gauge: m.gauge.value = value; break;
    default: m.untyped.value = value; break;
  }
  family_.metric.push_back(std::move(m));
  return *this;
}

FamilyBuilder& FamilyBuilder::add_histogram(const Labels& labels, const __u64* slots,
                                            size_t nslots, uint64_t sum_ns,
                                            const Log2Buckets& scheme) {
  auto m = with_labels(labels);
  uint64_t total = 0;
  size_t s = 0;
  // Bound 2^b ns covers slots 0..b-1 (values below 2^b).
  for (int b = scheme.first; b <= scheme.last; b += scheme.step) {
    for (; s < nslots && static_cast<int>(s) < b; ++s) total += slots[s];
    m.histogram.bucket.push_back({total, std::ldexp(1.0, b) / 1e9});
  }
  for (; s < nslots; ++s) total += slots[s];
  m.histogram.bucket.push_back({total, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = total;
  m.histogram.sample_sum = static_cast<double>(sum_ns) / 1e9;
  family_.metric.push_back(std::move(m));
  return *this;
}

void append(std::vector<prometheus::MetricFamily>& out, FamilyBuilder&& b) {
  if (!b.empty()) out.push_back(b.take());
}

std::vector<prometheus::MetricFamily> take_all(std::initializer_list<FamilyBuilder*> builders) {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(builders.size());
  for (FamilyBuilder* b : builders) out.push_back(b->take());
  return out;
}

std::string serialize_text(const std::vector<prometheus::MetricFamily>& families, size_t size_hint) {
  std::string buf;
  buf.reserve(size_hint + size_hint / 8 + 4096);
  std::ostringstream out(std::move(buf));
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

}  // namespace hvtel::metrics
