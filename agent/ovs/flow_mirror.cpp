#include "ovs/flow_mirror.h"

#include "util/log.h"

namespace hvtel::ovs {

const char* change_kind_name(ChangeKind k) {
  switch (k) {
    case ChangeKind::kAdd: return "add";
    case ChangeKind::kModify: return "modify";
    case ChangeKind::kDelete: return "delete";
  }
  return "unknown";
}

uint64_t MirrorSnapshot::total_flows() const {
  uint64_t n = 0;
  for (const auto& [t, s] : tables) n += s.flows;
  return n;
}

uint64_t MirrorSnapshot::total_changes(ChangeKind k) const {
  uint64_t n = 0;
  for (const auto& [t, s] : tables) n += s.changes[static_cast<size_t>(k)];
  return n;
}

FlowMirror::FlowMirror(std::string bridge, Clock clock)
    : bridge_(std::move(bridge)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::system_clock::now(); };
  stats_.bridge = bridge_;
}

void FlowMirror::set_change_callback(std::function<void(const FlowChange&)> cb) {
  std::lock_guard lock(mu_);
  callback_ = std::move(cb);
}

void FlowMirror::record(ChangeKind k, const MirrorFlow& f, std::optional<std::string> reason,
                        bool resync, std::vector<FlowChange>& out) {
  stats_.tables[f.key.table].changes[static_cast<size_t>(k)]++;
  ++stats_.change_seq;
  if (callback_) {
    out.push_back(FlowChange{bridge_, f.key.table, k, f.identity().to_string(), std::move(reason),
                             resync});
  }
}

void FlowMirror::notify(const std::vector<FlowChange>& changes) {
  std::function<void(const FlowChange&)> cb;
  {
    std::lock_guard lock(mu_);
    cb = callback_;
  }
  if (!cb) return;
  for (const auto& c : changes) cb(c);
}

void FlowMirror::apply(Table& t, const FlowUpdate& u, bool count, std::vector<FlowChange>& out) {
  FlowKey key{u.table, u.priority, render_match(u.match)};
  auto now = clock_();
  auto it = t.find(key);
  if (u.event == FlowEvent::kDeleted) {
    if (it == t.end()) return;  // never seen (e.g. deleted before our snapshot)
    MirrorFlow gone = std::move(it->second);
    t.erase(it);
    if (count) {
      auto& ts = stats_.tables[key.table];
      if (ts.flows) --ts.flows;
      record(ChangeKind::kDelete, gone, removed_reason_name(u.reason), false, out);
    }
    return;
  }
  bool existed = it != t.end();
  MirrorFlow& f = existed ? it->second : t[key];
  if (!existed) {
    f.key = key;
    f.first_seen = now;
  }
  f.cookie = u.cookie;
  f.match = u.match;
  f.idle_timeout = u.idle_timeout;
  f.hard_timeout = u.hard_timeout;
  if (u.has_actions) {
    f.actions = u.actions;
    f.actions_text = render_actions(u.actions.actions);
    f.actions_known = true;
  } else if (!existed) {
    f.actions_known = false;
  }
  f.last_change = now;
  if (count) {
    if (!existed) stats_.tables[key.table].flows++;
    record(existed ? ChangeKind::kModify : ChangeKind::kAdd, f, std::nullopt, false, out);
  }
}

void FlowMirror::on_protocol(MonitorProtocol p) {
  std::lock_guard lock(mu_);
  if (p != stats_.protocol) {
    log::info("ovs", "bridge {}: flow monitor speaks {}", bridge_, monitor_protocol_name(p));
  }
  stats_.protocol = p;
}

void FlowMirror::on_resync_start() {
  std::lock_guard lock(mu_);
  pending_.emplace();
  stats_.view_complete = false;
  paused_ = false;
}

