// OvsdbClient against a scripted fake ovsdb-server on a unix socket in a
// private temp dir: connect, resync, update, reconnect. No root needed.
#include "ovs/ovsdb/client.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "ovs/ovsdb/json_framer.h"
#include "ovsdb_fixtures.h"

namespace hvtel::ovsdb {
namespace {

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit =
                                                       std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

class FakeServer {
 public:
  FakeServer() {
    char tmpl[] = "/tmp/hvtel-ovsdb-fake.XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/db.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path_.c_str());
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
  }
  ~FakeServer() {
    drop();
    close(listen_fd_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }

  bool accept_client() {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return false;
    conn_ = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    framer_.reset();
    return conn_ >= 0;
  }
  // Next JSON message from the client, or null on timeout.
  nlohmann::json read_message() {
    char buf[4096];
    while (true) {
      if (auto m = framer_.pop()) return nlohmann::json::parse(*m);
      pollfd p{conn_, POLLIN, 0};
      if (poll(&p, 1, 5000) != 1) return nullptr;
      ssize_t n = read(conn_, buf, sizeof(buf));
      if (n <= 0) return nullptr;
      EXPECT_TRUE(framer_.feed(std::string_view(buf, static_cast<size_t>(n))));
    }
  }
  void write_all(const std::string& s) {
    ASSERT_EQ(write(conn_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  void drop() {
    if (conn_ >= 0) close(conn_);
    conn_ = -1;
  }

 private:
  std::string dir_, path_;
  int listen_fd_ = -1;
  int conn_ = -1;
  JsonFramer framer_;
};

TEST(OvsdbClient, SyncsUpdatesAndResyncsAfterReconnect) {
  FakeServer server;
  ClientOptions opts;
  opts.socket_path = server.path();
  opts.backoff_min = std::chrono::milliseconds(10);
  opts.backoff_max = std::chrono::milliseconds(50);
  OvsdbClient client(opts);
  std::atomic<int> bridge_events{0};
  client.set_bridge_callback([&](const std::vector<std::string>&) { ++bridge_events; });
  ASSERT_TRUE(client.start());

  ASSERT_TRUE(server.accept_client());
  auto req = server.read_message();
  ASSERT_EQ(req["method"], "monitor_cond");
  server.write_all(testing::initial_reply(req["id"].get<int>()));
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  EXPECT_EQ(client.snapshot()->interface_by_ofport("br-int", 1)->iface_id, "port-1");

  // The server pings us: we must answer.
  server.write_all(R"({"method":"echo","params":[],"id":"echo"})");
  EXPECT_EQ(server.read_message(), nlohmann::json::parse(R"({"id":"echo","result":[],"error":null})"));

  server.write_all(testing::update2(R"({"Interface":{"i1":{"modify":{"ofport":9}}}})"));
  ASSERT_TRUE(eventually([&] { return client.snapshot()->interface_by_ofport("br-int", 9) != nullptr; }));
  EXPECT_EQ(client.snapshot()->interface_by_ofport("br-int", 1), nullptr);

  // Server goes away: the client reports down, reconnects and resyncs from scratch.
  server.drop();
  ASSERT_TRUE(eventually([&] { return !client.up(); }));
  ASSERT_TRUE(server.accept_client());
  req = server.read_message();
  ASSERT_EQ(req["method"], "monitor_cond");
  server.write_all(testing::initial_reply(req["id"].get<int>()));
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  EXPECT_EQ(client.snapshot()->interface_by_ofport("br-int", 1)->name, "tap1");
  EXPECT_EQ(client.store()->stats().connects, 2u);
  EXPECT_EQ(client.store()->stats().disconnects, 1u);
  EXPECT_EQ(bridge_events.load(), 1);  // same bridge set after the resync

  // Garbage from the server: counted, connection dropped, and resynced again.
  server.write_all("nonsense");
  ASSERT_TRUE(server.accept_client());
  EXPECT_EQ(client.store()->stats().parse_errors, 1u);
  req = server.read_message();
  server.write_all(testing::initial_reply(req["id"].get<int>()));
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  client.stop();
  EXPECT_FALSE(client.up());
}

TEST(OvsdbClient, RetriesUntilTheSocketAppears) {
  char tmpl[] = "/tmp/hvtel-ovsdb-fake.XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ClientOptions opts;
  opts.socket_path = dir + "/missing.sock";
  opts.backoff_min = std::chrono::milliseconds(5);
  opts.backoff_max = std::chrono::milliseconds(20);
  OvsdbClient client(opts);
  ASSERT_TRUE(client.start());
  ASSERT_TRUE(eventually([&] { return client.store()->stats().connect_failures >= 3; }));
  EXPECT_FALSE(client.up());
  client.stop();  // returns promptly while backing off
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hvtel::ovsdb
