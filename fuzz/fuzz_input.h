// What every fuzz target shares: the input as text, and a deterministic way to take a few control
// bytes (which decoder, how to slice a stream) off its front.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace hvtel::fuzz {

struct Input {
  std::span<const uint8_t> bytes;

  Input(const uint8_t* data, size_t size) : bytes(data, size) {}
  std::string_view text() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  // The first byte, removed from the input; 0 when there is none.
  uint8_t take_byte() {
    if (bytes.empty()) return 0;
    uint8_t b = bytes.front();
    bytes = bytes.subspan(1);
    return b;
  }
  // Calls feed(piece) for consecutive pieces of at most 'slice' bytes (0: the whole input at
  // once), the way read(2) may split what a peer sent. Stops early when feed returns false.
  template <typename Feed>
  void in_slices(size_t slice, Feed&& feed) const {
    if (slice == 0) slice = bytes.size();
    for (size_t off = 0; off < bytes.size(); off += slice) {
      if (!feed(bytes.subspan(off, std::min(slice, bytes.size() - off)))) return;
    }
  }
};

}  // namespace hvtel::fuzz
