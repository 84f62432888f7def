// The flow-monitor sink of the OpenFlow fuzz targets: renders every decoded flow as dump-flows text,
// so the canonical formatting runs on whatever the decoders accepted.
#pragma once

#include "ovs/openflow/canonical.h"
#include "ovs/openflow/flow_monitor.h"

namespace hvtel::fuzz {

struct RenderingSink : ovs::FlowMonitorSink {
  void on_protocol(ovs::MonitorProtocol p) override { (void)ovs::monitor_protocol_name(p); }
  void on_resync_start() override {}
  void on_flow(const ovs::FlowUpdate& u) override {
    (void)ovs::flow_event_name(u.event);
    (void)ovs::removed_reason_name(u.reason);
    (void)ovs::render_match(u.match);
    (void)ovs::render_actions(u.actions.actions);
  }
  void on_resync_complete() override {}
  void on_paused() override {}
  void on_resumed() override {}
  void on_disconnect(const std::string&) override {}
};

}  // namespace hvtel::fuzz
