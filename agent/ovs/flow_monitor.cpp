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

const char* monitor_protocol_name(MonitorProtocol p) {
  switch (p) {
    case MonitorProtocol::kNone: return "none";
    case MonitorProtocol::kNxOf10: return "openflow10_nx";
    case MonitorProtocol::kOf14: return "openflow14";
  }
  return "none";
}

namespace {

// OpenFlow 1.4 OFPFME_* events.
enum Of14Event : uint16_t {
  kOfpfmeInitial = 0, kOfpfmeAdded = 1, kOfpfmeRemoved = 2, kOfpfmeModified = 3,
  kOfpfmeAbbrev = 4, kOfpfmePaused = 5, kOfpfmeResumed = 6,
};

// Splits a reply body into its length-prefixed entries (both protocols start
// each with length and event, and pad every entry to 8 bytes).
template <typename Each>
Status for_each_update(ByteView body, Each each) {
  size_t off = 0;
  while (off < body.size()) {
    ByteView rest = body.subspan(off);
    if (rest.size() < 4) return fail(fmt::format("{} trailing bytes in flow update", rest.size()));
    uint16_t len = load_be16(rest.data());
    if (len < 8 || len % 8 != 0 || len > rest.size()) {
      return fail(fmt::format("flow update at offset {} has bad length {}", off, len));
    }
    if (auto st = each(rest.subspan(0, len), load_be16(rest.data() + 2)); !st) return st;
    off += len;
  }
  return {};
}

// Completes a full update whose header is in 'fu' with its match and its
// actions (OpenFlow 1.4: instructions) and hands it to the sink; a broken
// entry is reported and skipped.
void emit(FlowUpdate& fu, Result<Match> match, ByteView actions, bool instructions,
          FlowMonitorSink& sink) {
  if (!match) {
    sink.on_decode_error("flow update match: " + match.error().message);
    return;
  }
  fu.match = std::move(*match);
  fu.has_actions = !actions.empty() || fu.event != FlowEvent::kDeleted;
  fu.actions = instructions ? decode_instructions(actions) : decode_actions(actions);
  if (!fu.actions.ok()) sink.on_decode_error("flow update actions: " + fu.actions.error);
  sink.on_flow(fu);
}

}  // namespace

Status decode_flow_updates(ByteView body, bool initial, FlowMonitorSink& sink) {
  return for_each_update(body, [&](ByteView u, uint16_t event) -> Status {
    if (event == 3) return {};  // NXFME_ABBREV: only for our own flow mods
    if (event > 2) {
      sink.on_decode_error(fmt::format("unknown flow update event {}", event));
      return {};
    }
    if (u.size() < 24) return fail(fmt::format("full flow update shorter than 24 ({})", u.size()));
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
    if (24 + padded > u.size()) {
      // A broken entry with a sound length: skip it, keep the rest.
      sink.on_decode_error(
          fmt::format("match_len {} overruns update of {} bytes", match_len, u.size()));
      return {};
    }
    emit(fu, decode_nxm(u.subspan(24, match_len)), u.subspan(24 + padded),
         /*instructions=*/false, sink);
    return {};
  });
}

Status decode_flow_updates14(ByteView body, bool initial, FlowMonitorSink& sink) {
  return for_each_update(body, [&](ByteView u, uint16_t event) -> Status {
    switch (event) {
      case kOfpfmeAbbrev: return {};  // only for our own flow mods
      case kOfpfmePaused: sink.on_paused(); return {};
      case kOfpfmeResumed: sink.on_resumed(); return {};
      case kOfpfmeInitial:
      case kOfpfmeAdded:
      case kOfpfmeRemoved:
      case kOfpfmeModified: break;
      default:
        sink.on_decode_error(fmt::format("unknown flow update event {}", event));
        return {};
    }
    if (u.size() < 24) return fail(fmt::format("full flow update shorter than 24 ({})", u.size()));
    FlowUpdate fu;
    // INITIAL also refreshes flows changed while PAUSED; the mirror treats it
    // as an add, which becomes a modify for a flow it already holds.
    fu.event = event == kOfpfmeRemoved    ? FlowEvent::kDeleted
               : event == kOfpfmeModified ? FlowEvent::kModified
                                          : FlowEvent::kAdded;
    fu.initial = initial;
    fu.table = u[4];
    fu.reason = u[5];
    fu.idle_timeout = load_be16(u.data() + 6);
    fu.hard_timeout = load_be16(u.data() + 8);
    fu.priority = load_be16(u.data() + 10);
    fu.cookie = load_be64(u.data() + 16);
    size_t padded = 0;
    auto match = decode_ofp_match(u.subspan(24), padded);
    ByteView instructions = match ? u.subspan(24 + padded) : ByteView{};
    emit(fu, std::move(match), instructions, /*instructions=*/true, sink);
    return {};
  });
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

Bytes encode_flow_monitor_request14_body(uint32_t id, uint16_t flags) {
  Bytes b;
  put_be32(b, id);
  put_be32(b, 0xffffffff);  // out_port: OFPP_ANY, no filter
  put_be32(b, 0xffffffff);  // out_group: OFPG_ANY
  put_be16(b, flags);
  b.push_back(0xff);  // all tables
  b.push_back(0);     // OFPFMC_ADD
  put_be16(b, 1);     // ofp_match: OFPMT_OXM
  put_be16(b, 4);     // length: no fields
  b.insert(b.end(), 4, 0);
  return b;
}

namespace {
// 1.4 where the bridge allows it, else 1.0 (with the Nicira monitor).
const of::Hello kOurHello{of::kVersion14, (1u << of::kVersion10) | (1u << of::kVersion14)};
constexpr uint16_t kMonitorFlags =
    kNxfmfInitial | kNxfmfAdd | kNxfmfDelete | kNxfmfModify | kNxfmfActions;
}  // namespace

void FlowMonitorSession::start() {
  framer_.reset();
  out_.clear();
  version_ = 0;
  protocol_ = MonitorProtocol::kNone;
  state_ = State::kHelloSent;
  send(of::encode_hello(kOurHello.version, {of::kVersion10, of::kVersion14}, 0));
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
  if (state_ == State::kHelloSent) return handle_hello(m);
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
    default:
      return protocol_ == MonitorProtocol::kOf14 ? handle_of14(m) : handle_nx(m);
  }
}

