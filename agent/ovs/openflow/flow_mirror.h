// Per-bridge mirror of the OpenFlow tables, fed by the flow monitor.
//
// Keyed by (table, priority, normalized match); a MODIFIED update keeps the
// key. Written by the monitor thread, read by the Prometheus scrape path and
// the rule engine: every public method takes the mutex, readers get copies.
//
// Resync: each (re)connection delivers a full INITIAL snapshot. The mirror
// builds the new table beside the old one and, when the snapshot completes,
// reports the differences as add/modify/delete (changes missed while
// disconnected are real changes), keeping first_seen for flows that survived.
// The very first snapshot is the baseline and reports nothing.
//
// Memory (docs/performance.md §3, 100k flows): a flow costs one map node and
// its canonical match text. The decoded match is not kept (nothing reads it
// back), and action lists are interned: Neutron-like tables repeat the same few
// lists per port, so flows, the table being built during a resync and readers'
// copies all share one immutable MirrorActions per distinct list.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ovs/openflow/canonical.h"
#include "ovs/openflow/flow_monitor.h"

namespace hvtel::ovs {

struct FlowKey {
  uint8_t table = 0;
  uint16_t priority = 0;
  std::string match;  // render_match(): canonical, so equal matches compare equal
  auto operator<=>(const FlowKey&) const = default;
};

// One distinct action list as the mirror keeps it, immutable once shared.
struct MirrorActions {
  ActionList list;   // as decoded, minus the wire bytes (Action::raw, ActionList::raw)
  std::string text;  // render_actions(list.actions); "" for a flow seen without actions
};

// A reader's copy of one flow.
struct MirrorFlow {
  FlowKey key;
  uint64_t cookie = 0;
  std::shared_ptr<const MirrorActions> shared_actions;  // null reads as no actions
  bool actions_known = true;  // false if we only ever saw the flow without actions
  uint16_t idle_timeout = 0;
  uint16_t hard_timeout = 0;
  std::chrono::system_clock::time_point first_seen;
  std::chrono::system_clock::time_point last_change;
  std::string match_fields;  // pack_match_fields() of the decoded match: what the rules read

  const ActionList& actions() const;
  const std::string& actions_text() const;
  FlowIdentity identity() const {
    return FlowIdentity{key.table, key.priority, cookie, key.match, actions_text()};
  }
};

enum class ChangeKind : uint8_t { kAdd = 0, kModify = 1, kDelete = 2 };
const char* change_kind_name(ChangeKind k);

struct FlowChange {
  std::string bridge;
  uint8_t table = 0;
  ChangeKind kind = ChangeKind::kAdd;
  std::string text;                    // FlowIdentity::to_string() of the flow
  std::optional<std::string> reason;   // delete reason ("delete", "idle_timeout", "resync")
  bool from_resync = false;
};

struct TableStats {
  uint64_t flows = 0;
  std::array<uint64_t, 3> changes{};  // indexed by ChangeKind
};

struct MirrorSnapshot {
  std::string bridge;
  bool monitor_up = false;     // connected and past the INITIAL snapshot
  bool view_complete = false;  // snapshot done and not between PAUSED and RESUMED
  MonitorProtocol protocol = MonitorProtocol::kNone;  // of the current or last connection
  uint64_t resyncs = 0;        // completed INITIAL snapshots
  uint64_t pauses = 0;
  uint64_t decode_errors = 0;
  uint64_t disconnects = 0;
  uint64_t version_mismatches = 0;  // connections refused for want of a common version
  uint64_t change_seq = 0;     // bumps on every applied change
  std::map<uint8_t, TableStats> tables;
  uint64_t total_flows() const;
  uint64_t total_changes(ChangeKind k) const;
};

class FlowMirror : public FlowMonitorSink {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  explicit FlowMirror(std::string bridge, Clock clock = nullptr);

  const std::string& bridge() const { return bridge_; }
  // Invoked after each change, outside the mirror lock, on the writer's thread.
  void set_change_callback(std::function<void(const FlowChange&)> cb);

  // FlowMonitorSink (monitor thread).
  void on_protocol(MonitorProtocol p) override;
  void on_resync_start() override;
  void on_flow(const FlowUpdate& u) override;
  void on_resync_complete() override;
  void on_paused() override;
  void on_resumed() override;
  void on_disconnect(const std::string& why) override;
  void on_decode_error(const std::string& why) override;
  void on_version_mismatch(const std::string& why) override;

  // Readers (any thread).
  MirrorSnapshot snapshot() const;  // cheap: counters only
  std::vector<FlowIdentity> identities() const;
  std::vector<MirrorFlow> flows() const;
  std::optional<MirrorFlow> find(const FlowKey& key) const;
  bool view_complete() const;
  uint64_t change_seq() const;

 private:
  // A flow as stored: MirrorFlow without the key, which the map node holds.
  struct Entry {
    uint64_t cookie = 0;
    std::string match_fields;  // pack_match_fields(); set once, the match is the key
    std::shared_ptr<const MirrorActions> actions;
    std::chrono::system_clock::time_point first_seen;
    std::chrono::system_clock::time_point last_change;
    uint16_t idle_timeout = 0;
    uint16_t hard_timeout = 0;
    bool actions_known = true;
  };
  using Table = std::map<FlowKey, Entry>;
  static MirrorFlow materialize(const FlowKey& key, const Entry& e);
  void apply(Table& t, const FlowUpdate& u, bool count, std::vector<FlowChange>& out);
  void record(ChangeKind k, const FlowKey& key, const Entry& e, std::optional<std::string> reason,
              bool resync, std::vector<FlowChange>& out);
  void notify(const std::vector<FlowChange>& changes);
  // The shared copy of 'list' (raw bytes dropped), added to the pool if new.
  std::shared_ptr<const MirrorActions> intern(const ActionList& list);
  // Drops pool entries no flow or reader holds any more.
  void sweep_actions();

  const std::string bridge_;
  Clock clock_;
  mutable std::mutex mu_;
  std::function<void(const FlowChange&)> callback_;
  Table flows_;
  std::optional<Table> pending_;  // snapshot being built during a resync
  // Interned action lists by hash of their text; sweep_actions() runs when the
  // pool has doubled since the last sweep, so dead entries stay bounded.
  std::unordered_multimap<size_t, std::shared_ptr<const MirrorActions>> actions_pool_;
  size_t pool_sweep_at_ = 1024;
  bool baseline_done_ = false;
  bool paused_ = false;
  MirrorSnapshot stats_;
};

}  // namespace hvtel::ovs
