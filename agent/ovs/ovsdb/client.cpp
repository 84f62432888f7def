#include "ovs/ovsdb/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/util/log.h"

namespace hvtel::ovsdb {

// ---- ModelStore ----

ModelStore::ModelStore() : model_(std::make_shared<const PortModel>()) {}

std::shared_ptr<const PortModel> ModelStore::snapshot() const {
  std::lock_guard lock(mu_);
  return model_;
}

uint64_t ModelStore::generation() const {
  std::lock_guard lock(mu_);
  return model_->generation;
}

ClientStats ModelStore::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void ModelStore::publish(std::shared_ptr<const PortModel> model) {
  std::lock_guard lock(mu_);
  model_ = std::move(model);
}

void ModelStore::update_stats(const ClientStats& s) {
  std::lock_guard lock(mu_);
  stats_ = s;
}

// ---- Replica ----

Replica::Replica(std::shared_ptr<ModelStore> store, Session::Options opts)
    : store_(std::move(store)), session_(opts), last_(store_->snapshot()) {}

void Replica::refresh_stats() {
  ClientStats s = counts_;
  const SessionStats& ss = session_.stats();
  s.parse_errors = ss.parse_errors;
  s.protocol_errors = ss.protocol_errors;
  s.updates = ss.updates;
  store_->update_stats(s);
}

void Replica::on_connect(TimePoint now) {
  ++counts_.connects;
  session_.on_connect(now);
  session_.take_changed();  // nothing to publish until the monitor reply
  refresh_stats();
}

void Replica::on_connect_failure() {
  ++counts_.connect_failures;
  refresh_stats();
}

Status Replica::on_bytes(std::string_view bytes, TimePoint now) {
  auto st = session_.on_bytes(bytes, now);
  // Publish what was applied before an error too; the reconnect resyncs anyway.
  publish_if_changed(now);
  refresh_stats();
  return st;
}

Status Replica::on_tick(TimePoint now) { return session_.on_tick(now); }

void Replica::on_disconnect(TimePoint now) {
  ++counts_.disconnects;
  store_->set_up(false);
  if (last_->synced) {
    // Keep the last known ports for lookups, but tell rules the view is stale.
    PortModel m = *last_;
    m.synced = false;
    m.generation = ++generation_;
    publish(std::move(m));
  }
  refresh_stats();
}

void Replica::publish_if_changed(TimePoint now) {
  if (!session_.synced() || !session_.take_changed()) return;
  publish(build_port_model(session_.db(), last_.get(), now, ++generation_, true));
  store_->set_up(true);
}

void Replica::publish(PortModel m) {
  auto snap = std::make_shared<const PortModel>(std::move(m));
  last_ = snap;
  store_->publish(snap);
  if (!snap->synced) return;
  std::vector<std::string> names = snap->bridge_names();
  if (!bridges_reported_ || names != last_bridges_) {
    bridges_reported_ = true;
    last_bridges_ = names;
    if (bridge_cb_) bridge_cb_(names);
  }
}

// ---- OvsdbClient ----

OvsdbClient::OvsdbClient(ClientOptions opts)
    : opts_(std::move(opts)),
      store_(std::make_shared<ModelStore>()),
      replica_(store_, opts_.session) {}

OvsdbClient::~OvsdbClient() { stop(); }

void OvsdbClient::set_bridge_callback(BridgeSetCallback cb) {
  replica_.set_bridge_callback(std::move(cb));
}

Status OvsdbClient::start() {
  if (thread_.joinable()) return fail("ovsdb client already started");
  if (opts_.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return fail("ovsdb socket path too long: " + opts_.socket_path);
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return fail_errno(errno, "eventfd");
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  return {};
}

void OvsdbClient::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    log::warn("ovsdb", "wake driver thread: {}", std::strerror(errno));
  }
  thread_.join();
  close(wake_fd_);
  wake_fd_ = -1;
}

bool OvsdbClient::wait_or_stop(std::chrono::milliseconds d) {
  pollfd p{wake_fd_, POLLIN, 0};
  poll(&p, 1, static_cast<int>(d.count()));
  return stopping_;
}

namespace {

Result<int> connect_unix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0) {
    int e = errno;
    close(fd);
    return fail_errno(e, "connect " + path);
  }
  if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
    int e = errno;
    close(fd);
    return fail_errno(e, "fcntl O_NONBLOCK");
  }
  return fd;
}

}  // namespace

void OvsdbClient::run() {
  auto backoff = opts_.backoff_min;
  std::string last_error;
  while (!stopping_) {
    auto fd = connect_unix(opts_.socket_path);
    if (!fd) {
      replica_.on_connect_failure();
      // Log each distinct failure once, not every retry.
      if (fd.error().message != last_error) {
        log::warn("ovsdb", "{} (retrying with backoff)", fd.error().message);
        last_error = fd.error().message;
      }
    } else {
      log::info("ovsdb", "connected to {}", opts_.socket_path);
      last_error.clear();
      auto started = Clock::now();
      auto st = serve(*fd);
      close(*fd);
      replica_.on_disconnect(Clock::now());
      if (stopping_) break;
      log::warn("ovsdb", "connection to {} lost: {}", opts_.socket_path,
                st ? std::string("closed") : st.error().message);
      // A connection that lived a while earns a fast retry (server restart).
      if (Clock::now() - started > opts_.backoff_max) backoff = opts_.backoff_min;
    }
    if (wait_or_stop(backoff)) break;
    backoff = std::min(backoff * 2, opts_.backoff_max);
  }
}

Status OvsdbClient::serve(int fd) {
  replica_.on_connect(Clock::now());
  std::string out = replica_.take_output();
  char buf[64 * 1024];
  while (!stopping_) {
    pollfd p[2] = {{fd, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0},
                   {wake_fd_, POLLIN, 0}};
    int n = poll(p, 2, 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(errno, "poll");
    }
    if (p[1].revents != 0) return {};  // stop()
    if ((p[0].revents & POLLIN) != 0 || (p[0].revents & (POLLHUP | POLLERR)) != 0) {
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r == 0) return fail("ovsdb-server closed the connection");
      if (r < 0 && errno != EAGAIN && errno != EINTR) return fail_errno(errno, "read");
      if (r > 0) {
        auto st = replica_.on_bytes(std::string_view(buf, static_cast<size_t>(r)), Clock::now());
        if (!st) return st;
      }
    }
    if (auto st = replica_.on_tick(Clock::now()); !st) return st;
    out += replica_.take_output();
    if (!out.empty()) {
      ssize_t w = send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) return fail_errno(errno, "write");
      if (w > 0) out.erase(0, static_cast<size_t>(w));
    }
  }
  return {};
}

}  // namespace hvtel::ovsdb