Status FlowMonitorSession::handle_hello(const of::Message& m) {
  if (m.header.type != of::kHello) {
    return fail(fmt::format("expected HELLO, got type {}", m.header.type));
  }
  auto theirs = of::decode_hello(m);
  if (!theirs) return fail(theirs.error().context("hello"));
  auto v = of::negotiate_version(kOurHello, *theirs);
  if (!v) {
    return fail(fmt::format(
        "no common OpenFlow version: we speak 1.0 and 1.4, peer hello version {} bitmap {:#x}",
        theirs->version, theirs->bitmap));
  }
  version_ = *v;
  if (version_ == of::kVersion14) {
    protocol_ = MonitorProtocol::kOf14;
    Bytes body = encode_flow_monitor_request14_body(kMonitorId, kMonitorFlags);
    send(of::encode_multipart_request(version_, of::kMultipartFlowMonitor, body, kMonitorXid));
  } else {
    protocol_ = MonitorProtocol::kNxOf10;
    Bytes body = encode_flow_monitor_request_body(kMonitorId, kMonitorFlags);
    send(of::encode_nx_stats_request(of::kNxstFlowMonitor, body, kMonitorXid));
  }
  state_ = State::kAwaitInitial;
  sink_.on_protocol(protocol_);
  sink_.on_resync_start();
  return {};
}

Status FlowMonitorSession::handle_nx(const of::Message& m) {
  if (m.header.type == of::kVendor) {
    auto nxt = of::decode_nxt(m);
    if (nxt && nxt->subtype == of::kNxtFlowMonitorPaused) {
      sink_.on_paused();
    } else if (nxt && nxt->subtype == of::kNxtFlowMonitorResumed) {
      sink_.on_resumed();
    } else {
      ++counters_.ignored;
    }
    return {};
  }
  if (m.header.type == of::kStatsReply10) {
    auto st = of::decode_nx_stats(m);
    if (st && st->subtype == of::kNxstFlowMonitor) {
      return deliver(st->body, m.header.xid, st->more(), decode_flow_updates);
    }
  }
  ++counters_.ignored;
  return {};
}

Status FlowMonitorSession::handle_of14(const of::Message& m) {
  // Updates, including PAUSED/RESUMED, are multipart replies: the snapshot
  // with our xid, later changes with xid 0.
  if (m.header.type == of::kMultipartReply13) {
    auto mp = of::decode_multipart(m);
    if (mp && mp->type == of::kMultipartFlowMonitor) {
      return deliver(mp->body, m.header.xid, mp->more(), decode_flow_updates14);
    }
  }
  ++counters_.ignored;
  return {};
}

Status FlowMonitorSession::deliver(ByteView body, uint32_t xid, bool more, BodyDecoder decode) {
  bool initial = xid == kMonitorXid && state_ == State::kAwaitInitial;
  ++counters_.update_batches;
  auto dec = decode(body, initial, sink_);
  if (!dec) {
    // Framing inside the body is broken; the stream position is still
    // sound (OpenFlow framing), so count it and resync rather than guess.
    ++counters_.decode_errors;
    sink_.on_decode_error(dec.error().message);
    return fail(dec.error().context("flow monitor reply"));
  }
  if (initial && !more) {
    state_ = State::kStreaming;
    sink_.on_resync_complete();
  }
  return {};
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
