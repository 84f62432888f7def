#include "base/http/http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <fmt/core.h>

namespace hvtel::http {
namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Waits for `events` on fd; an error on timeout or a signal.
Status wait_fd(int fd, short events, Clock::time_point deadline, const std::string& what) {
  while (true) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r > 0) return {};
    if (r == 0) return fail(what + ": timed out");
    return fail_errno(errno, what);  // EINTR included: the caller decides
  }
}

Result<std::string> decode_chunked(std::string_view s) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t eol = s.find("\r\n", pos);
    if (eol == std::string_view::npos) return fail("chunked body: truncated size line");
    std::string_view size_line = s.substr(pos, eol - pos);
    size_line = size_line.substr(0, size_line.find(';'));
    size_t n = 0;
    auto [p, ec] = std::from_chars(size_line.data(), size_line.data() + size_line.size(), n, 16);
    if (ec != std::errc() || size_line.empty()) return fail("chunked body: bad chunk size");
    pos = eol + 2;
    if (n == 0) return out;
    if (s.size() < pos + n + 2) return fail("chunked body: truncated chunk");
    out.append(s.substr(pos, n));
    pos += n + 2;
  }
}

}  // namespace

Result<std::pair<std::string, std::string>> split_host_port(std::string_view hp) {
  std::string host, port;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':')
      return fail(fmt::format("'{}': expected [ADDR]:PORT", hp));
    host = hp.substr(1, close - 1);
    port = hp.substr(close + 2);
  } else {
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail(fmt::format("'{}': expected ADDR:PORT", hp));
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
  }
  unsigned n = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || n == 0 || n > 65535)
    return fail(fmt::format("'{}': bad port", hp));
  return std::make_pair(host, port);
}

Result<HttpResponse> parse_http_response(std::string_view raw) {
  auto hdr_end = raw.find("\r\n\r\n");
  if (hdr_end == std::string_view::npos) return fail("no complete HTTP header");
  std::string_view head = raw.substr(0, hdr_end);
  std::string_view rest = raw.substr(hdr_end + 4);
  auto eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12)
    return fail(fmt::format("bad status line '{}'", status_line));
  HttpResponse r;
  auto sp = status_line.find(' ');
  auto [p, ec] = std::from_chars(status_line.data() + sp + 1, status_line.data() + sp + 4, r.status);
  if (ec != std::errc() || p != status_line.data() + sp + 4)
    return fail(fmt::format("bad status line '{}'", status_line));
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, e == std::string_view::npos ? head.npos : e - pos);
    pos = e == std::string_view::npos ? head.size() : e + 2;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    r.headers[lower(line.substr(0, colon))] = std::string(v);
  }
  auto te = r.headers.find("transfer-encoding");
  if (te != r.headers.end() && lower(te->second).find("chunked") != std::string::npos) {
    auto body = decode_chunked(rest);
    if (!body) return fail(body.error());
    r.body = std::move(*body);
    return r;
  }
  auto cl = r.headers.find("content-length");
  if (cl != r.headers.end()) {
    size_t n = 0;
    auto [q, ec2] = std::from_chars(cl->second.data(), cl->second.data() + cl->second.size(), n);
    if (ec2 != std::errc()) return fail("bad Content-Length");
    if (rest.size() < n) return fail(fmt::format("body truncated: {} of {} bytes", rest.size(), n));
    rest = rest.substr(0, n);
  }
  r.body = std::string(rest);
  return r;
}

Result<HttpResponse> http_get(std::string_view host_port, std::string_view target,
                              std::chrono::milliseconds timeout, size_t max_response) {
  const auto deadline = Clock::now() + timeout;
  auto hp = split_host_port(host_port);
  if (!hp) return fail(hp.error());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int gai = ::getaddrinfo(hp->first.c_str(), hp->second.c_str(), &hints, &res);
  if (gai != 0) return fail(fmt::format("resolve {}: {}", host_port, gai_strerror(gai)));

  int fd = -1;
  Error last = Error::msg(fmt::format("connect {}: no address", host_port));
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last = Error::sys(errno, "socket");
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      auto st = wait_fd(fd, POLLOUT, deadline, fmt::format("connect {}", host_port));
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      if (st && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) break;
      last = st ? Error::sys(soerr, fmt::format("connect {}", host_port)) : st.error();
    } else {
      last = Error::sys(errno, fmt::format("connect {}", host_port));
    }
    ::close(fd);
    fd = -1;
    if (last.err == EINTR) break;
  }
  ::freeaddrinfo(res);
  if (fd < 0) return fail(last);

  std::string host_hdr(host_port);
  std::string req = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: hvtel-cli\r\n"
                                "Accept: */*\r\nConnection: close\r\n\r\n",
                                target, host_hdr);
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto st = wait_fd(fd, POLLOUT, deadline, "send request"); !st) {
        ::close(fd);
        return fail(st.error());
      }
      continue;
    }
    Error e = Error::sys(errno, "send request");
    ::close(fd);
    return fail(e);
  }
  std::string raw;
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > max_response) {
        ::close(fd);
        return fail(fmt::format("response from {} larger than {} bytes", host_port, max_response));
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto st = wait_fd(fd, POLLIN, deadline, fmt::format("read from {}", host_port)); !st) {
        ::close(fd);
        return fail(st.error());
      }
      continue;
    }
    Error e = Error::sys(errno, fmt::format("read from {}", host_port));
    ::close(fd);
    return fail(e);
  }
  ::close(fd);
  auto r = parse_http_response(raw);
  if (!r) return fail(r.error().context(fmt::format("GET {}{}", host_port, target)));
  return r;
}

}  // namespace hvtel::http
