// OvsService: the Open vSwitch side of `hvtel serve`.
//
// Owns the OVSDB client (port model + bridge inventory), the per-bridge
// OpenFlow flow monitors (FlowMonitorSet, fed the bridge list by the OVSDB
// client) and a rule thread that, every `evaluate_interval`, joins the flow
// mirrors, the OVSDB snapshot and (optionally) libvirt's instances, runs the
// dirty-flow rules and updates hvtel_ovs_dirty_flows. Newly dirty flows are
// logged once; dirty-flow events and mirror change events are kept in bounded
// rings for the live CLI (events_since()).
//
// Without Open vSwitch (no db.sock) everything stays quiet: hvtel_ovsdb_up 0,
// one log line, reconnects with backoff.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <prometheus/collectable.h>

#include "base/model/instance.h"
#include "ovs/openflow/flow_mirror.h"
#include "ovs/service/flow_view.h"
#include "ovs/rules/rules.h"
#include "ovs/rules/rules_gate.h"
#include "base/util/result.h"

namespace hvtel::ovs {
class FlowMonitorSet;
}
namespace hvtel::ovsdb {
class OvsdbClient;
class DirtyFlowGauge;
}  // namespace hvtel::ovsdb

namespace hvtel::ovs_service {

inline constexpr const char* kDefaultRundir = "/var/run/openvswitch";

struct OvsServiceOptions {
  std::string rundir = kDefaultRundir;  // <bridge>.mgmt live here
  std::string ovsdb_socket;             // empty: <rundir>/db.sock
  // Gating (Q quiet 10 s, G port grace 60 s, R restart window 300 s), the
  // cookie allow-list (R13) and the integration bridge (R16).
  ovsdb::RuleConfig rules;
  std::chrono::milliseconds evaluate_interval{1000};
  // Reconnect backoff of the OVSDB client (db.sock absent: one log line, then retries).
  std::chrono::milliseconds ovsdb_backoff_min{200};
  std::chrono::milliseconds ovsdb_backoff_max{std::chrono::seconds(30)};
  // Reconnect backoff of the per-bridge flow monitors.
  ovs::FlowMonitorClient::Options monitor;
  size_t max_events = 1024;  // per ring (dirty-flow events, flow changes)
};

struct OvsEvent {
  enum class Kind : uint8_t {
    kFlowChange = 0,  // a mirror add/modify/delete (forwarded FlowChange)
    kDirty = 1,       // a violation appeared
    kClean = 2,       // a violation that was reported went away
  };
  uint64_t seq = 0;  // strictly increasing over both rings
  std::chrono::system_clock::time_point time{};
  Kind kind = Kind::kFlowChange;
  std::string bridge;
  int table = -1;
  // kFlowChange
  ovs::ChangeKind change = ovs::ChangeKind::kAdd;
  std::string reason;  // delete reason, empty otherwise
  bool from_resync = false;
  // kDirty / kClean
  std::string rule;
  std::string detail;
  // Flow text (FlowIdentity / canonical_text) or an interface name.
  std::string subject;
};
const char* event_kind_name(OvsEvent::Kind k);

// Two bounded rings (dirty/clean events, flow changes) sharing one sequence,
// so a burst of flow changes (a resync of a large bridge) cannot push the
// dirty-flow events out. Thread-safe.
class EventLog {
 public:
  explicit EventLog(size_t max_per_ring = 1024) : max_(max_per_ring) {}
  // Assigns e.seq; returns it.
  uint64_t push(OvsEvent e);
  // Events with seq > `seq`, oldest first, at most `max`.
  std::vector<OvsEvent> since(uint64_t seq, size_t max = SIZE_MAX) const;
  uint64_t last_seq() const;

 private:
  size_t max_;
  mutable std::mutex mu_;
  uint64_t next_seq_ = 1;
  std::deque<OvsEvent> dirty_;
  std::deque<OvsEvent> changes_;
};

class OvsService {
 public:
  explicit OvsService(OvsServiceOptions opts = {});
  ~OvsService();
  OvsService(const OvsService&) = delete;
  OvsService& operator=(const OvsService&) = delete;

