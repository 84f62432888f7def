#include "ovs/service/ovs_service.h"

#include <algorithm>

#include <prometheus/metric_family.h>

#include "base/metrics/catalog.h"
#include "base/metrics/family.h"
#include "ovs/openflow/ovs_collector.h"
#include "ovs/ovsdb/client.h"
#include "ovs/ovsdb/metrics.h"
#include "ovs/rules/rules_metrics.h"
#include "base/util/log.h"

namespace hvtel::ovs_service {

const char* event_kind_name(OvsEvent::Kind k) {
  switch (k) {
    case OvsEvent::Kind::kFlowChange: return "flow_change";
    case OvsEvent::Kind::kDirty: return "dirty";
    case OvsEvent::Kind::kClean: return "clean";
  }
  return "unknown";
}

// Counters shared with the collector (which may outlive the service).
struct OvsService::Stats {
  std::atomic<uint64_t> evaluations{0};
  mutable std::mutex mu;
  std::map<std::pair<std::string, std::string>, uint64_t> dirty_events;  // (bridge, rule)
};

namespace {

// hvtel_ovs_rule_evaluations_total, hvtel_ovs_dirty_flow_events_total{bridge,rule}.
class ServiceCollector : public prometheus::Collectable {
 public:
  using Stats = std::function<void(uint64_t&, std::map<std::pair<std::string, std::string>, uint64_t>&)>;
  explicit ServiceCollector(Stats read) : read_(std::move(read)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    uint64_t evaluations = 0;
    std::map<std::pair<std::string, std::string>, uint64_t> events;
    read_(evaluations, events);
    metrics::FamilyBuilder evals(metrics::catalog::kOvsRuleEvaluations);
    evals.add({}, static_cast<double>(evaluations));
    metrics::FamilyBuilder dirty(metrics::catalog::kOvsDirtyFlowEvents);
    for (const auto& [key, n] : events)
      dirty.add({{"bridge", key.first}, {"rule", key.second}}, static_cast<double>(n));
    return {evals.take(), dirty.take()};
  }

