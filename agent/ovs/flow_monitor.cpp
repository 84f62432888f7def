#include "ovs/flow_monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/log.h"

namespace hvtel::ovs {

const char* flow_event_name(FlowEvent e) {
  switch (e) {
    case FlowEvent::kAdded: return "added";
    case FlowEvent::kDeleted: return "deleted";
    case FlowEvent::kModified: return "modified";
  }
  return "unknown";
}

const char* removed_reason_name(uint16_t reason) {
  switch (reason) {
    case 0: return "idle_timeout";
    case 1: return "hard_timeout";
    case 2: return "delete";
    case 3: return "group_delete";
    case 4: return "meter_delete";
    case 5: return "eviction";
    default: return "unknown";
  }
}

Status decode_flow_updates(ByteView body, bool initial, FlowMonitorSink& sink) {
  size_t off = 0;
  while (off < body.size()) {
    ByteView rest = body.subspan(off);
    if (rest.size() < 4) return fail(fmt::format("{} trailing bytes in flow update", rest.size()));
    uint16_t len = load_be16(rest.data());
    uint16_t event = load_be16(rest.data() + 2);
    if (len < 8 || len % 8 != 0 || len > rest.size()) {
      return fail(fmt::format("flow update at offset {} has bad length {}", off, len));
    }
    ByteView u = rest.subspan(0, len);
    off += len;
    if (event == 3) continue;  // NXFME_ABBREV: only for our own flow mods
    if (event > 2) {
      sink.on_decode_error(fmt::format("unknown flow update event {}", event));
      continue;
    }
    if (len < 24) return fail(fmt::format("full flow update shorter than 24 ({})", len));
    FlowUpdate fu;
    fu.event = static_cast<FlowEvent>(event);
    fu.initial = initial;
    fu.reason = load_be16(u.data() + 4);
    fu.priority = load_be16(u.data() + 6);
    fu.idle_timeout = load_be16(u.data() + 8);
    fu.hard_timeout = load_be16(u.data() + 10);
    uint16_t match_len = load_be16(u.data() + 12);
    fu.table = u[14];
    fu.cookie = load_be64(u.data() + 16);
    size_t padded = (static_cast<size_t>(match_len) + 7) / 8 * 8;
    if (24 + padded > len) {
      // A broken entry with a sound length: skip it, keep the rest.
      sink.on_decode_error(fmt::format("match_len {} overruns update of {} bytes", match_len, len));
      continue;
    }
    auto match = decode_nxm(u.subspan(24, match_len));
    if (!match) {
      sink.on_decode_error("flow update match: " + match.error().message);
      continue;
    }
    fu.match = std::move(*match);
    ByteView acts = u.subspan(24 + padded);
    fu.has_actions = !acts.empty() || fu.event != FlowEvent::kDeleted;
    fu.actions = decode_actions(acts);
    if (!fu.actions.ok()) sink.on_decode_error("flow update actions: " + fu.actions.error);
    sink.on_flow(fu);
  }
  return {};
}

Bytes encode_flow_monitor_request_body(uint32_t id, uint16_t flags) {
  Bytes b;
  put_be32(b, id);
  put_be16(b, flags);
  put_be16(b, 0xffff);  // out_port: OFPP_NONE, no filter
  put_be16(b, 0);       // match_len: empty match
  b.push_back(0xff);    // all tables
  b.insert(b.end(), 5, 0);
  return b;
}

void FlowMonitorSession::start() {
  framer_.reset();
  out_.clear();
  version_ = 0;
  state_ = State::kHelloSent;
  send(of::encode_hello(of::kVersion10, {of::kVersion10}, 0));
}

Bytes FlowMonitorSession::take_output() {
  Bytes b;
  b.swap(out_);
  return b;
}

Status FlowMonitorSession::feed(ByteView data) {
  if (state_ == State::kFailed) return fail("session already failed");
  framer_.feed(data);
  while (true) {
    auto next = framer_.next();
    if (!next) {
      state_ = State::kFailed;
      return fail(next.error());
    }
    if (!*next) return {};
    ++counters_.messages;
    auto st = handle(**next);
    if (!st) {
      state_ = State::kFailed;
      return st;
    }
  }
}

Status FlowMonitorSession::handle(const of::Message& m) {
  const auto& h = m.header;
  if (state_ == State::kHelloSent) {
    if (h.type != of::kHello) {
      return fail(fmt::format("expected HELLO, got type {}", h.type));
    }
    auto theirs = of::decode_hello(m);
    if (!theirs) return fail(theirs.error().context("hello"));
    of::Hello ours{of::kVersion10, 1u << of::kVersion10};
    auto v = of::negotiate_version(ours, *theirs);
    if (!v || *v != of::kVersion10) {
      return fail(fmt::format("no common OpenFlow version (peer hello version {} bitmap {:#x})",
                              theirs->version, theirs->bitmap));
    }
    version_ = *v;
    uint16_t flags = kNxfmfInitial | kNxfmfAdd | kNxfmfDelete | kNxfmfModify | kNxfmfActions;
    Bytes body = encode_flow_monitor_request_body(kMonitorId, flags);
    send(of::encode_nx_stats_request(of::kNxstFlowMonitor, body, kMonitorXid));
    state_ = State::kAwaitInitial;
    sink_.on_resync_start();
    return {};
  }
  if (h.version != version_) {
    return fail(fmt::format("message version {} after negotiating {}", h.version, version_));
  }
  switch (h.type) {
    case of::kEchoRequest:
      send(of::encode_echo_reply(m));
      ++counters_.echo_replies;
      return {};
    case of::kEchoReply:
    case of::kHello:
      return {};
    case of::kError: {
      auto e = of::decode_error(m);
      std::string what = e ? e->describe() : e.error().message;
      if (h.xid == kMonitorXid) return fail("flow monitor request refused: " + what);
      log::warn("ovs", "openflow error xid {:#x}: {}", h.xid, what);
      return {};
    }
    case of::kVendor: {
      auto nxt = of::decode_nxt(m);
      if (!nxt) {
        ++counters_.ignored;
        return {};
      }
      if (nxt->subtype == of::kNxtFlowMonitorPaused) {
        sink_.on_paused();
      } else if (nxt->subtype == of::kNxtFlowMonitorResumed) {
        sink_.on_resumed();
      } else {
        ++counters_.ignored;
      }
      return {};
    }
    case of::kStatsReply10: {
      auto st = of::decode_nx_stats(m);
      if (!st || st->subtype != of::kNxstFlowMonitor) {
        ++counters_.ignored;
        return {};
      }
      bool initial = h.xid == kMonitorXid && state_ == State::kAwaitInitial;
      ++counters_.update_batches;
      auto dec = decode_flow_updates(st->body, initial, sink_);
      if (!dec) {
        // Framing inside the body is broken; the stream position is still
        // sound (OpenFlow framing), so count it and resync rather than guess.
        ++counters_.decode_errors;
        sink_.on_decode_error(dec.error().message);
        return fail(dec.error().context("flow monitor reply"));
      }
      if (initial && !st->more()) {
        state_ = State::kStreaming;
        sink_.on_resync_complete();
      }
      return {};
    }
    default:
      ++counters_.ignored;
      return {};
  }
}

FlowMonitorClient::FlowMonitorClient(std::string bridge, std::string socket_path,
                                     FlowMonitorSink& sink, Options opts)
    : bridge_(std::move(bridge)), socket_path_(std::move(socket_path)), sink_(sink), opts_(opts) {}

FlowMonitorClient::~FlowMonitorClient() { stop(); }

Status FlowMonitorClient::start() {
  if (thread_.joinable()) return {};
  if (pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) return fail_errno(errno, "pipe2");
  stop_ = false;
  thread_ = std::thread([this] { run(); });
  return {};
}

void FlowMonitorClient::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  char c = 1;
  [[maybe_unused]] ssize_t n = write(wake_fds_[1], &c, 1);
  thread_.join();
  close(wake_fds_[0]);
  close(wake_fds_[1]);
  wake_fds_[0] = wake_fds_[1] = -1;
}

