#include "ovs/openflow/ovs_collector.h"

#include <algorithm>

#include <prometheus/metric_family.h>

#include "base/metrics/catalog.h"
#include "base/metrics/family.h"
#include "base/util/files.h"
#include "base/util/log.h"

namespace hvtel::ovs {

FlowMonitorSet::FlowMonitorSet(std::string rundir, FlowMonitorClient::Options opts)
    : rundir_(std::move(rundir)), opts_(opts) {}

FlowMonitorSet::~FlowMonitorSet() { stop_all(); }

void FlowMonitorSet::set_bridges(const std::vector<std::string>& bridges) {
  std::map<std::string, Entry> stopped;
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (std::find(bridges.begin(), bridges.end(), it->first) == bridges.end()) {
        stopped.insert(entries_.extract(it++));
      } else {
        ++it;
      }
    }
    for (const auto& b : bridges) {
      if (entries_.contains(b)) continue;
      Entry e;
      e.mirror = std::make_shared<FlowMirror>(b);
      if (callback_) e.mirror->set_change_callback(callback_);
      e.client = std::make_unique<FlowMonitorClient>(b, rundir_ + "/" + b + ".mgmt", *e.mirror,
                                                     opts_);
      if (auto st = e.client->start(); !st) {
        log::error("ovs", "bridge {}: cannot start flow monitor: {}", b, st.error().message);
        continue;
      }
      entries_.emplace(b, std::move(e));
    }
  }
  // Join outside the lock: a stopping client may be inside a mirror callback.
  for (auto& [name, e] : stopped) e.client->stop();
}

std::vector<std::shared_ptr<const FlowMirror>> FlowMonitorSet::mirrors() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const FlowMirror>> out;
  for (const auto& [name, e] : entries_) out.push_back(e.mirror);
  return out;
}

std::shared_ptr<FlowMirror> FlowMonitorSet::mirror(const std::string& bridge) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(bridge);
  return it == entries_.end() ? nullptr : it->second.mirror;
}

void FlowMonitorSet::set_change_callback(std::function<void(const FlowChange&)> cb) {
  std::lock_guard lock(mu_);
  callback_ = cb;
  for (auto& [name, e] : entries_) e.mirror->set_change_callback(cb);
}

void FlowMonitorSet::stop_all() {
  std::map<std::string, Entry> all;
  {
    std::lock_guard lock(mu_);
    all.swap(entries_);
  }
  for (auto& [name, e] : all) e.client->stop();
}

Result<std::vector<std::string>> list_mgmt_bridges(const std::string& rundir) {
  auto names = list_dir(rundir);
  if (!names) return fail(names.error().context("list " + rundir));
  std::vector<std::string> out;
  for (const auto& n : *names) {
    constexpr std::string_view kSuffix = ".mgmt";
    if (n.size() > kSuffix.size() && n.ends_with(kSuffix)) {
      out.push_back(n.substr(0, n.size() - kSuffix.size()));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<prometheus::MetricFamily> OvsFlowCollector::Collect() const {
  namespace catalog = metrics::catalog;
  using metrics::FamilyBuilder;
  if (!source_) return {};
  FamilyBuilder flows(catalog::kOvsFlows);
  FamilyBuilder changes(catalog::kOvsFlowChanges);
  FamilyBuilder up(catalog::kOvsMonitorUp);
  FamilyBuilder complete(catalog::kOvsMonitorViewComplete);
  FamilyBuilder resyncs(catalog::kOvsMonitorResyncs);
  FamilyBuilder info(catalog::kOvsMonitorInfo);
  FamilyBuilder mismatches(catalog::kOvsMonitorVersionMismatches);
  for (const auto& m : source_->mirrors()) {
    MirrorSnapshot s = m->snapshot();
    up.add({{"bridge", s.bridge}}, s.monitor_up ? 1 : 0);
    complete.add({{"bridge", s.bridge}}, s.view_complete ? 1 : 0);
    resyncs.add({{"bridge", s.bridge}}, static_cast<double>(s.resyncs));
    mismatches.add({{"bridge", s.bridge}}, static_cast<double>(s.version_mismatches));
    if (s.protocol != MonitorProtocol::kNone)
      info.add({{"bridge", s.bridge}, {"protocol", monitor_protocol_name(s.protocol)}}, 1);
    for (const auto& [table, ts] : s.tables) {
      std::string t = std::to_string(table);
      flows.add({{"bridge", s.bridge}, {"table", t}}, static_cast<double>(ts.flows));
      for (size_t k = 0; k < ts.changes.size(); ++k) {
        changes.add({{"bridge", s.bridge},
                     {"event", change_kind_name(static_cast<ChangeKind>(k))},
                     {"table", t}},
                    static_cast<double>(ts.changes[k]));
      }
    }
  }
  return metrics::take_all({&flows, &changes, &up, &complete, &resyncs, &info, &mismatches});
}

}  // namespace hvtel::ovs
