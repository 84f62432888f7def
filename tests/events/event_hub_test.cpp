#include "events/event_hub.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "events/pinning_source.h"

namespace hvtel::events {
namespace {

using namespace std::chrono_literals;

AgentEvent ev(std::string source, std::string instance, std::string text, int64_t t = 1000) {
  AgentEvent e;
  e.time_ms = t;
  e.source = std::move(source);
  e.kind = "k";
  e.instance_id = std::move(instance);
  e.text = std::move(text);
  return e;
}

std::vector<std::string> texts(const HubBatch& b) {
  std::vector<std::string> out;
  for (const auto& e : b.events) out.push_back(e.text);
  return out;
}

TEST(EventHub, NumbersEventsAndReadsAfterACursor) {
  EventHub hub;
  EXPECT_EQ(hub.last_seq(), 0u);
  EXPECT_EQ(hub.publish(ev("pinning", "a", "one")), 1u);
  EXPECT_EQ(hub.publish(ev("ovs", "b", "two")), 2u);
  EXPECT_EQ(hub.publish(ev("pinning", "b", "three")), 3u);
  auto all = hub.since(0, 100);
  EXPECT_EQ(texts(all), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(all.events[1].seq, 2u);
  EXPECT_EQ(all.cursor, 3u);
  EXPECT_EQ(all.missed, 0u);
  auto after = hub.since(1, 100);
  EXPECT_EQ(texts(after), (std::vector<std::string>{"two", "three"}));
  auto limited = hub.since(0, 2);
  EXPECT_EQ(texts(limited), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(limited.cursor, 2u);  // resume right after the last returned
  auto none = hub.since(3, 100);
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.cursor, 3u);
  EXPECT_FALSE(none.reset);
}

TEST(EventHub, FilterAdvancesTheCursorPastNonMatchingEvents) {
  EventHub hub;
  hub.publish(ev("pinning", "a", "one"));
  hub.publish(ev("ovs", "b", "two"));
  hub.publish(ev("pinning", "b", "three"));
  hub.publish(ev("ovs", "a", "four"));
  auto pin = hub.since(0, 100, [](const AgentEvent& e) { return e.source == "pinning"; });
  EXPECT_EQ(texts(pin), (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(pin.cursor, 4u);
  auto b = hub.since(0, 1, [](const AgentEvent& e) { return e.instance_id == "b"; });
  EXPECT_EQ(texts(b), (std::vector<std::string>{"two"}));
  EXPECT_EQ(b.cursor, 2u);
}

TEST(EventHub, RingIsBoundedAndReportsMissed) {
  EventHub hub(HubOptions{.capacity = 3, .max_text = 8});
  for (int i = 1; i <= 5; ++i) hub.publish(ev("s", "", "e" + std::to_string(i)));
  hub.publish(ev("s", "", "0123456789abc"));  // seq 6, truncated
  auto b = hub.since(0, 100);
  EXPECT_EQ(texts(b), (std::vector<std::string>{"e4", "e5", "01234567..."}));
  EXPECT_EQ(b.missed, 3u);
  EXPECT_EQ(b.cursor, 6u);
  auto c = hub.since(4, 100);
  EXPECT_EQ(c.missed, 0u);
  EXPECT_EQ(texts(c), (std::vector<std::string>{"e5", "01234567..."}));
}

TEST(EventHub, CursorAheadOfTheHubIsAReset) {
  EventHub hub;
  hub.publish(ev("s", "", "one"));
  auto b = hub.since(42, 100);
  EXPECT_TRUE(b.reset);
  EXPECT_EQ(texts(b), (std::vector<std::string>{"one"}));
  EXPECT_EQ(b.cursor, 1u);
}

TEST(EventHub, PollsSourcesInOrderWithTheirCursors) {
  EventHub hub(HubOptions{.capacity = 100, .max_text = 100, .max_per_source_poll = 2});
  std::vector<uint64_t> asked;
  uint64_t produced = 5;  // the source holds its events 1..produced
  hub.add_source(make_source("ovs", [&](uint64_t cursor, size_t max) {
    asked.push_back(cursor);
    SourceBatch b;
    for (uint64_t s = cursor + 1; s <= produced && b.events.size() < max; ++s) {
      AgentEvent e;
      e.kind = "flow_added";
      e.text = "ovs" + std::to_string(s);
      b.events.push_back(e);
      b.next_cursor = s;
    }
    if (b.events.empty()) b.next_cursor = cursor;
    b.missed = cursor == 0 ? 7 : 0;
    return b;
  }));
  EXPECT_EQ(hub.poll_sources(), 5u);  // drained in rounds of 2
  EXPECT_EQ(asked, (std::vector<uint64_t>{0, 2, 4}));
  auto b = hub.since(0, 100);
  EXPECT_EQ(texts(b), (std::vector<std::string>{"ovs1", "ovs2", "ovs3", "ovs4", "ovs5"}));
  EXPECT_EQ(b.events[0].source, "ovs");  // filled in from the source's name
  EXPECT_GT(b.events[0].time_ms, 0);     // stamped by the hub
  EXPECT_EQ(hub.source_missed(), 7u);
  produced = 6;
  EXPECT_EQ(hub.poll_sources(), 1u);
  EXPECT_EQ(asked.back(), 5u);
  EXPECT_EQ(hub.last_seq(), 6u);
}

TEST(EventHub, LongPollWakesOnAMatchingEventAndTimesOut) {
  EventHub hub;
  hub.publish(ev("ovs", "a", "old"));
  auto start = std::chrono::steady_clock::now();
  auto empty = hub.wait_since(1, 100ms, 10);
  EXPECT_TRUE(empty.events.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(empty.cursor, 1u);

  std::thread producer([&] {
    std::this_thread::sleep_for(50ms);
    hub.publish(ev("ovs", "a", "not this"));
    std::this_thread::sleep_for(50ms);
    hub.publish(ev("pinning", "a", "this"));
  });
  auto b = hub.wait_since(1, 10s, 10, [](const AgentEvent& e) { return e.source == "pinning"; });
  producer.join();
  EXPECT_EQ(texts(b), (std::vector<std::string>{"this"}));
  EXPECT_EQ(b.cursor, 3u);
}

TEST(EventHub, CloseEndsLongPolls) {
  EventHub hub;
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    hub.close();
  });
  auto start = std::chrono::steady_clock::now();
  auto b = hub.wait_since(0, 30s, 10);
  closer.join();
  EXPECT_TRUE(b.events.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(EventHub, PumpThreadPullsSources) {
  EventHub hub;
  std::atomic<int> polls{0};
  hub.add_source(make_source("x", [&](uint64_t cursor, size_t) {
    ++polls;
    SourceBatch b;
    b.next_cursor = 1;
    if (cursor == 0) b.events.push_back(ev("", "i", "pumped"));
    return b;
  }));
  hub.start(10ms);
  auto b = hub.wait_since(0, 10s, 10);
  hub.stop();
  EXPECT_EQ(texts(b), (std::vector<std::string>{"pumped"}));
  EXPECT_EQ(b.events[0].source, "x");
  EXPECT_GE(polls.load(), 1);
}

TEST(EventJson, RoundTripAndIsoTime) {
  EXPECT_EQ(format_time_iso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time_iso8601(1714557600123), "2024-05-01T10:00:00.123Z");
  AgentEvent e = ev("pinning", "inst", "text \"quoted\"", 1714557600123);
  e.seq = 9;
  e.fields = {{"vcpu", 0}, {"class", "pin_changed"}};
  auto j = to_json(e);
  EXPECT_EQ(j.dump(),
            "{\"fields\":{\"class\":\"pin_changed\",\"vcpu\":0},\"instance_id\":\"inst\","
            "\"kind\":\"k\",\"seq\":9,\"source\":\"pinning\",\"text\":\"text \\\"quoted\\\"\","
            "\"time\":\"2024-05-01T10:00:00.123Z\",\"time_ms\":1714557600123}");
  auto back = event_from_json(j);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seq, 9u);
  EXPECT_EQ(back->time_ms, 1714557600123);
  EXPECT_EQ(back->text, e.text);
  EXPECT_EQ(back->fields, e.fields);
  EXPECT_FALSE(event_from_json(nlohmann::json{{"cursor", 3}}));
  EXPECT_FALSE(event_from_json(nlohmann::json{{"seq", "x"}, {"source", "s"}}));
}

TEST(PinningSource, ConvertsRegistryEvents) {
  pinning::ViolationEvent v;
  v.time_ns = 5'000'000'000;
  v.kind = pinning::EventKind::kKernel;
  v.instance_id = "inst-a";
  v.cls = pinning::ViolationClass::kPinChanged;
  v.vcpu = 0;
  v.pcpu = 1;
  v.intruder_comm = "taskset";
  v.intruder_pid = 42;
  v.detail = "tid=7";
  AgentEvent e = from_violation(v, /*wall_now_ms=*/1'000'000, /*mono_now_ns=*/7'500'000'000);
  EXPECT_EQ(e.source, "pinning");
  EXPECT_EQ(e.kind, "pin_changed");
  EXPECT_EQ(e.instance_id, "inst-a");
  EXPECT_EQ(e.time_ms, 1'000'000 - 2'500);
  EXPECT_EQ(e.text, "kernel pin_changed inst-a vcpu=0 pcpu=1 intruder=taskset[42]: tid=7");
  EXPECT_EQ(e.fields.dump(),
            "{\"class\":\"pin_changed\",\"detail\":\"tid=7\",\"event\":\"kernel\","
            "\"intruder_comm\":\"taskset\",\"intruder_pid\":42,\"pcpu\":1,\"vcpu\":0}");
  v.vcpu = -1;
  v.pcpu = -1;
  v.intruder_comm.clear();
  v.intruder_pid = 0;
  v.detail.clear();
  v.duration_ns = 3000;
  v.time_ns = 9'000'000'000;  // after "now": clamp to now
  e = from_violation(v, 1'000'000, 7'500'000'000);
  EXPECT_EQ(e.time_ms, 1'000'000);
  EXPECT_EQ(e.fields.dump(),
            "{\"class\":\"pin_changed\",\"duration_ns\":3000,\"event\":\"kernel\"}");
}

TEST(PinningSource, FollowsTheRegistry) {
  auto registry = std::make_shared<pinning::ViolationRegistry>();
  registry->reconcile({"inst-a"}, {});
  EventHub hub;
  hub.add_source(pinning_source(registry));
  pinning::ViolationEvent v;
  v.instance_id = "inst-a";
  v.cls = pinning::ViolationClass::kOffpinRun;
  v.vcpu = 1;
  ASSERT_TRUE(registry->publish(v));
  v.cls = pinning::ViolationClass::kPinChanged;
  ASSERT_TRUE(registry->publish(v));
  v.instance_id = "untracked";
  EXPECT_FALSE(registry->publish(v));
  EXPECT_EQ(hub.poll_sources(), 2u);
  EXPECT_EQ(hub.poll_sources(), 0u);  // nothing twice
  auto b = hub.since(0, 10);
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].kind, "offpin_run");
  EXPECT_EQ(b.events[1].kind, "pin_changed");
  EXPECT_EQ(b.events[1].fields["vcpu"], 1);
  EXPECT_EQ(b.events[1].instance_id, "inst-a");
}

}  // namespace
}  // namespace hvtel::events
