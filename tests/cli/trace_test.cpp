#include "cli/trace.h"

#include <gtest/gtest.h>

namespace hvtel::cli {
namespace {

TEST(Trace, RequestTarget) {
  EXPECT_EQ(events_target("", 1000, 500, "", ""), "/events?since=now&wait_ms=1000&max=500");
  EXPECT_EQ(events_target("42", 0, 1, "pinning", "a b/c&d"),
            "/events?since=42&wait_ms=0&max=1&source=pinning&instance=a%20b%2Fc%26d");
}

TEST(Trace, HumanLine) {
  events::AgentEvent e;
  e.time_ms = 1714557600123;
  e.source = "pinning";
  e.kind = "pin_changed";
  e.instance_id = "inst";
  e.text = "kernel pin_changed inst vcpu=0";
  EXPECT_EQ(format_trace_line(e), "2024-05-01T10:00:00.123Z pinning kernel pin_changed inst vcpu=0");
  e.source = "ovs";
  e.text.clear();
  e.kind = "flow_added";
  EXPECT_EQ(format_trace_line(e), "2024-05-01T10:00:00.123Z ovs     flow_added inst");
}

}  // namespace
}  // namespace hvtel::cli
