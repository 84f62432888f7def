#include "ovs/openflow/flow_monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/util/log.h"

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
    case MonitorProtocol::kOnfOf13: return "openflow13_onf";
    case MonitorProtocol::kOf14: return "openflow14";
    case MonitorProtocol::kOf15: return "openflow15";
  }
  return "none";
}

MonitorProtocol monitor_protocol_for(uint8_t version) {
  switch (version) {
    case of::kVersion10: return MonitorProtocol::kNxOf10;
    case of::kVersion13: return MonitorProtocol::kOnfOf13;
    case of::kVersion14: return MonitorProtocol::kOf14;
    case of::kVersion15: return MonitorProtocol::kOf15;
    default: return MonitorProtocol::kNone;
  }
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

// How an entry's actions are encoded.
struct ActionsAs {
  bool instructions = false;  // OpenFlow 1.1+ instructions, else an OpenFlow 1.0 action list
  bool fold_enqueue = true;   // see decode_instructions()
};

// Completes a full update whose header is in 'fu' with its match and its
// actions (OpenFlow 1.1+: instructions) and hands it to the sink; a broken
// entry is reported and skipped.
void emit(FlowUpdate& fu, Result<Match> match, ByteView actions, ActionsAs as,
          FlowMonitorSink& sink) {
  if (!match) {
    sink.on_decode_error("flow update match: " + match.error().message);
    return;
  }
  fu.match = std::move(*match);
  fu.has_actions = !actions.empty() || fu.event != FlowEvent::kDeleted;
  fu.actions = as.instructions ? decode_instructions(actions, as.fold_enqueue)
                               : decode_actions(actions);
  if (!fu.actions.ok()) sink.on_decode_error("flow update actions: " + fu.actions.error);
  sink.on_flow(fu);
}

// The NXM-style entry Nicira (OpenFlow 1.0) and ONF (OpenFlow 1.3) updates
// share: length, event, reason, priority, idle and hard timeouts, match_len,
// table, pad, cookie (24 bytes), then a match and actions. 'rest' decodes the
// match and actions of a full entry into 'fu' and emits it.
template <typename Rest>
Status decode_nx_layout(ByteView body, bool initial, FlowMonitorSink& sink, Rest rest) {
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
    rest(fu, u, match_len, padded);
    return {};
  });
}

}  // namespace

Status decode_flow_updates(ByteView body, bool initial, FlowMonitorSink& sink) {
  return decode_nx_layout(body, initial, sink,
                          [&](FlowUpdate& fu, ByteView u, uint16_t match_len, size_t padded) {
                            emit(fu, decode_nxm(u.subspan(24, match_len)), u.subspan(24 + padded),
                                 ActionsAs{}, sink);
                          });
}

Status decode_flow_updates_onf(ByteView body, bool initial, FlowMonitorSink& sink,
                               bool fold_enqueue) {
  return decode_nx_layout(
      body, initial, sink, [&](FlowUpdate& fu, ByteView u, uint16_t match_len, size_t) {
        size_t padded = 0;
        auto match = decode_ofp_match(u.subspan(24), padded);
        if (match && load_be16(u.data() + 26) != match_len) {
          match = fail(fmt::format("match_len {} but ofp_match length {}", match_len,
                                   load_be16(u.data() + 26)));
        }
        ByteView instructions = match ? u.subspan(24 + padded) : ByteView{};
        emit(fu, std::move(match), instructions, ActionsAs{true, fold_enqueue}, sink);
      });
}

