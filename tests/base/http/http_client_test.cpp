#include "base/http/http_client.h"

#include <gtest/gtest.h>

namespace hvtel::http {
namespace {

using namespace std::chrono_literals;

TEST(HttpClient, SplitHostPort) {
  auto hp = split_host_port("127.0.0.1:9478");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->first, "127.0.0.1");
  EXPECT_EQ(hp->second, "9478");
  hp = split_host_port("[::1]:80");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->first, "::1");
  EXPECT_EQ(hp->second, "80");
  EXPECT_FALSE(split_host_port("localhost"));
  EXPECT_FALSE(split_host_port(":80"));
  EXPECT_FALSE(split_host_port("h:0"));
  EXPECT_FALSE(split_host_port("h:65536"));
  EXPECT_FALSE(split_host_port("h:8x"));
  EXPECT_FALSE(split_host_port("[::1]80"));
}

TEST(HttpClient, ParsesResponses) {
  auto r = parse_http_response(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello, extra");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  EXPECT_EQ(r->body, "hello");
  r = parse_http_response(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, "hello, world");
  r = parse_http_response("HTTP/1.0 400 Bad Request\r\n\r\nwhy\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, "why\n");
  EXPECT_FALSE(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"));
  EXPECT_FALSE(parse_http_response("garbage\r\n\r\n"));
  EXPECT_FALSE(parse_http_response("HTTP/1.1 200 OK\r\n"));
  EXPECT_FALSE(parse_http_response("HTTP/1.1 2x0 OK\r\n\r\n"));
  EXPECT_FALSE(parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n"));
}

TEST(HttpClient, UnreachableIsAClearError) {
  // Port 1 on loopback: nothing listens there on a test machine.
  auto r = http_get("127.0.0.1:1", "/metrics", 2s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "connect 127.0.0.1:1: Connection refused");
}

}  // namespace
}  // namespace hvtel::http
