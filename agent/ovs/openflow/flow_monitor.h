// OpenFlow flow-monitor client.
//
// Four protocols, chosen per connection by HELLO version negotiation (we offer
// OpenFlow 1.0, 1.3, 1.4 and 1.5; the highest version both sides allow wins):
//   1.5, 1.4  the standard OFPMP_FLOW_MONITOR (OVS 3.1 sends the same
//             ofp14_flow_update_* entries for both);
//   1.3       OVS's ONF extension ONFST_FLOW_MONITOR (experimenter multipart,
//             NXM-style entry header with an OXM match and instructions;
//             PAUSED/RESUMED as ONFT_* experimenter messages);
//   1.0       Nicira NXST_FLOW_MONITOR, which every OVS we meet has.
// All yield the same FlowUpdate model and the same canonical flow text. A
// version whose monitor request the switch refuses is left out of the next
// connection's HELLO, so an OVS without a given monitor falls back to the next
// lower common version.
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

#include "ovs/openflow/actions.h"
#include "ovs/openflow/nxm.h"
#include "ovs/openflow/openflow_wire.h"
#include "base/util/result.h"

namespace hvtel::ovs {

enum class FlowEvent : uint8_t { kAdded = 0, kDeleted = 1, kModified = 2 };
const char* flow_event_name(FlowEvent e);

// OFPRR_* reasons carried by DELETED updates.
const char* removed_reason_name(uint16_t reason);

// The monitor protocol a connection negotiated.
enum class MonitorProtocol : uint8_t { kNone = 0, kNxOf10 = 1, kOf14 = 2, kOnfOf13 = 3, kOf15 = 4 };
// Stable names, used as a metric label: "none", "openflow10_nx",
// "openflow13_onf", "openflow14", "openflow15".
const char* monitor_protocol_name(MonitorProtocol p);
// The protocol we run over a negotiated OpenFlow version (kNone for versions
// we do not offer).
MonitorProtocol monitor_protocol_for(uint8_t version);

// The versions our HELLO offers: 1.0, 1.3, 1.4, 1.5 (bit N = wire version N).
constexpr uint32_t kMonitorVersions = (1u << of::kVersion10) | (1u << of::kVersion13) |
                                      (1u << of::kVersion14) | (1u << of::kVersion15);

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
  // The switch allows no OpenFlow version we offer (counted; the connection
  // then fails and is retried slowly).
  virtual void on_version_mismatch(const std::string& why) {}
};

// Decodes one NXST_FLOW_MONITOR reply body (a sequence of nx_flow_update_*).
// ABBREV entries are skipped (we never issue flow mods on this connection).
// An Error means the body's framing is broken; a broken entry with a sound
// length is reported to on_decode_error() and skipped.
Status decode_flow_updates(ByteView body, bool initial, FlowMonitorSink& sink);

// Decodes one OFPMP_FLOW_MONITOR reply body (OpenFlow 1.4 and 1.5
// ofp_flow_update_*): OXM matches, instructions, a one-byte removal reason.
// PAUSED and RESUMED arrive here as entries (OpenFlow 1.0 has separate NXT
// messages for them) and go to on_paused()/on_resumed(). Errors as for
// decode_flow_updates(). 'fold_enqueue': read set_queue, output (max_len
// 0xffff), pop_queue as the enqueue it came from, which only OpenFlow 1.0 can
// install (false when the switch does not allow 1.0; see decode_instructions).
Status decode_flow_updates14(ByteView body, bool initial, FlowMonitorSink& sink,
                             bool fold_enqueue = true);

// Decodes one ONFST_FLOW_MONITOR reply body (OpenFlow 1.3, OVS's ONF
// extension): the nx_flow_update_full header (match_len = the ofp_match's
// length) followed by an OXM ofp_match and instructions; events as NXFME_*
// (the INITIAL snapshot arrives as ADDED). Errors as for decode_flow_updates().
Status decode_flow_updates_onf(ByteView body, bool initial, FlowMonitorSink& sink,
                               bool fold_enqueue = true);

