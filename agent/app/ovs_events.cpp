#include "app/ovs_events.h"

#include <chrono>

namespace hvtel::app {
namespace {

events::AgentEvent to_agent_event(const ovs_service::OvsEvent& e, ovs_service::OvsService& svc) {
  events::AgentEvent a;
  a.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.time.time_since_epoch()).count();
  a.source = "ovs";
  if (e.kind == ovs_service::OvsEvent::Kind::kFlowChange) {
    a.kind = e.change == ovs::ChangeKind::kAdd      ? "flow_added"
             : e.change == ovs::ChangeKind::kModify ? "flow_modified"
                                                    : "flow_deleted";
    a.text = e.bridge + " " + e.subject + (e.reason.empty() ? "" : " (" + e.reason + ")");
    a.fields = {{"bridge", e.bridge}, {"table", e.table}, {"reason", e.reason},
                {"from_resync", e.from_resync}};
    return a;
  }
  a.kind = e.kind == ovs_service::OvsEvent::Kind::kDirty ? "dirty_flow" : "dirty_flow_cleared";
  a.text = e.rule + " on " + e.bridge + ": " + e.subject + (e.detail.empty() ? "" : " (" + e.detail + ")");
  a.fields = {{"bridge", e.bridge}, {"rule", e.rule}, {"table", e.table},
              {"subject", e.subject}, {"detail", e.detail}};
  // R16 subjects are interface names: attach the instance when known.
  if (e.table < 0) a.instance_id = svc.instance_of_interface(e.subject);
  return a;
}

}  // namespace

std::unique_ptr<events::EventSource> ovs_event_source(ovs_service::OvsService& svc) {
  return events::make_source("ovs", [&svc](uint64_t cursor, size_t max) {
    events::SourceBatch b;
    b.next_cursor = cursor;
    for (const auto& e : svc.events_since(cursor, max)) {
      if (e.seq > b.next_cursor + 1) b.missed += e.seq - b.next_cursor - 1;  // left the ring
      b.next_cursor = e.seq;
      b.events.push_back(to_agent_event(e, svc));
    }
    return b;
  });
}

}  // namespace hvtel::app
