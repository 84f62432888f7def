// The OVS service's flow changes and dirty-flow findings as an event source
// of the live CLI (hvtel trace --source ovs).
#pragma once

#include <memory>

#include "events/event_hub.h"
#include "ovs/service/ovs_service.h"

namespace hvtel::app {

// Reads `svc`'s event ring; `svc` must outlive the source.
std::unique_ptr<events::EventSource> ovs_event_source(ovs_service::OvsService& svc);

}  // namespace hvtel::app