void FlowMirror::on_flow(const FlowUpdate& u) {
  std::vector<FlowChange> out;
  {
    std::lock_guard lock(mu_);
    if (pending_) {
      // Still inside a resync: build the new view; differences are reported
      // when the snapshot completes.
      apply(*pending_, u, false, out);
    } else {
      apply(flows_, u, true, out);
    }
  }
  notify(out);
}

void FlowMirror::on_resync_complete() {
  std::vector<FlowChange> out;
  {
    std::lock_guard lock(mu_);
    if (!pending_) return;
    Table fresh = std::move(*pending_);
    pending_.reset();
    if (baseline_done_) {
      for (auto& [key, old] : flows_) {
        auto it = fresh.find(key);
        if (it == fresh.end()) {
          record(ChangeKind::kDelete, old, std::string("resync"), true, out);
          continue;
        }
        MirrorFlow& nf = it->second;
        bool changed = nf.cookie != old.cookie || nf.actions_text != old.actions_text ||
                       nf.idle_timeout != old.idle_timeout || nf.hard_timeout != old.hard_timeout;
        nf.first_seen = old.first_seen;
        if (changed) {
          record(ChangeKind::kModify, nf, std::nullopt, true, out);
        } else {
          nf.last_change = old.last_change;
        }
      }
      for (auto& [key, nf] : fresh) {
        if (!flows_.contains(key)) record(ChangeKind::kAdd, nf, std::nullopt, true, out);
      }
    }
    flows_ = std::move(fresh);
    for (auto& [t, ts] : stats_.tables) ts.flows = 0;
    for (const auto& [key, f] : flows_) stats_.tables[key.table].flows++;
    baseline_done_ = true;
    ++stats_.resyncs;
    stats_.monitor_up = true;
    stats_.view_complete = !paused_;
  }
  notify(out);
}

void FlowMirror::on_paused() {
  std::lock_guard lock(mu_);
  paused_ = true;
  ++stats_.pauses;
  stats_.view_complete = false;
  log::warn("ovs", "bridge {}: flow monitor paused by ovs-vswitchd (view incomplete)", bridge_);
}

void FlowMirror::on_resumed() {
  std::lock_guard lock(mu_);
  paused_ = false;
  stats_.view_complete = !pending_.has_value() && baseline_done_;
}

void FlowMirror::on_disconnect(const std::string& why) {
  std::lock_guard lock(mu_);
  pending_.reset();
  paused_ = false;
  stats_.monitor_up = false;
  stats_.view_complete = false;
  ++stats_.disconnects;
}

void FlowMirror::on_decode_error(const std::string& why) {
  std::lock_guard lock(mu_);
  ++stats_.decode_errors;
  log::warn("ovs", "bridge {}: flow monitor decode error: {}", bridge_, why);
}

void FlowMirror::on_version_mismatch(const std::string&) {
  // The client logs it (once per episode); here it is only counted.
  std::lock_guard lock(mu_);
  ++stats_.version_mismatches;
}

MirrorSnapshot FlowMirror::snapshot() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::vector<FlowIdentity> FlowMirror::identities() const {
  std::lock_guard lock(mu_);
  std::vector<FlowIdentity> out;
  out.reserve(flows_.size());
  for (const auto& [k, f] : flows_) out.push_back(f.identity());
  return out;
}

std::vector<MirrorFlow> FlowMirror::flows() const {
  std::lock_guard lock(mu_);
  std::vector<MirrorFlow> out;
  out.reserve(flows_.size());
  for (const auto& [k, f] : flows_) out.push_back(f);
  return out;
}

std::optional<MirrorFlow> FlowMirror::find(const FlowKey& key) const {
  std::lock_guard lock(mu_);
  auto it = flows_.find(key);
  if (it == flows_.end()) return std::nullopt;
  return it->second;
}

bool FlowMirror::view_complete() const {
  std::lock_guard lock(mu_);
  return stats_.view_complete;
}

uint64_t FlowMirror::change_seq() const {
  std::lock_guard lock(mu_);
  return stats_.change_seq;
}

}  // namespace hvtel::ovs
