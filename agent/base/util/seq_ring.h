// SeqRing: the last `capacity` items of a stream, numbered 1, 2, 3, ... as they
// arrive. Readers ask for what came after a number they hold; items that left
// the ring before they were read are counted as missed, never skipped silently.
// Not thread-safe: the owner locks. T has a `uint64_t seq` the ring assigns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

namespace hvtel {

template <class T>
class SeqRing {
 public:
  explicit SeqRing(size_t capacity) : capacity_(capacity) {}

  // Numbers `item` and keeps it, dropping the oldest beyond the capacity.
  uint64_t push(T item) {
    item.seq = ++last_;
    items_.push_back(std::move(item));
    while (items_.size() > capacity_) items_.pop_front();
    return last_;
  }

  uint64_t last_seq() const { return last_; }

  struct Slice {
    std::vector<T> items;
    uint64_t cursor = 0;  // pass as `since` next time
    uint64_t missed = 0;  // after `since` but gone from the ring
  };

  // At most `max` items numbered after `since`, of those `keep` accepts (all
  // without it); the cursor also passes the ones it rejects.
  Slice after(uint64_t since, size_t max, const std::function<bool(const T&)>& keep = {}) const {
    Slice s;
    s.cursor = since;
    if (items_.empty()) return s;
    const uint64_t first = items_.front().seq;
    if (first > since + 1) {
      s.missed = first - since - 1;
      s.cursor = first - 1;
    }
    for (size_t i = s.cursor + 1 - first; i < items_.size() && s.items.size() < max; ++i) {
      s.cursor = items_[i].seq;
      if (!keep || keep(items_[i])) s.items.push_back(items_[i]);
    }
    return s;
  }

 private:
  size_t capacity_;
  std::deque<T> items_;
  uint64_t last_ = 0;
};

}  // namespace hvtel
