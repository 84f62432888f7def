#include "events/event_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/http/http_client.h"
#include "support/hostile_clients.h"
#include "support/test_env.h"

namespace hvtel::events {
namespace {

using namespace std::chrono_literals;

TEST(EventsQuery, DefaultsAndValues) {
  auto q = parse_events_query("");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->since, 0u);
  EXPECT_FALSE(q->since_now);
  EXPECT_EQ(q->wait_ms, 0u);
  EXPECT_EQ(q->max, kDefaultMaxEvents);
  q = parse_events_query("since=17&wait_ms=30000&max=1&source=ovs&instance=a%2Db+c&");
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->since, 17u);
  EXPECT_EQ(q->wait_ms, 30000u);
  EXPECT_EQ(q->max, 1u);
  EXPECT_EQ(q->source, "ovs");
  EXPECT_EQ(q->instance, "a-b c");
  q = parse_events_query("since=now");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->since_now);
}

TEST(EventsQuery, BadParametersSayWhy) {
  auto msg = [](std::string_view query) {
    auto q = parse_events_query(query);
    return q ? std::string("ok") : q.error().message;
  };
  EXPECT_EQ(msg("since=-1"), "since: '-1' is not a sequence number or 'now'");
  EXPECT_EQ(msg("since="), "since: '' is not a sequence number or 'now'");
  EXPECT_EQ(msg("since=18446744073709551616"),
            "since: '18446744073709551616' is not a sequence number or 'now'");
  EXPECT_EQ(msg("wait_ms=30001"), "wait_ms: '30001' is not an integer in 0..30000");
  EXPECT_EQ(msg("wait_ms=1.5"), "wait_ms: '1.5' is not an integer in 0..30000");
  EXPECT_EQ(msg("max=0"), "max: '0' is not an integer in 1..10000");
  EXPECT_EQ(msg("max=10001"), "max: '10001' is not an integer in 1..10000");
  EXPECT_EQ(msg("since=1&since=2"), "since: given more than once");
  EXPECT_EQ(msg("bogus=1"), "unknown parameter 'bogus' (since, wait_ms, max, source, instance)");
  EXPECT_EQ(msg("source="), "source: empty or too long");
  EXPECT_EQ(msg("instance=%zz"), "instance: bad %-escape");
  EXPECT_EQ(msg("instance=%4"), "instance: truncated %-escape");
}

AgentEvent ev(std::string source, std::string instance, std::string text) {
  AgentEvent e;
  e.time_ms = 1714557600123;
  e.source = std::move(source);
  e.kind = "k";
  e.instance_id = std::move(instance);
  e.text = std::move(text);
  return e;
}

TEST(EventsRequest, JsonLinesThenTheCursor) {
  EventHub hub;
  hub.publish(ev("pinning", "a", "one"));
  hub.publish(ev("ovs", "b", "two"));
  HttpReply r = handle_events_request(hub, "since=0");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  EXPECT_EQ(r.body,
            "{\"fields\":{},\"instance_id\":\"a\",\"kind\":\"k\",\"seq\":1,\"source\":\"pinning\","
            "\"text\":\"one\",\"time\":\"2024-05-01T10:00:00.123Z\",\"time_ms\":1714557600123}\n"
            "{\"fields\":{},\"instance_id\":\"b\",\"kind\":\"k\",\"seq\":2,\"source\":\"ovs\","
            "\"text\":\"two\",\"time\":\"2024-05-01T10:00:00.123Z\",\"time_ms\":1714557600123}\n"
            "{\"cursor\":2,\"missed\":0}\n");
  r = handle_events_request(hub, "since=0&source=ovs&max=5");
  EXPECT_NE(r.body.find("\"text\":\"two\""), std::string::npos);
  EXPECT_EQ(r.body.find("\"text\":\"one\""), std::string::npos);
  EXPECT_TRUE(r.body.ends_with("{\"cursor\":2,\"missed\":0}\n"));
  r = handle_events_request(hub, "since=now");
  EXPECT_EQ(r.body, "{\"cursor\":2,\"missed\":0}\n");
  r = handle_events_request(hub, "since=7");
  EXPECT_TRUE(r.body.ends_with("{\"cursor\":2,\"missed\":0,\"reset\":true}\n")) << r.body;
  r = handle_events_request(hub, "max=abc");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "max: 'abc' is not an integer in 1..10000\n");
}

TEST(EventsRequest, MissedWhenTheRingMovedOn) {
  EventHub hub(HubOptions{.capacity = 2});
  for (int i = 0; i < 5; ++i) hub.publish(ev("s", "", "x"));
  HttpReply r = handle_events_request(hub, "since=1");
  EXPECT_TRUE(r.body.ends_with("{\"cursor\":5,\"missed\":2}\n")) << r.body;
}