Status decode_flow_updates14(ByteView body, bool initial, FlowMonitorSink& sink,
                             bool fold_enqueue) {
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
    emit(fu, std::move(match), instructions, ActionsAs{true, fold_enqueue}, sink);
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

Bytes encode_flow_monitor_request_onf_body(uint32_t id, uint16_t flags) {
  Bytes b;
  put_be32(b, id);
  put_be16(b, flags);
  put_be16(b, 4);           // match_len: the ofp_match below, without its padding
  put_be32(b, 0xffffffff);  // out_port: OFPP_ANY, no filter
  b.push_back(0xff);        // all tables
  b.insert(b.end(), 3, 0);
  put_be16(b, 1);  // ofp_match: OFPMT_OXM
  put_be16(b, 4);  // length: no fields
  b.insert(b.end(), 4, 0);
  return b;
}

namespace {
constexpr uint16_t kMonitorFlags =
    kNxfmfInitial | kNxfmfAdd | kNxfmfDelete | kNxfmfModify | kNxfmfActions;

std::string version_list(uint32_t bitmap) {
  std::string s;
  for (uint8_t v = 1; v < 32; ++v) {
    if (!(bitmap & (1u << v))) continue;
    if (!s.empty()) s += ", ";
    s += v == 1 ? "1.0" : fmt::format("1.{}", v - 1);  // wire version N is OpenFlow 1.(N-1)
  }
  return s.empty() ? "none" : s;
}

uint8_t highest_version(uint32_t bitmap) {
  for (uint8_t v = 31; v > 0; --v) {
    if (bitmap & (1u << v)) return v;
  }
  return 0;
}
}  // namespace

void FlowMonitorSession::start() {
  framer_.reset();
  out_.clear();
  version_ = 0;
  peer_has_of10_ = true;
  version_mismatch_ = false;
  refused_version_ = 0;
  protocol_ = MonitorProtocol::kNone;
  state_ = State::kHelloSent;
  std::vector<uint8_t> offered;
  for (uint8_t v = 1; v < 32; ++v) {
    if (versions_ & (1u << v)) offered.push_back(v);
  }
  send(of::encode_hello(highest_version(versions_), offered, 0));
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
      if (h.xid == kMonitorXid) {
        refused_version_ = version_;
        return fail(fmt::format("flow monitor request over {} refused: {}",
                                monitor_protocol_name(protocol_), what));
      }
      log::warn("ovs", "openflow error xid {:#x}: {}", h.xid, what);
      return {};
    }
    case of::kVendor:  // OFPT_VENDOR / OFPT_EXPERIMENTER
      if (protocol_ == MonitorProtocol::kNxOf10) {
        handle_vendor(m, of::kNiciraVendor, of::kNxtFlowMonitorPaused,
                      of::kNxtFlowMonitorResumed);
      } else if (protocol_ == MonitorProtocol::kOnfOf13) {
        handle_vendor(m, of::kOnfExperimenter, of::kOnftFlowMonitorPaused,
                      of::kOnftFlowMonitorResumed);
      } else {
        ++counters_.ignored;
      }
      return {};
    default:
      return handle_reply(m);
  }
}

Status FlowMonitorSession::handle_hello(const of::Message& m) {
  if (m.header.type != of::kHello) {
    return fail(fmt::format("expected HELLO, got type {}", m.header.type));
  }
  auto theirs = of::decode_hello(m);
  if (!theirs) return fail(theirs.error().context("hello"));
  const uint32_t peer = of::hello_versions(*theirs);
  auto v = of::negotiate_version(of::Hello{highest_version(versions_), versions_}, *theirs);
  if (!v) {
    // As the spec asks: tell the switch why, in the lower of the two versions.
    version_mismatch_ = true;
    uint8_t ev = std::min(m.header.version, highest_version(versions_));
    send(of::encode_error(ev, of::kErrorHelloFailed, of::kHelloFailedIncompatible, {}, 0));
    std::string why = fmt::format(
        "no common OpenFlow version: we offer {}, the bridge allows {} (hello version {}, "
        "bitmap {:#x}); add one of ours to the bridge's protocols column",
        version_list(versions_), version_list(peer), theirs->version, theirs->bitmap);
    sink_.on_version_mismatch(why);
    return fail(why);
  }
  version_ = *v;
  peer_has_of10_ = (peer & (1u << of::kVersion10)) != 0;
  protocol_ = monitor_protocol_for(version_);
  switch (protocol_) {
    case MonitorProtocol::kOf14:
    case MonitorProtocol::kOf15:
      send(of::encode_multipart_request(version_, of::kMultipartFlowMonitor,
                                        encode_flow_monitor_request14_body(kMonitorId, kMonitorFlags),
                                        kMonitorXid));
      break;
    case MonitorProtocol::kOnfOf13:
      send(of::encode_experimenter_multipart_request(
          version_, of::kOnfExperimenter, of::kOnfstFlowMonitor,
          encode_flow_monitor_request_onf_body(kMonitorId, kMonitorFlags), kMonitorXid));
      break;
    default:
      send(of::encode_nx_stats_request(
          of::kNxstFlowMonitor, encode_flow_monitor_request_body(kMonitorId, kMonitorFlags),
          kMonitorXid));
      break;
  }
  state_ = State::kAwaitInitial;
  sink_.on_protocol(protocol_);
  sink_.on_resync_start();
  return {};
}

void FlowMonitorSession::handle_vendor(const of::Message& m, uint32_t vendor, uint32_t paused,
                                       uint32_t resumed) {
  auto e = of::decode_experimenter(m, vendor);
  if (e && e->subtype == paused) {
    sink_.on_paused();
  } else if (e && e->subtype == resumed) {
    sink_.on_resumed();
  } else {
    ++counters_.ignored;
  }
}

