#include "ovs/openflow/flow_mirror.h"

#include <algorithm>

#include "base/util/log.h"

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

namespace {

// A flow seen only without actions reads as an empty list with text "".
const MirrorActions& or_none(const std::shared_ptr<const MirrorActions>& p) {
  static const MirrorActions kNone;
  return p ? *p : kNone;
}

// Nobody reads the wire bytes back; they would only keep equal lists apart.
void drop_raw(std::vector<Action>& actions) {
  for (auto& a : actions) {
    Bytes().swap(a.raw);
    drop_raw(a.nested);
  }
}

}  // namespace

const ActionList& MirrorFlow::actions() const {
  return or_none(shared_actions).list;
}

const std::string& MirrorFlow::actions_text() const {
  return or_none(shared_actions).text;
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

MirrorFlow FlowMirror::materialize(const FlowKey& key, const Entry& e) {
  return MirrorFlow{key,          e.cookie,          e.actions,    e.actions_known, e.idle_timeout,
                    e.hard_timeout, e.first_seen, e.last_change, e.match_fields};
}

void FlowMirror::record(ChangeKind k, const FlowKey& key, const Entry& e,
                        std::optional<std::string> reason, bool resync,
                        std::vector<FlowChange>& out) {
  stats_.tables[key.table].changes[static_cast<size_t>(k)]++;
  ++stats_.change_seq;
  if (callback_) {
    out.push_back(FlowChange{bridge_, key.table, k, materialize(key, e).identity().to_string(),
                             std::move(reason), resync});
  }
}

std::shared_ptr<const MirrorActions> FlowMirror::intern(const ActionList& list) {
  std::string text = render_actions(list.actions);
  const size_t h = std::hash<std::string>{}(text);
  std::optional<ActionList> bare;  // 'list' without wire bytes, made on the first candidate
  auto strip = [&] {
    bare = list;
    drop_raw(bare->actions);
    Bytes().swap(bare->raw);
  };
  auto [first, last] = actions_pool_.equal_range(h);
  for (auto it = first; it != last; ++it) {
    const MirrorActions& have = *it->second;
    if (have.text != text || have.list.actions.size() != list.actions.size()) continue;
    if (!bare) strip();
    if (have.list == *bare) return it->second;
  }
  if (!bare) strip();
  bare->actions.shrink_to_fit();
  text.shrink_to_fit();
  auto fresh = std::make_shared<const MirrorActions>(MirrorActions{std::move(*bare), std::move(text)});
  actions_pool_.emplace(h, fresh);
  if (actions_pool_.size() >= pool_sweep_at_) sweep_actions();
  return fresh;
}

void FlowMirror::sweep_actions() {
  // use_count() == 1: only the pool holds it. Under mu_ no flow can take a new
  // reference, and a reader's copy would make the count at least 2.
  std::erase_if(actions_pool_, [](const auto& kv) { return kv.second.use_count() == 1; });
  pool_sweep_at_ = std::max<size_t>(1024, 2 * actions_pool_.size());
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
    auto gone = t.extract(it);
    if (count) {
      auto& ts = stats_.tables[key.table];
      if (ts.flows) --ts.flows;
      record(ChangeKind::kDelete, gone.key(), gone.mapped(), removed_reason_name(u.reason), false,
             out);
    }
    return;
  }
  bool existed = it != t.end();
  if (!existed) {
    key.match.shrink_to_fit();  // render_match() grows it by appending
    it = t.emplace(std::move(key), Entry{}).first;
    it->second.first_seen = now;
    it->second.match_fields = pack_match_fields(u.match);
  }
  Entry& f = it->second;
  f.cookie = u.cookie;
  f.idle_timeout = u.idle_timeout;
  f.hard_timeout = u.hard_timeout;
  if (u.has_actions) {
    f.actions = intern(u.actions);
    f.actions_known = true;
  } else if (!existed) {
    f.actions_known = false;
  }
  f.last_change = now;
  if (count) {
    if (!existed) stats_.tables[it->first.table].flows++;
    record(existed ? ChangeKind::kModify : ChangeKind::kAdd, it->first, f, std::nullopt, false,
           out);
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
          record(ChangeKind::kDelete, key, old, std::string("resync"), true, out);
          continue;
        }
        Entry& nf = it->second;
        bool changed = nf.cookie != old.cookie ||
                       or_none(nf.actions).text != or_none(old.actions).text ||
                       nf.idle_timeout != old.idle_timeout || nf.hard_timeout != old.hard_timeout;
        nf.first_seen = old.first_seen;
        if (changed) {
          record(ChangeKind::kModify, key, nf, std::nullopt, true, out);
        } else {
          nf.last_change = old.last_change;
        }
      }
      for (auto& [key, nf] : fresh) {
        if (!flows_.contains(key)) record(ChangeKind::kAdd, key, nf, std::nullopt, true, out);
      }
    }
    flows_ = std::move(fresh);
    sweep_actions();  // the old table's lists
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
  for (const auto& [k, f] : flows_) out.push_back(materialize(k, f).identity());
  return out;
}

std::vector<MirrorFlow> FlowMirror::flows() const {
  std::lock_guard lock(mu_);
  std::vector<MirrorFlow> out;
  out.reserve(flows_.size());
  for (const auto& [k, f] : flows_) out.push_back(materialize(k, f));
  return out;
}

std::optional<MirrorFlow> FlowMirror::find(const FlowKey& key) const {
  std::lock_guard lock(mu_);
  auto it = flows_.find(key);
  if (it == flows_.end()) return std::nullopt;
  return materialize(it->first, it->second);
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