TEST(EventsRequest, LongPollReturnsTheNextMatchingEvent) {
  EventHub hub;
  hub.publish(ev("s", "a", "before"));
  std::thread producer([&] {
    std::this_thread::sleep_for(100ms);
    hub.publish(ev("s", "b", "other instance"));
    std::this_thread::sleep_for(100ms);
    hub.publish(ev("s", "a", "after"));
  });
  HttpReply r = handle_events_request(hub, "since=now&wait_ms=10000&instance=a");
  producer.join();
  EXPECT_NE(r.body.find("\"text\":\"after\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("other instance"), std::string::npos);
  EXPECT_TRUE(r.body.ends_with("{\"cursor\":3,\"missed\":0}\n")) << r.body;
}

TEST(EventsRequest, StoppingCutsALongPollShort) {
  EventHub hub;
  std::atomic<bool> stopping{true};
  auto start = std::chrono::steady_clock::now();
  HttpReply r = handle_events_request(hub, "wait_ms=30000", &stopping);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(r.body, "{\"cursor\":0,\"missed\":0}\n");
}

// The real server on a loopback port, read with the CLI's HTTP client.
TEST(EventServer, ServesEventsOverHttp) {
  EventHub hub;
  auto srv = EventServer::start(hub, "127.0.0.1:0");
  ASSERT_TRUE(srv) << srv.error().message;
  ASSERT_EQ((*srv)->ports().size(), 1u);
  const std::string addr = "127.0.0.1:" + std::to_string((*srv)->ports()[0]);
  hub.publish(ev("pinning", "a", "hello"));
  auto r = http::http_get(addr, "/events?since=0", 5s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "application/x-ndjson");
  EXPECT_NE(r->body.find("\"text\":\"hello\""), std::string::npos);
  EXPECT_TRUE(r->body.ends_with("{\"cursor\":1,\"missed\":0}\n"));
  r = http::http_get(addr, "/events?since=x", 5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, "since: 'x' is not a sequence number or 'now'\n");
  // A long poll answered by a publish from another thread.
  std::thread producer([&] {
    std::this_thread::sleep_for(100ms);
    hub.publish(ev("pinning", "a", "later"));
  });
  r = http::http_get(addr, "/events?since=1&wait_ms=10000", 15s);
  producer.join();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("\"text\":\"later\""), std::string::npos);
  EXPECT_TRUE(r->body.ends_with("{\"cursor\":2,\"missed\":0}\n"));
}

TEST(EventServer, ShutdownDuringALongPoll) {
  EventHub hub;
  auto srv = EventServer::start(hub, "127.0.0.1:0");
  ASSERT_TRUE(srv);
  const std::string addr = "127.0.0.1:" + std::to_string((*srv)->ports()[0]);
  std::thread client([&] { (void)http::http_get(addr, "/events?wait_ms=30000", 40s); });
  std::this_thread::sleep_for(200ms);
  auto start = std::chrono::steady_clock::now();
  srv->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  client.join();
}

// With 4 workers, 4 idle connections delayed every request by the 10 s
// request timeout, and 8 made hvtel trace give up.
TEST(EventServer, IdleSlowAndFollowingClientsLeaveRoomForOthers) {
  EventHub hub;
  auto srv = EventServer::start(hub, "127.0.0.1:0");
  ASSERT_TRUE(srv);
  const int port = (*srv)->ports()[0];
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  testing::HostileClients hostile(port, 100, 4);
  ASSERT_EQ(hostile.connected(), 104);
  std::vector<std::thread> followers;  // hvtel trace sessions in a long poll
  for (int i = 0; i < 8; ++i)
    followers.emplace_back([&] { (void)http::http_get(addr, "/events?since=now&wait_ms=3000", 10s); });
  std::this_thread::sleep_for(300ms);
  hub.publish(ev("pinning", "a", "seen"));
  auto worst = 0ms;
  for (int i = 0; i < 10; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = http::http_get(addr, "/events?since=0", 10s);
    worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - t0));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_NE(r->body.find("\"text\":\"seen\""), std::string::npos);
  }
  for (auto& t : followers) t.join();
  testing::figure("events_ms_worst_with_100_idle_4_slowloris_8_followers", worst.count());
  EXPECT_LT(worst, 1000ms);  // starved, a request waited for the 10 s request timeout
}

TEST(EventServer, BadListenAddressIsAnError) {
  EventHub hub;
  auto srv = EventServer::start(hub, "256.0.0.1:1");
  EXPECT_FALSE(srv);
}

}  // namespace
}  // namespace hvtel::events