 private:
  Stats read_;
};

}  // namespace

OvsService::OvsService(OvsServiceOptions opts)
    : opts_(std::move(opts)), gate_(opts_.rules), events_(opts_.max_events) {
  if (opts_.ovsdb_socket.empty()) opts_.ovsdb_socket = opts_.rundir + "/db.sock";
  flows_ = std::make_shared<ovs::FlowMonitorSet>(opts_.rundir, opts_.monitor);
  ovsdb::ClientOptions co;
  co.socket_path = opts_.ovsdb_socket;
  co.backoff_min = opts_.ovsdb_backoff_min;
  co.backoff_max = opts_.ovsdb_backoff_max;
  ovsdb_ = std::make_unique<ovsdb::OvsdbClient>(co);
  gauge_ = std::make_shared<ovsdb::DirtyFlowGauge>();
  stats_ = std::make_shared<Stats>();

  std::shared_ptr<Stats> stats = stats_;
  collectables_.push_back(std::make_shared<ovs::OvsFlowCollector>(flows_));
  collectables_.push_back(std::make_shared<ovsdb::OvsdbCollector>(ovsdb_->store()));
  collectables_.push_back(gauge_);
  collectables_.push_back(std::make_shared<ServiceCollector>(
      [stats](uint64_t& evals, std::map<std::pair<std::string, std::string>, uint64_t>& ev) {
        evals = stats->evaluations.load();
        std::lock_guard lock(stats->mu);
        ev = stats->dirty_events;
      }));
}

OvsService::~OvsService() { stop(); }

void OvsService::set_libvirt_source(std::function<std::vector<model::Instance>()> instances,
                                    std::function<bool()> available) {
  libvirt_instances_ = std::move(instances);
  libvirt_available_ = std::move(available);
}

void OvsService::set_evaluation_observer(std::function<void(const ovsdb::RuleReport&)> cb) {
  observer_ = std::move(cb);
}

Status OvsService::start() {
  {
    std::lock_guard lock(run_mu_);
    if (started_) return fail("ovs service already started");
  }
  // Without OVS the OVSDB client logs the connect failure once and retries quietly.
  std::shared_ptr<ovs::FlowMonitorSet> flows = flows_;
  ovsdb_->set_bridge_callback([flows](const std::vector<std::string>& bridges) {
    std::string names;
    for (const auto& b : bridges) names += (names.empty() ? "" : ",") + b;
    log::info("ovs", "bridges: {}", names.empty() ? "(none)" : names);
    flows->set_bridges(bridges);
  });
  flows_->set_change_callback([this](const ovs::FlowChange& c) { on_flow_change(c); });
  if (auto st = ovsdb_->start(); !st) return fail(st.error().context("ovs service"));
  {
    std::lock_guard lock(run_mu_);
    stopping_ = false;
    started_ = true;
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void OvsService::stop() {
  {
    std::lock_guard lock(run_mu_);
    if (!started_) return;
    stopping_ = true;
    started_ = false;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The OVSDB client first: its bridge callback would start monitors again.
  ovsdb_->stop();
  flows_->stop_all();
  flows_->set_change_callback(nullptr);
}

std::vector<std::shared_ptr<prometheus::Collectable>> OvsService::collectables() const {
  return collectables_;
}

void OvsService::run() {
  std::unique_lock lock(run_mu_);
  while (!stopping_) {
    if (run_cv_.wait_for(lock, opts_.evaluate_interval, [this] { return stopping_; })) break;
    lock.unlock();
    evaluate(ClockPair::now());
    lock.lock();
  }
}

void OvsService::on_flow_change(const ovs::FlowChange& c) {
  OvsEvent e;
  e.time = std::chrono::system_clock::now();
  e.kind = OvsEvent::Kind::kFlowChange;
  e.bridge = c.bridge;
  e.table = c.table;
  e.change = c.kind;
  e.reason = c.reason.value_or("");
  e.from_resync = c.from_resync;
  e.subject = c.text;
  events_.push(std::move(e));
}

uint64_t EventLog::push(OvsEvent e) {
  std::lock_guard lock(mu_);
  e.seq = next_seq_++;
  auto& ring = e.kind == OvsEvent::Kind::kFlowChange ? changes_ : dirty_;
  ring.push_back(std::move(e));
  while (ring.size() > max_) ring.pop_front();
  return next_seq_ - 1;
}

std::vector<OvsEvent> EventLog::since(uint64_t seq, size_t max) const {
  std::lock_guard lock(mu_);
  auto after = [seq](const std::deque<OvsEvent>& ring) {
    return std::upper_bound(ring.begin(), ring.end(), seq,
                            [](uint64_t s, const OvsEvent& e) { return s < e.seq; });
  };
  auto a = after(dirty_);
  auto b = after(changes_);
  std::vector<OvsEvent> out;
  while (out.size() < max && (a != dirty_.end() || b != changes_.end())) {
    if (b == changes_.end() || (a != dirty_.end() && a->seq < b->seq)) {
      out.push_back(*a++);
    } else {
      out.push_back(*b++);
    }
  }
  return out;
}

uint64_t EventLog::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

std::vector<OvsEvent> OvsService::events_since(uint64_t seq, size_t max) const {
  return events_.since(seq, max);
}

uint64_t OvsService::last_event_seq() const { return events_.last_seq(); }

std::string OvsService::instance_of_interface(const std::string& ifname) const {
  std::string iface_id;
  if (auto ports = ovsdb_->snapshot()) {
    if (auto id = ports->instance_of(ifname)) return *id;
    if (const auto* i = ports->interface_by_name(ifname)) iface_id = i->iface_id;
  }
  std::lock_guard lock(lv_mu_);
  for (const auto& inst : lv_instances_) {
    for (const auto& i : inst.interfaces) {
      if ((!iface_id.empty() && i.interface_id == iface_id) || i.target_dev == ifname) {
        return inst.instance_id;
      }
    }
  }
  return {};
}

uint64_t OvsService::evaluations() const { return stats_->evaluations.load(); }

ovsdb::RuleReport OvsService::last_report() const {
  std::lock_guard lock(report_mu_);
  return last_report_;
}

std::optional<ovsdb::LibvirtView> OvsService::libvirt_view(TimePoint now) {
  if (!libvirt_instances_) return std::nullopt;
  if (libvirt_available_ && !libvirt_available_()) return std::nullopt;
  auto instances = libvirt_instances_();
  ovsdb::LibvirtView view = ovsdb::libvirt_view_from(instances, now);
  // A domain is as old as our first sight of it, not as this evaluation.
  std::set<std::string> running;
  for (auto& d : view.domains) {
    running.insert(d.instance_id);
    auto [it, inserted] = domain_first_seen_.emplace(d.instance_id, now);
    d.first_seen = it->second;
  }
  for (auto it = domain_first_seen_.begin(); it != domain_first_seen_.end();) {
    it = running.count(it->first) ? std::next(it) : domain_first_seen_.erase(it);
  }
  {
    std::lock_guard lock(lv_mu_);
    lv_instances_ = std::move(instances);
  }
  return view;
}

void OvsService::evaluate(const ClockPair& clocks) {
  std::lock_guard eval_lock(eval_mu_);
  const TimePoint now = clocks.steady;
  const auto& bridge_flows = tracker_.read(flows_->mirrors(), clocks);
  auto ports = ovsdb_->snapshot();
  auto lv = libvirt_view(now);

  InputKey inputs;
  inputs.flows = tracker_.generation();
  inputs.ports = ports ? ports->generation : 0;
  if (lv) {
    std::string text = lv->available ? "up;" : "down;";
    for (const auto& d : lv->domains) {
      text += d.instance_id + (d.running ? "+" : "-");
      for (const auto& i : d.interfaces) text += i.target_dev + "," + i.mac + "," + i.interface_id + ";";
    }
    inputs.libvirt = std::hash<std::string>{}(text);
  }
  if (!last_inputs_ || !(*last_inputs_ == inputs)) last_input_change_ = now;
  const auto windows =
      std::max({opts_.rules.quiet, opts_.rules.port_grace, opts_.rules.restart_window,
                opts_.rules.monitor_gap, opts_.rules.flow_loss_hold + opts_.rules.flow_loss_window});
  // Same inputs and nothing held: only time can change a verdict, through the
  // G/R/T windows (minutes), so re-check every 5 s while one may still be
  // open and every 30 s after that.
  const auto recheck = now - last_input_change_ > windows ? std::chrono::seconds(30)
                                                          : std::chrono::seconds(5);
  if (last_inputs_ && *last_inputs_ == inputs && !last_held_ && now - last_full_eval_ < recheck) {
    // Nothing changed and nothing waits on a gating window: the previous
    // result stands.
    stats_->evaluations.fetch_add(1);
    if (observer_) observer_(last_report());
    return;
  }
  last_inputs_ = inputs;
  last_full_eval_ = now;

  ovsdb::RuleInputs in;
  in.flows = &bridge_flows;
  in.ports = ports.get();
  in.libvirt = lv ? &*lv : nullptr;
  ovsdb::RuleReport report = ovsdb::evaluate_rules(in, gate_, now);
  last_held_ = !report.held.empty();

  std::set<std::string> bridges;
  for (const auto& f : bridge_flows) bridges.insert(f.bridge);
  if (ports) {
    for (const auto& b : ports->bridges) bridges.insert(b.name);
  }
  // R16 (a) reports devices missing from OVSDB on the integration bridge.
  if (lv && lv->available && ports && ports->synced) bridges.insert(opts_.rules.integration_bridge);
  for (const auto& [key, n] : report.counts) bridges.insert(key.first);

  gauge_->update(report, bridges);
  track_violations(report);
  for (auto it = active_.begin(); it != active_.end();) {
    if (bridges.count(std::get<0>(it->first)) == 0) {
      OvsEvent e;
      e.time = clocks.system;
      e.kind = OvsEvent::Kind::kClean;
      e.bridge = it->second.bridge;
      e.table = it->second.table;
      e.rule = it->second.rule;
      e.subject = it->second.subject;
      e.detail = "bridge gone";
      events_.push(std::move(e));
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  // Forget flow bridges that are gone, so a re-created bridge learns its cookie anew.
  std::set<std::string> flow_bridges;
  for (const auto& f : bridge_flows) flow_bridges.insert(f.bridge);
  for (const auto& b : known_flow_bridges_) {
    if (flow_bridges.count(b) == 0) gate_.forget(b);
  }
  known_flow_bridges_ = std::move(flow_bridges);

  stats_->evaluations.fetch_add(1);
  {
    std::lock_guard lock(report_mu_);
    last_report_ = report;
  }
  if (observer_) observer_(report);
}

void OvsService::track_violations(const ovsdb::RuleReport& report) {
  // Pairs that were evaluated replace their set; held pairs keep theirs.
  std::map<ViolationKey, const ovsdb::Violation*> now_dirty;
  for (const auto& v : report.violations) now_dirty[{v.bridge, v.rule, v.subject}] = &v;

  for (auto it = active_.begin(); it != active_.end();) {
    const auto& [bridge, rule, subject] = it->first;
    const bool evaluated = report.counts.count({bridge, rule}) != 0;
    if (evaluated && now_dirty.count(it->first) == 0) {
      log::info("ovs", "{} cleared on {}: {}", rule, bridge, subject);
      OvsEvent e;
      e.time = std::chrono::system_clock::now();
      e.kind = OvsEvent::Kind::kClean;
      e.bridge = bridge;
      e.table = it->second.table;
      e.rule = rule;
      e.subject = subject;
      events_.push(std::move(e));
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, v] : now_dirty) {
    if (active_.count(key) != 0) continue;
    active_.emplace(key, *v);
    log::warn("ovs", "dirty flow: {} on {}: {} ({})", v->rule, v->bridge, v->subject, v->detail);
    {
      std::lock_guard lock(stats_->mu);
      ++stats_->dirty_events[{v->bridge, v->rule}];
    }
    OvsEvent e;
    e.time = std::chrono::system_clock::now();
    e.kind = OvsEvent::Kind::kDirty;
    e.bridge = v->bridge;
    e.table = v->table;
    e.rule = v->rule;
    e.subject = v->subject;
    e.detail = v->detail;
    events_.push(std::move(e));
  }
}

}  // namespace hvtel::ovs_service
