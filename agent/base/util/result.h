// Result<T>: the one error style of the agent.
//
// Every call that touches the system returns a Result. An Error carries a
// human-readable message that accumulates context as it travels up
// ("load vcpu_exits: attach kvm_exit: Operation not permitted") and the errno
// that started it, when there was one. No exceptions cross module boundaries;
// main() is the only place that turns an Error into an exit code.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

namespace hvtel {

struct Error {
  std::string message;
  int err = 0;  // errno, 0 when the failure was not a system call

  static Error msg(std::string m) { return Error{std::move(m), 0}; }
  // Builds "what: strerror(e)" from an errno value (positive or negative).
  static Error sys(int e, const std::string& what) {
    if (e < 0) e = -e;
    return Error{what + ": " + std::strerror(e), e};
  }
  // Prefixes context: err.context("read /proc/1/stat").
  Error context(const std::string& what) const& {
    return Error{what + ": " + message, err};
  }
  Error context(const std::string& what) && {
    message = what + ": " + message;
    return std::move(*this);
  }
};

template <typename T>
using Result = std::expected<T, Error>;

using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(std::string m) {
  return std::unexpected(Error::msg(std::move(m)));
}
inline std::unexpected<Error> fail_errno(int e, const std::string& what) {
  return std::unexpected(Error::sys(e, what));
}
inline std::unexpected<Error> fail(Error e) { return std::unexpected(std::move(e)); }

}  // namespace hvtel
