// A tiny blocking HTTP/1.0 GET client for the CLI (hvtel trace, hvtel top),
// which talk to a local agent: no TLS, no redirects, no keep-alive.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "base/util/result.h"

namespace hvtel::http {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
};

// "127.0.0.1:9477", "localhost:9477", "[::1]:9477" -> host, port.
Result<std::pair<std::string, std::string>> split_host_port(std::string_view host_port);

// Parses a complete response (status line, headers, body; chunked
// transfer-encoding decoded; a body shorter than Content-Length is an error).
Result<HttpResponse> parse_http_response(std::string_view raw);

// GET http://host_port/target; `timeout` bounds the whole exchange. Errors say
// what failed ("connect 127.0.0.1:9478: Connection refused"). errno EINTR when
// a signal interrupted it.
Result<HttpResponse> http_get(std::string_view host_port, std::string_view target,
                              std::chrono::milliseconds timeout,
                              size_t max_response = size_t{64} << 20);

}  // namespace hvtel::http
