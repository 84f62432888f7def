// Helpers to build prometheus::MetricFamily values at scrape time.
//
// Every metric hvtel exports is described once, as a MetricDesc in
// catalog.h; collectors only fill values and labels.
#pragma once

#include <linux/types.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace hvtel::metrics {

struct MetricDesc {
  const char* name;
  const char* help;
  prometheus::MetricType type;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

// log2 histogram export: in-kernel slot s holds [2^s, 2^(s+1)) ns; exported
// bucket bounds are 2^first, 2^(first+step), ... 2^last ns, in seconds.
struct Log2Buckets {
  int first;
  int step;
  int last;
};

class FamilyBuilder {
 public:
  explicit FamilyBuilder(const MetricDesc& d);
  FamilyBuilder& add(const Labels& labels, double value);
  FamilyBuilder& add_histogram(const Labels& labels, const __u64* slots, size_t nslots,
                               uint64_t sum_ns, const Log2Buckets& scheme);
  bool empty() const { return family_.metric.empty(); }
  prometheus::MetricFamily take() { return std::move(family_); }

 private:
  prometheus::MetricFamily family_;
};

// Appends the family to out unless it has no series.
void append(std::vector<prometheus::MetricFamily>& out, FamilyBuilder&& b);
// Every family, in order, empty ones included (their HELP and TYPE still show).
std::vector<prometheus::MetricFamily> take_all(std::initializer_list<FamilyBuilder*> builders);

// The text exposition format of `families`, written into a buffer of
// `size_hint` bytes (the last text's size) and moved out: a busy host's text
// is megabytes, and a growing stream's doublings and final copy cost as much
// as the serialising.
std::string serialize_text(const std::vector<prometheus::MetricFamily>& families, size_t size_hint);

}  // namespace hvtel::metrics