bool FlowMonitorClient::sleep_interruptible(std::chrono::milliseconds d) {
  pollfd p{wake_fds_[0], POLLIN, 0};
  poll(&p, 1, static_cast<int>(d.count()));
  return !stop_;
}

void FlowMonitorClient::run() {
  auto backoff = opts_.min_backoff;
  while (!stop_) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      log::error("ovs", "bridge {}: socket: {}", bridge_, std::strerror(errno));
      if (!sleep_interruptible(backoff)) break;
      continue;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof addr.sun_path) {
      log::error("ovs", "bridge {}: socket path too long: {}", bridge_, socket_path_);
      close(fd);
      break;
    }
    std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      log::debug("ovs", "bridge {}: connect {}: {}", bridge_, socket_path_, std::strerror(errno));
      close(fd);
      if (!sleep_interruptible(backoff)) break;
      backoff = std::min(backoff * 2, opts_.max_backoff);
      continue;
    }
    ++connects_;
    log::info("ovs", "bridge {}: connected to {}", bridge_, socket_path_);
    std::string why = run_connection(fd);
    close(fd);
    bool was_streaming = streaming_.exchange(false);
    ++disconnects_;
    sink_.on_disconnect(why);
    if (stop_) break;
    log::warn("ovs", "bridge {}: flow monitor disconnected: {}", bridge_, why);
    // A connection that reached streaming was healthy: retry quickly.
    if (was_streaming) backoff = opts_.min_backoff;
    if (!sleep_interruptible(backoff)) break;
    backoff = std::min(backoff * 2, opts_.max_backoff);
  }
}

std::string FlowMonitorClient::run_connection(int fd) {
  FlowMonitorSession session(sink_);
  session.start();
  auto flush = [&]() -> std::string {
    Bytes out = session.take_output();
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::string("send: ") + std::strerror(errno);
      }
      off += static_cast<size_t>(n);
    }
    return {};
  };
  if (auto err = flush(); !err.empty()) return err;
  uint8_t buf[65536];
  while (!stop_) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    int r = poll(fds, 2, 1000);
    if (r < 0) {
      if (errno == EINTR) continue;
      return std::string("poll: ") + std::strerror(errno);
    }
    if (fds[1].revents) return "stopped";
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return "connection closed by ovs-vswitchd";
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return std::string("recv: ") + std::strerror(errno);
    }
    auto st = session.feed(ByteView(buf, static_cast<size_t>(n)));
    if (auto err = flush(); !err.empty()) return err;
    if (!st) return st.error().message;
    streaming_ = session.state() == FlowMonitorSession::State::kStreaming;
  }
  return "stopped";
}

}  // namespace hvtel::ovs
