// Logging to stderr, one line per message: "hvtel <level> <component>: <text>".
// Levels by meaning: debug (developer detail), info (lifecycle), warn (something
// is degraded but the agent keeps going), error (a feature is lost).
#pragma once

#include <fmt/core.h>

#include <string_view>

namespace hvtel::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
Level level();
void write(Level level, std::string_view component, std::string_view text);

template <typename... Args>
void debug(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  if (level() <= Level::kDebug) write(Level::kDebug, c, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void info(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  if (level() <= Level::kInfo) write(Level::kInfo, c, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void warn(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  if (level() <= Level::kWarn) write(Level::kWarn, c, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void error(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  write(Level::kError, c, fmt::format(f, std::forward<Args>(a)...));
}

}  // namespace hvtel::log