Status FlowMonitorSession::handle_reply(const of::Message& m) {
  // Updates are stats/multipart replies: the snapshot with our xid, later
  // changes with xid 0. OpenFlow 1.4+ also carries PAUSED/RESUMED in them.
  const uint8_t reply_type =
      protocol_ == MonitorProtocol::kNxOf10 ? uint8_t{of::kStatsReply10} : of::kMultipartReply13;
  if (m.header.type == reply_type) {
    if (protocol_ == MonitorProtocol::kNxOf10) {
      auto st = of::decode_nx_stats(m);
      if (st && st->subtype == of::kNxstFlowMonitor) {
        return deliver(st->body, m.header.xid, st->more());
      }
    } else if (auto mp = of::decode_multipart(m); mp && protocol_ == MonitorProtocol::kOnfOf13) {
      auto e = of::decode_experimenter_multipart(*mp);
      if (e && e->experimenter == of::kOnfExperimenter && e->exp_type == of::kOnfstFlowMonitor) {
        return deliver(e->body, m.header.xid, e->more());
      }
    } else if (mp && mp->type == of::kMultipartFlowMonitor) {
      return deliver(mp->body, m.header.xid, mp->more());
    }
  }
  ++counters_.ignored;
  return {};
}

Status FlowMonitorSession::deliver(ByteView body, uint32_t xid, bool more) {
  bool initial = xid == kMonitorXid && state_ == State::kAwaitInitial;
  ++counters_.update_batches;
  Status dec;
  switch (protocol_) {
    case MonitorProtocol::kNxOf10: dec = decode_flow_updates(body, initial, sink_); break;
    case MonitorProtocol::kOnfOf13:
      dec = decode_flow_updates_onf(body, initial, sink_, peer_has_of10_);
      break;
    default: dec = decode_flow_updates14(body, initial, sink_, peer_has_of10_); break;
  }
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
    Outcome out = run_connection(fd);
    close(fd);
    bool was_streaming = streaming_.exchange(false);
    ++disconnects_;
    sink_.on_disconnect(out.why);
    if (stop_) break;
    if (out.version_mismatch && offered_ != kMonitorVersions) {
      // Versions left out after a refusal may be what the bridge allows now.
      offered_ = kMonitorVersions;
      continue;
    }
    if (out.version_mismatch) {
      // Only a change of the bridge's `protocols` column helps: say so once
      // per episode and retry slowly (the sink counts every occurrence).
      ++version_mismatches_;
      if (!mismatch_logged_) {
        log::error("ovs", "bridge {}: cannot monitor flows: {}; retrying every {} s", bridge_,
                   out.why, opts_.mismatch_retry.count() / 1000);
      }
      mismatch_logged_ = true;
      if (!sleep_interruptible(std::max(opts_.mismatch_retry, backoff))) break;
      continue;
    }
    mismatch_logged_ = false;
    if (out.refused_version > of::kVersion10 && (offered_ & (1u << out.refused_version))) {
      // This switch has no monitor over that version: offer the ones below.
      offered_ &= ~(1u << out.refused_version);
      log::warn("ovs", "bridge {}: {}; falling back to a lower OpenFlow version", bridge_,
                out.why);
      continue;
    }
    log::warn("ovs", "bridge {}: flow monitor disconnected: {}", bridge_, out.why);
    // A connection that reached streaming was healthy: retry quickly.
    if (was_streaming) backoff = opts_.min_backoff;
    if (!sleep_interruptible(backoff)) break;
    backoff = std::min(backoff * 2, opts_.max_backoff);
  }
}

FlowMonitorClient::Outcome FlowMonitorClient::run_connection(int fd) {
  FlowMonitorSession session(sink_, offered_);
  session.start();
  auto outcome = [&](std::string why) {
    return Outcome{std::move(why), session.version_mismatch(), session.refused_version()};
  };
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
  if (auto err = flush(); !err.empty()) return outcome(err);
  uint8_t buf[65536];
  while (!stop_) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    int r = poll(fds, 2, 1000);
    if (r < 0) {
      if (errno == EINTR) continue;
      return outcome(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents) return outcome("stopped");
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return outcome("connection closed by ovs-vswitchd");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return outcome(std::string("recv: ") + std::strerror(errno));
    }
    auto st = session.feed(ByteView(buf, static_cast<size_t>(n)));
    if (auto err = flush(); !err.empty()) return outcome(err);
    if (!st) return outcome(st.error().message);
    streaming_ = session.state() == FlowMonitorSession::State::kStreaming;
  }
  return outcome("stopped");
}

}  // namespace hvtel::ovs
