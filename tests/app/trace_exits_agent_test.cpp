// The agent path of `hvtel trace exits` without a kernel: the hub tells the
// exit source whether anyone follows it, and the CLI's filter of agent events.
#include <gtest/gtest.h>

#include <chrono>

#include "app/tap_owners.h"
#include "app/trace_exits.h"
#include "events/event_hub.h"
#include "events/event_server.h"
#include "support/proc_fixture.h"

namespace hvtel {
namespace {

TEST(TraceExitsAgent, TheHubRecordsReadersPerSource) {
  events::EventHub hub;
  EXPECT_FALSE(hub.last_read("exits").has_value());
  const auto before = std::chrono::steady_clock::now();
  auto reply = events::handle_events_request(hub, "since=now&source=exits");
  EXPECT_EQ(reply.status, 200);
  auto read = hub.last_read("exits");
  ASSERT_TRUE(read.has_value());
  EXPECT_GE(*read, before);
  // A reader of everything, or of another source, is no reader of "exits".
  events::EventHub other;
  EXPECT_EQ(events::handle_events_request(other, "since=now").status, 200);
  EXPECT_EQ(events::handle_events_request(other, "since=now&source=pinning").status, 200);
  EXPECT_FALSE(other.last_read("exits").has_value());
  EXPECT_TRUE(other.last_read("pinning").has_value());
  // A bad request is no reader either.
  events::EventHub bad;
  EXPECT_EQ(events::handle_events_request(bad, "source=exits&bogus=1").status, 400);
  EXPECT_FALSE(bad.last_read("exits").has_value());
}

TEST(TraceExitsAgent, MadeUpSourcesDoNotGrowTheReaderTable) {
  events::EventHub hub;
  hub.note_reader("exits");
  for (int i = 0; i < 1000; ++i) hub.note_reader("made-up-" + std::to_string(i));
  // The oldest went first; the last 64 are kept.
  EXPECT_FALSE(hub.last_read("exits").has_value());
  EXPECT_FALSE(hub.last_read("made-up-935").has_value());
  EXPECT_TRUE(hub.last_read("made-up-936").has_value());
  EXPECT_TRUE(hub.last_read("made-up-999").has_value());
}

events::AgentEvent exit_event(const char* id, int vcpu, uint64_t latency, const char* vmm_reason) {
  events::AgentEvent e;
  e.source = "exits";
  e.kind = "exit";
  e.instance_id = id;
  e.fields = {{"vcpu", vcpu}, {"latency_ns", latency}};
  e.fields["vmm_reason"] = vmm_reason ? nlohmann::json(vmm_reason) : nlohmann::json(nullptr);
  return e;
}

TEST(TraceExitsAgent, TheClientFiltersExitsAndKeepsStatusEvents) {
  using app::keep_agent_exit;
  auto io = exit_event("a", 1, 5000, "io");
  auto npf = exit_event("a", 0, 800, nullptr);
  EXPECT_TRUE(keep_agent_exit(io, "", -1, 0, false));
  EXPECT_TRUE(keep_agent_exit(io, "a", -1, 0, false));
  EXPECT_FALSE(keep_agent_exit(io, "b", -1, 0, false));
  EXPECT_TRUE(keep_agent_exit(io, "a", 1, 0, false));
  EXPECT_FALSE(keep_agent_exit(io, "a", 0, 0, false));
  EXPECT_TRUE(keep_agent_exit(io, "a", 1, 5000, false));
  EXPECT_FALSE(keep_agent_exit(io, "a", 1, 5001, false));
  EXPECT_TRUE(keep_agent_exit(io, "a", 1, 0, true));
  EXPECT_FALSE(keep_agent_exit(npf, "a", -1, 0, true));
  EXPECT_TRUE(keep_agent_exit(npf, "a", 0, 800, false));
  events::AgentEvent drops;
  drops.source = "exits";
  drops.kind = "drops";
  EXPECT_TRUE(keep_agent_exit(drops, "b", 3, 1000000, true));
}

// The instance behind a tap is the VMM that holds it: named from its command line,
// or as the agent knows it; a tap nobody holds stays unnamed.
TEST(TraceUpcallsAgent, TheOwnerOfATapIsTheVmmHoldingIt) {
  testing::ProcFixture fx;
  fx.add_process(100,
                 {"qemu-system-x86_64", "-uuid", "11111111-2222-3333-4444-555555555555", "-name",
                  "guest=instance-0000002a,debug-threads=on"},
                 "qemu-system-x86", 1);
  fx.add_fd(100, 30, "/dev/net/tun");
  fx.write("100/fdinfo/30", "pos:\t0\niff:\ttap1234\n");
  fx.add_process(200, {"qemu-system-x86_64", "-name", "guest=other"}, "qemu-system-x86", 1);
  fx.add_fd(200, 31, "/dev/net/tun");
  fx.write("200/fdinfo/31", "pos:\t0\niff:\ttap5678\n");
  discovery::ProcFs proc(fx.root());
  kvm::VmmNamer names(proc, [](pid_t pid) -> std::optional<discovery::VmmIdentity> {
    if (pid == 200) return discovery::VmmIdentity{"99999999-0000-4000-8000-000000000001", "nova-name"};
    return std::nullopt;
  });
  app::TapOwners owners(proc, names);
  auto a = owners.owner("tap1234");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->instance_id, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(a->instance_name, "instance-0000002a");
  EXPECT_EQ(a->pid, 100);
  auto b = owners.owner("tap5678");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->instance_id, "99999999-0000-4000-8000-000000000001");
  EXPECT_EQ(b->instance_name, "nova-name");
  EXPECT_FALSE(owners.owner("eth0").has_value());
}

TEST(TraceUpcallsAgent, TheClientFiltersUpcallsByInstance) {
  events::AgentEvent e;
  e.source = "upcalls";
  e.kind = "upcall";
  e.instance_id = "a";
  e.fields = {{"port", "tap1234"}, {"cmd", "miss"}};
  EXPECT_TRUE(app::keep_traced_event(e, "upcall", "", -1, 0, false));
  EXPECT_TRUE(app::keep_traced_event(e, "upcall", "a", -1, 0, false));
  EXPECT_FALSE(app::keep_traced_event(e, "upcall", "b", -1, 0, false));
}

}  // namespace
}  // namespace hvtel