// Encodes the monitor request body: id, flags, out_port=NONE, table 0xff, empty match.
Bytes encode_flow_monitor_request_body(uint32_t id, uint16_t flags);
// The OpenFlow 1.4/1.5 ofp14_flow_monitor_request (command ADD, out_port ANY,
// out_group ANY, all tables) with an empty OXM match.
Bytes encode_flow_monitor_request14_body(uint32_t id, uint16_t flags);
// The OpenFlow 1.3 ONF request: id, flags, match_len, out_port ANY (32 bits),
// all tables, three zero bytes, then an empty OXM ofp_match.
Bytes encode_flow_monitor_request_onf_body(uint32_t id, uint16_t flags);

// Request flags; NXFMF_* and OpenFlow 1.4 OFPFMF_* share these five values.
constexpr uint16_t kNxfmfInitial = 1 << 0, kNxfmfAdd = 1 << 1, kNxfmfDelete = 1 << 2,
                   kNxfmfModify = 1 << 3, kNxfmfActions = 1 << 4, kNxfmfOwn = 1 << 5;

class FlowMonitorSession {
 public:
  enum class State { kIdle, kHelloSent, kAwaitInitial, kStreaming, kFailed };
  static constexpr uint32_t kMonitorXid = 0x68760001;  // "hv" + 1
  static constexpr uint32_t kMonitorId = 1;

  // 'versions': the bitmap our HELLO offers (a subset of kMonitorVersions).
  explicit FlowMonitorSession(FlowMonitorSink& sink, uint32_t versions = kMonitorVersions)
      : sink_(sink), versions_(versions & kMonitorVersions) {}

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
  // Why the session failed, when it is something a reconnect will not fix.
  bool version_mismatch() const { return version_mismatch_; }
  // The negotiated version whose monitor request the switch refused, else 0.
  uint8_t refused_version() const { return refused_version_; }

  struct Counters {
    uint64_t messages = 0;
    uint64_t echo_replies = 0;
    uint64_t update_batches = 0;
    uint64_t decode_errors = 0;
    uint64_t ignored = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  Status handle(const of::Message& m);
  Status handle_hello(const of::Message& m);
  // PAUSED/RESUMED as vendor messages (Nicira over 1.0, ONF over 1.3).
  void handle_vendor(const of::Message& m, uint32_t vendor, uint32_t paused, uint32_t resumed);
  Status handle_reply(const of::Message& m);
  // One reply body: decode it, and finish the INITIAL snapshot on its last part.
  Status deliver(ByteView body, uint32_t xid, bool more);
  void send(const Bytes& b) { out_.insert(out_.end(), b.begin(), b.end()); }

  FlowMonitorSink& sink_;
  const uint32_t versions_;
  State state_ = State::kIdle;
  uint8_t version_ = 0;
  bool peer_has_of10_ = true;  // the switch allows OpenFlow 1.0 (see fold_enqueue)
  bool version_mismatch_ = false;
  uint8_t refused_version_ = 0;
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
    // Wait after the switch allowed no version we offer: its `protocols`
    // column must change first, so retrying faster only spins.
    std::chrono::milliseconds mismatch_retry{60000};
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
  uint64_t version_mismatches() const { return version_mismatches_.load(); }
  // The versions the next HELLO offers (kMonitorVersions less refused ones).
  uint32_t offered_versions() const { return offered_.load(); }

 private:
  void run();
  // Runs one connection until it fails or stop() is called.
  struct Outcome {
    std::string why;
    bool version_mismatch = false;
    uint8_t refused_version = 0;
  };
  Outcome run_connection(int fd);
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
  std::atomic<uint64_t> version_mismatches_{0};
  std::atomic<uint32_t> offered_{kMonitorVersions};
  bool mismatch_logged_ = false;  // monitor thread only
};

}  // namespace hvtel::ovs
