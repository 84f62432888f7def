// Bridge flow monitors and their Prometheus view.
//
// FlowMonitorSet owns one (FlowMirror, FlowMonitorClient) pair per bridge and
// follows a bridge list supplied from outside (the OVSDB client owns the
// inventory; tests list <rundir>/*.mgmt). OvsFlowCollector exports, per scrape,
// from the mirrors' cheap counter snapshots:
//   hvtel_ovs_flows{bridge,table}                          gauge
//   hvtel_ovs_flow_changes_total{bridge,table,event}       counter
//   hvtel_ovs_monitor_up{bridge}                           gauge
//   hvtel_ovs_monitor_view_complete{bridge}                gauge
//   hvtel_ovs_monitor_resyncs_total{bridge}                counter
//   hvtel_ovs_monitor_info{bridge,protocol}                gauge (1)
//   hvtel_ovs_monitor_version_mismatches_total{bridge}     counter
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "ovs/openflow/flow_mirror.h"
#include "ovs/openflow/flow_monitor.h"
#include "base/util/result.h"

namespace hvtel::ovs {

// Read side used by the collector and the rule engine.
class MirrorSource {
 public:
  virtual ~MirrorSource() = default;
  virtual std::vector<std::shared_ptr<const FlowMirror>> mirrors() const = 0;
};

class FlowMonitorSet : public MirrorSource {
 public:
  // rundir holds <bridge>.mgmt (OVS_RUNDIR, /var/run/openvswitch by default).
  explicit FlowMonitorSet(std::string rundir, FlowMonitorClient::Options opts = {});
  ~FlowMonitorSet() override;

  // Starts monitors for new bridges and stops those no longer listed.
  void set_bridges(const std::vector<std::string>& bridges);
  std::vector<std::shared_ptr<const FlowMirror>> mirrors() const override;
  std::shared_ptr<FlowMirror> mirror(const std::string& bridge) const;
  // Installs the live-CLI change callback on current and future mirrors.
  void set_change_callback(std::function<void(const FlowChange&)> cb);
  void stop_all();

 private:
  struct Entry {
    std::shared_ptr<FlowMirror> mirror;
    std::unique_ptr<FlowMonitorClient> client;
  };
  std::string rundir_;
  FlowMonitorClient::Options opts_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::function<void(const FlowChange&)> callback_;
};

// Bridge names with a "<name>.mgmt" socket in rundir (test/standalone helper).
Result<std::vector<std::string>> list_mgmt_bridges(const std::string& rundir);

class OvsFlowCollector : public prometheus::Collectable {
 public:
  explicit OvsFlowCollector(std::shared_ptr<const MirrorSource> source)
      : source_(std::move(source)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<const MirrorSource> source_;
};

}  // namespace hvtel::ovs
