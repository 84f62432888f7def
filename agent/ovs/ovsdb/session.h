// The OVSDB JSON-RPC protocol state machine for one connection, without I/O.
//
// The socket driver feeds it received bytes and the time, and writes out what
// take_output() returns. It:
//   - frames and parses messages (malformed input -> error, counted),
//   - monitors the Open_vSwitch tables with monitor_cond (update2), falling
//     back to RFC 7047 monitor (update) on servers that lack it,
//   - answers the server's echo requests and probes an idle server itself,
//   - keeps the raw replica (Database) of the monitored rows.
// Any error means the connection must be dropped; a new connection starts
// over with on_connect() and a full resync.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "ovs/ovsdb/db.h"
#include "ovs/ovsdb/json_framer.h"
#include "ovs/ovsdb/port_model.h"
#include "base/util/result.h"

namespace hvtel::ovsdb {

struct SessionStats {
  uint64_t messages = 0;        // complete messages received
  uint64_t parse_errors = 0;    // framing or JSON syntax errors
  uint64_t protocol_errors = 0; // valid JSON that is not a valid reply/notification
  uint64_t updates = 0;         // update/update2 notifications applied
  uint64_t echo_replies = 0;    // server echo requests answered
};

class Session {
 public:
  struct Options {
    // Send an echo after this much silence; drop the connection after twice it.
    std::chrono::milliseconds probe_interval{std::chrono::seconds(15)};
  };

  Session() : Session(Options{}) {}
  explicit Session(Options opts) : opts_(opts) {}

  // A new connection: forget the replica, queue the monitor request.
  void on_connect(TimePoint now);
  // Received bytes. An error means: close the connection and reconnect.
  Status on_bytes(std::string_view bytes, TimePoint now);
  // Timer tick: may queue an echo probe; errors when the server stopped answering.
  Status on_tick(TimePoint now);

  // Bytes to write to the socket (drained).
  std::string take_output();

  // True once the initial monitor contents are applied on this connection.
  bool synced() const { return synced_; }
  // True if the replica changed since the last call (then resets).
  bool take_changed();
  bool using_monitor_cond() const { return monitor_cond_; }
  const Database& db() const { return db_; }
  const SessionStats& stats() const { return stats_; }

  static constexpr const char* kDatabase = "Open_vSwitch";

 private:
  Status handle(const nlohmann::json& msg);
  Status handle_reply(const nlohmann::json& msg);
  void send(const nlohmann::json& msg);
  void send_monitor();

  Options opts_;
  JsonFramer framer_;
  Database db_;
  std::string out_;
  bool synced_ = false;
  bool changed_ = false;
  bool monitor_cond_ = true;  // cleared after the server rejects monitor_cond
  int64_t next_id_ = 1;
  int64_t monitor_id_ = 0;     // JSON-RPC id of the outstanding monitor request
  TimePoint last_rx_{};
  bool probe_outstanding_ = false;
  SessionStats stats_;
};

}  // namespace hvtel::ovsdb
