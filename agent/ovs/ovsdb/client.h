// OvsdbClient: keeps a live PortModel of the local Open vSwitch database.
//
// One driver thread connects to ovsdb-server's unix socket, runs a Session,
// rebuilds the PortModel after every applied update and publishes it to a
// ModelStore. On any error or EOF it drops the connection and reconnects with
// exponential backoff; every connection starts with a full resync. Readers on
// other threads only touch the ModelStore.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ovs/ovsdb/port_model.h"
#include "ovs/ovsdb/session.h"
#include "base/util/result.h"

namespace hvtel::ovsdb {

inline constexpr const char* kDefaultSocket = "/var/run/openvswitch/db.sock";

struct ClientStats {
  uint64_t connects = 0;         // successful connections (the first one included)
  uint64_t connect_failures = 0;
  uint64_t disconnects = 0;      // connections lost or dropped after an error
  uint64_t parse_errors = 0;     // malformed messages (summed over connections)
  uint64_t protocol_errors = 0;
  uint64_t updates = 0;          // update notifications applied
};

// Called with the sorted bridge names whenever the set of bridges changes
// (including the first sync). Runs on the driver thread; keep it short.
using BridgeSetCallback = std::function<void(const std::vector<std::string>& bridges)>;

// Thread-safe holder of the latest snapshot and the connection state.
class ModelStore {
 public:
  ModelStore();
  std::shared_ptr<const PortModel> snapshot() const;
  bool up() const { return up_.load(); }
  uint64_t generation() const;
  ClientStats stats() const;

  // Writer side (the driver thread, or tests).
  void publish(std::shared_ptr<const PortModel> model);
  void set_up(bool up) { up_.store(up); }
  void update_stats(const ClientStats& s);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const PortModel> model_;
  ClientStats stats_;
  std::atomic<bool> up_{false};
};

// The non-threaded core: a Session plus model building and publishing. The
// driver thread owns one; unit tests drive it with canned bytes.
class Replica {
 public:
  Replica(std::shared_ptr<ModelStore> store, Session::Options opts = {});
  void set_bridge_callback(BridgeSetCallback cb) { bridge_cb_ = std::move(cb); }

  void on_connect(TimePoint now);
  Status on_bytes(std::string_view bytes, TimePoint now);
  Status on_tick(TimePoint now);
  // The connection is gone: the model stays, marked unsynced, until resync.
  void on_disconnect(TimePoint now);
  void on_connect_failure();
  std::string take_output() { return session_.take_output(); }
  const Session& session() const { return session_; }

 private:
  void publish_if_changed(TimePoint now);
  void publish(PortModel m);
  void refresh_stats();

  std::shared_ptr<ModelStore> store_;
  Session session_;
  BridgeSetCallback bridge_cb_;
  std::shared_ptr<const PortModel> last_;
  std::vector<std::string> last_bridges_;
  bool bridges_reported_ = false;
  uint64_t generation_ = 0;
  ClientStats counts_;  // connection counters; the rest comes from the session
};

struct ClientOptions {
  std::string socket_path = kDefaultSocket;
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
  Session::Options session;
};

class OvsdbClient {
 public:
  explicit OvsdbClient(ClientOptions opts);
  ~OvsdbClient();
  OvsdbClient(const OvsdbClient&) = delete;
  OvsdbClient& operator=(const OvsdbClient&) = delete;

  // Set before start().
  void set_bridge_callback(BridgeSetCallback cb);
  // Starts the driver thread. Connection failures are not errors: the thread retries.
  Status start();
  void stop();

  std::shared_ptr<const PortModel> snapshot() const { return store_->snapshot(); }
  bool up() const { return store_->up(); }
  std::shared_ptr<const ModelStore> store() const { return store_; }

 private:
  void run();
  // Runs one connection until it fails or stop(); returns why it ended.
  Status serve(int fd);
  bool wait_or_stop(std::chrono::milliseconds d);

  ClientOptions opts_;
  std::shared_ptr<ModelStore> store_;
  Replica replica_;
  std::thread thread_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
};

}  // namespace hvtel::ovsdb
