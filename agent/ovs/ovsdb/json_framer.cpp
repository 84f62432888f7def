#include "ovs/ovsdb/json_framer.h"

#include <fmt/core.h>

namespace hvtel::ovsdb {

Status JsonFramer::feed(std::string_view bytes) {
  if (failed_) return fail("json framing: stream already failed");
  for (char c : bytes) {
    if (depth_ == 0) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
      if (c != '{' && c != '[') {
        failed_ = true;
        return fail(fmt::format("json framing: unexpected byte 0x{:02x} between messages",
                                static_cast<unsigned char>(c)));
      }
      buf_.push_back(c);
      depth_ = 1;
      continue;
    }
    buf_.push_back(c);
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        ready_.push_back(std::move(buf_));
        buf_.clear();
        continue;
      }
    }
    if (buf_.size() > max_message_) {
      failed_ = true;
      return fail(fmt::format("json framing: message exceeds {} bytes", max_message_));
    }
  }
  return {};
}

std::optional<std::string> JsonFramer::pop() {
  if (ready_.empty()) return std::nullopt;
  std::string m = std::move(ready_.front());
  ready_.pop_front();
  return m;
}

void JsonFramer::reset() {
  buf_.clear();
  ready_.clear();
  depth_ = 0;
  in_string_ = false;
  escape_ = false;
  failed_ = false;
}

}  // namespace hvtel::ovsdb