  // Optional (R16 a–c): the instances libvirt runs. `available` (optional)
  // says whether that list can be trusted right now (libvirt connected); when
  // it returns false, the checks needing libvirt are skipped instead of
  // reporting every interface as an orphan. Set before start().
  void set_libvirt_source(std::function<std::vector<model::Instance>()> instances,
                          std::function<bool()> available = nullptr);
  // Called on the rule thread after each evaluation (tests, the future CLI).
  void set_evaluation_observer(std::function<void(const ovsdb::RuleReport&)> cb);

  // Starts the OVSDB client and the rule thread. Connection failures are not
  // errors: everything retries in the background.
  Status start();
  void stop();

  // OvsFlowCollector, OvsdbCollector, DirtyFlowGauge and the service's own
  // counters. Valid (and safe to scrape) before start() and after stop().
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;

  // Events with seq > `seq`, oldest first, at most `max`. Both rings are
  // bounded, so a gap in seq means events were dropped.
  std::vector<OvsEvent> events_since(uint64_t seq, size_t max = SIZE_MAX) const;
  uint64_t last_event_seq() const;

  // Nova instance UUID behind an interface (tap device): OVSDB external_ids
  // vm-uuid/vm-id, else the libvirt instance whose interface carries the
  // Interface's iface-id (or has that target dev). Empty when unknown.
  std::string instance_of_interface(const std::string& ifname) const;

  // Evaluations completed and the last report (tests, CLI).
  uint64_t evaluations() const;
  ovsdb::RuleReport last_report() const;
  const OvsServiceOptions& options() const { return opts_; }

  // One evaluation at `clocks` (the rule thread calls this every interval).
  void evaluate(const ClockPair& clocks);

 private:
  struct Stats;
  using ViolationKey = std::tuple<std::string, std::string, std::string>;  // bridge, rule, subject
  void run();
  void on_flow_change(const ovs::FlowChange& c);
  std::optional<ovsdb::LibvirtView> libvirt_view(TimePoint now);
  void track_violations(const ovsdb::RuleReport& report);

  OvsServiceOptions opts_;
  std::shared_ptr<ovs::FlowMonitorSet> flows_;
  std::unique_ptr<ovsdb::OvsdbClient> ovsdb_;
  std::shared_ptr<ovsdb::DirtyFlowGauge> gauge_;
  std::shared_ptr<Stats> stats_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;

  std::function<std::vector<model::Instance>()> libvirt_instances_;
  std::function<bool()> libvirt_available_;
  std::function<void(const ovsdb::RuleReport&)> observer_;

  // Rule-thread state (guarded by eval_mu_: evaluate() is public).
  std::mutex eval_mu_;
  ovsdb::RuleGate gate_;
  BridgeTracker tracker_;
  std::map<std::string, TimePoint> domain_first_seen_;
  std::map<ViolationKey, ovsdb::Violation> active_;  // currently dirty (logged once)
  std::set<std::string> known_flow_bridges_;
  // What the last full evaluation saw. With the same inputs and nothing held
  // back by gating, rules can only change their verdict as time passes through
  // the G/R/T windows: the full evaluation then runs every 5 s while a window
  // may be open since the last change, and every 30 s after that.
  struct InputKey {
    uint64_t flows = 0, ports = 0;
    size_t libvirt = 0;  // hash of the libvirt view's content
    bool operator==(const InputKey&) const = default;
  };
  std::optional<InputKey> last_inputs_;
  bool last_held_ = true;
  TimePoint last_full_eval_{};
  TimePoint last_input_change_{};

  mutable std::mutex lv_mu_;  // the last libvirt instances (instance_of_interface)
  std::vector<model::Instance> lv_instances_;

  mutable std::mutex report_mu_;
  ovsdb::RuleReport last_report_;

  EventLog events_;

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
};

}  // namespace hvtel::ovs_service
