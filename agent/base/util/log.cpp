#include "base/util/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace hvtel::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mu;
const char* name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "?";
}
}  // namespace

void set_level(Level l) { g_level.store(l); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view component, std::string_view text) {
  std::lock_guard lock(g_mu);
  std::fprintf(stderr, "hvtel %s %.*s: %.*s\n", name(l), static_cast<int>(component.size()),
               component.data(), static_cast<int>(text.size()), text.data());
}

}  // namespace hvtel::log
