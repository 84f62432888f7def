// OpenFlow flow-monitor client.
//
// Two protocols, chosen per connection by HELLO version negotiation: the
// standard OFPMP_FLOW_MONITOR when both sides speak OpenFlow 1.4, else
// Nicira NXST_FLOW_MONITOR over OpenFlow 1.0, which every OVS we meet has (and
// the only one left when a bridge's `protocols` column excludes 1.4). Both
// yield the same FlowUpdate model and the same canonical flow text.
//
// FlowMonitorSession is a pure state machine: feed it received bytes, collect
// the bytes it wants sent, and it reports decoded flow updates to a
// FlowMonitorSink. FlowMonitorClient is the thin socket driver around it: one
// thread per bridge that connects to <rundir>/<bridge>.mgmt, reconnects with
// exponential backoff and starts every connection with a full INITIAL resync.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "ovs/actions.h"
#include "ovs/nxm.h"
#include "ovs/openflow_wire.h"
#include "util/result.h"

namespace hvtel::ovs {

enum class FlowEvent : uint8_t { kAdded = 0, kDeleted = 1, kModified = 2 };
const char* flow_event_name(FlowEvent e);

// OFPRR_* reasons carried by DELETED updates.
const char* removed_reason_name(uint16_t reason);

// The monitor protocol a connection negotiated.
enum class MonitorProtocol : uint8_t { kNone = 0, kNxOf10 = 1, kOf14 = 2 };
// Stable names, used as a metric label: "none", "openflow10_nx", "openflow14".
const char* monitor_protocol_name(MonitorProtocol p);

struct FlowUpdate {
  FlowEvent event = FlowEvent::kAdded;
  bool initial = false;         // part of the INITIAL snapshot reply
  uint16_t reason = 0;          // OFPRR_* for kDeleted
  uint16_t priority = 0;
  uint16_t idle_timeout = 0;
  uint16_t hard_timeout = 0;
  uint8_t table = 0;
  uint64_t cookie = 0;
  Match match;
  bool has_actions = false;     // DELETED may or may not carry actions
  ActionList actions;
};

// Receives the decoded stream. Called on the monitor thread.
class FlowMonitorSink {
 public:
  virtual ~FlowMonitorSink() = default;
  // The connection negotiated 'p'; called right before on_resync_start().
  virtual void on_protocol(MonitorProtocol p) {}
  // A new connection starts its INITIAL snapshot; the view is incomplete.
  virtual void on_resync_start() = 0;
  virtual void on_flow(const FlowUpdate& u) = 0;
  // The INITIAL snapshot (all multipart parts) has been delivered.
  virtual void on_resync_complete() = 0;
  virtual void on_paused() = 0;
  virtual void on_resumed() = 0;
  virtual void on_disconnect(const std::string& why) = 0;
  // A body we could not decode (counted; the flow is skipped).
  virtual void on_decode_error(const std::string& why) {}
};

// Decodes one NXST_FLOW_MONITOR reply body (a sequence of nx_flow_update_*).
// ABBREV entries are skipped (we never issue flow mods on this connection).
// An Error means the body's framing is broken; a broken entry with a sound
// length is reported to on_decode_error() and skipped.
Status decode_flow_updates(ByteView body, bool initial, FlowMonitorSink& sink);

// Decodes one OFPMP_FLOW_MONITOR reply body (OpenFlow 1.4 ofp_flow_update_*):
// OXM matches, instructions, a one-byte removal reason. PAUSED and RESUMED
// arrive here as entries (OpenFlow 1.0 has separate NXT messages for them)
// and go to on_paused()/on_resumed(). Errors as for decode_flow_updates().
Status decode_flow_updates14(ByteView body, bool initial, FlowMonitorSink& sink);

// Encodes the monitor request body: id, flags, out_port=NONE, table 0xff, empty match.
Bytes encode_flow_monitor_request_body(uint32_t id, uint16_t flags);
// The OpenFlow 1.4 ofp14_flow_monitor_request (command ADD, out_port ANY,
// out_group ANY, all tables) with an empty OXM match.
Bytes encode_flow_monitor_request14_body(uint32_t id, uint16_t flags);

// Request flags; NXFMF_* and OpenFlow 1.4 OFPFMF_* share these five values.
constexpr uint16_t kNxfmfInitial = 1 << 0, kNxfmfAdd = 1 << 1, kNxfmfDelete = 1 << 2,
                   kNxfmfModify = 1 << 3, kNxfmfActions = 1 << 4, kNxfmfOwn = 1 << 5;

class FlowMonitorSession {
 public:
  enum class State { kIdle, kHelloSent, kAwaitInitial, kStreaming, kFailed };
  static constexpr uint32_t kMonitorXid = 0x68760001;  // "hv" + 1
  static constexpr uint32_t kMonitorId = 1;

  explicit FlowMonitorSession(FlowMonitorSink& sink) : sink_(sink) {}

  // Resets to a fresh connection and queues our HELLO.
  void start();
  // Processes received bytes. An Error means the connection must be closed
  // (corrupt framing, version mismatch, monitor refused).
  Status feed(ByteView data);
  // Bytes queued for sending since the last call.
  Bytes take_output();
  State state() const { return state_; }
  uint8_t version() const { return version_; }
  MonitorProtocol protocol() const { return protocol_; }

  struct Counters {
    uint64_t messages = 0;
    uint64_t echo_replies = 0;
    uint64_t update_batches = 0;
    uint64_t decode_errors = 0;
    uint64_t ignored = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  using BodyDecoder = Status (*)(ByteView, bool, FlowMonitorSink&);
  Status handle(const of::Message& m);
  Status handle_hello(const of::Message& m);
  Status handle_nx(const of::Message& m);
  Status handle_of14(const of::Message& m);
  // One reply body: decode it, and finish the INITIAL snapshot on its last part.
  Status deliver(ByteView body, uint32_t xid, bool more, BodyDecoder decode);
  void send(const Bytes& b) { out_.insert(out_.end(), b.begin(), b.end()); }

  FlowMonitorSink& sink_;
  State state_ = State::kIdle;
  uint8_t version_ = 0;
  MonitorProtocol protocol_ = MonitorProtocol::kNone;
  of::Framer framer_;
  Bytes out_;
  Counters counters_;
};

// Socket driver: one thread, one unix-socket connection at a time.
class FlowMonitorClient {
 public:
  struct Options {
    std::chrono::milliseconds min_backoff{100};
    std::chrono::milliseconds max_backoff{5000};
  };
  FlowMonitorClient(std::string bridge, std::string socket_path, FlowMonitorSink& sink,
                    Options opts);
  FlowMonitorClient(std::string bridge, std::string socket_path, FlowMonitorSink& sink)
      : FlowMonitorClient(std::move(bridge), std::move(socket_path), sink, Options{}) {}
  ~FlowMonitorClient();
  FlowMonitorClient(const FlowMonitorClient&) = delete;
  FlowMonitorClient& operator=(const FlowMonitorClient&) = delete;

  Status start();
  void stop();

  const std::string& bridge() const { return bridge_; }
  bool streaming() const { return streaming_.load(); }
  uint64_t connects() const { return connects_.load(); }
  uint64_t disconnects() const { return disconnects_.load(); }

 private:
  void run();
  // Runs one connection until it fails or stop() is called.
  std::string run_connection(int fd);
  bool sleep_interruptible(std::chrono::milliseconds d);

  std::string bridge_;
  std::string socket_path_;
  FlowMonitorSink& sink_;
  Options opts_;
  std::thread thread_;
  int wake_fds_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> streaming_{false};
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> disconnects_{0};
};

}  // namespace hvtel::ovs
