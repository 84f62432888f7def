// Splits a byte stream of concatenated JSON texts into whole messages.
//
// OVSDB's JSON-RPC (RFC 7047) writes one JSON object after another with no
// delimiter, and a read(2) may end anywhere, including inside a string. The
// framer only tracks nesting depth and string/escape state, so it never parses
// values; nlohmann::json parses each complete message afterwards.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "base/util/result.h"

namespace hvtel::ovsdb {

class JsonFramer {
 public:
  // A peer that never closes its top-level object must not eat all memory.
  static constexpr size_t kDefaultMaxMessage = 64u << 20;

  explicit JsonFramer(size_t max_message = kDefaultMaxMessage) : max_message_(max_message) {}

  // Appends bytes and queues every message they complete. Fails on bytes that
  // cannot start a message (only whitespace may separate messages) or on an
  // oversized message; the stream is then unusable until reset().
  Status feed(std::string_view bytes);

  // The next complete message, oldest first.
  std::optional<std::string> pop();

  // Forgets everything (new connection).
  void reset();

  // Bytes held for an incomplete message.
  size_t partial_bytes() const { return buf_.size(); }
  bool failed() const { return failed_; }

 private:
  size_t max_message_;
  std::string buf_;     // bytes of the message being assembled
  std::deque<std::string> ready_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool failed_ = false;
};

}  // namespace hvtel::ovsdb
