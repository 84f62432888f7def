#include "events/event_server.h"

#include <CivetServer.h>
#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <optional>
#include <set>

namespace hvtel::events {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return fail("truncated %-escape");
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return fail("bad %-escape");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<uint64_t> to_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<EventsQuery> parse_events_query(std::string_view query) {
  EventsQuery q;
  std::set<std::string> seen;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    std::string_view part = query.substr(pos, amp == std::string_view::npos ? query.npos : amp - pos);
    pos = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
    if (part.empty()) continue;
    size_t eq = part.find('=');
    auto key = url_decode(part.substr(0, eq));
    if (!key) return fail(key.error().context("query"));
    auto value = url_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    if (!value) return fail(value.error().context(*key));
    if (!seen.insert(*key).second) return fail(fmt::format("{}: given more than once", *key));
    const std::string& v = *value;
    if (*key == "since") {
      if (v == "now") {
        q.since_now = true;
      } else {
        auto n = to_u64(v);
        if (!n) return fail(fmt::format("since: '{}' is not a sequence number or 'now'", v));
        q.since = *n;
      }
    } else if (*key == "wait_ms") {
      auto n = to_u64(v);
      if (!n || *n > kMaxWaitMs)
        return fail(fmt::format("wait_ms: '{}' is not an integer in 0..{}", v, kMaxWaitMs));
      q.wait_ms = static_cast<uint32_t>(*n);
    } else if (*key == "max") {
      auto n = to_u64(v);
      if (!n || *n < 1 || *n > kMaxEvents)
        return fail(fmt::format("max: '{}' is not an integer in 1..{}", v, kMaxEvents));
      q.max = static_cast<size_t>(*n);
    } else if (*key == "source") {
      if (v.empty() || v.size() > 64) return fail("source: empty or too long");
      q.source = v;
    } else if (*key == "instance") {
      if (v.empty() || v.size() > 256) return fail("instance: empty or too long");
      q.instance = v;
    } else {
      return fail(fmt::format("unknown parameter '{}' (since, wait_ms, max, source, instance)",
                              *key));
    }
  }
  return q;
}

HttpReply handle_events_request(const EventHub& hub, std::string_view query,
                                const std::atomic<bool>* stopping) {
  auto q = parse_events_query(query);
  if (!q) return HttpReply{400, "text/plain; charset=utf-8", q.error().message + "\n"};
  EventHub::Filter filter;
  if (!q->source.empty() || !q->instance.empty()) {
    filter = [src = q->source, inst = q->instance](const AgentEvent& e) {
      return (src.empty() || e.source == src) && (inst.empty() || e.instance_id == inst);
    };
  }
  if (!q->source.empty()) hub.note_reader(q->source);
  const uint64_t since = q->since_now ? hub.last_seq() : q->since;
  HubBatch batch = hub.since(since, q->max, filter);
  // Long poll in slices so a server shutdown is never held up for long.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(q->wait_ms);
  while (batch.events.empty()) {
    if (stopping && stopping->load()) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    HubBatch more = hub.wait_since(batch.cursor, std::min(left, std::chrono::milliseconds(250)),
                                   q->max, filter);
    batch.events = std::move(more.events);
    batch.cursor = more.cursor;
    batch.missed += more.missed;
  }
  // Again at the end: a follower is there for as long as its long polls last.
  if (!q->source.empty()) hub.note_reader(q->source);
  std::string body;
  for (const auto& e : batch.events) {
    body += to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    body += '\n';
  }
  nlohmann::json tail = {{"cursor", batch.cursor}, {"missed", batch.missed}};
  if (batch.reset) tail["reset"] = true;
  body += tail.dump();
  body += '\n';
  return HttpReply{200, "application/x-ndjson", std::move(body)};
}

namespace {
class EventsHandler : public CivetHandler {
 public:
  EventsHandler(const EventHub& hub, const std::atomic<bool>& stopping)
      : hub_(hub), stopping_(stopping) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    const mg_request_info* ri = mg_get_request_info(conn);
    std::string_view query = ri && ri->query_string ? ri->query_string : "";
    HttpReply r = handle_events_request(hub_, query, &stopping_);
    const char* reason = r.status == 200 ? "OK" : "Bad Request";
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
              r.status, reason, r.content_type.c_str(), r.body.size());
    mg_write(conn, r.body.data(), r.body.size());
    return true;
  }

 private:
  const EventHub& hub_;
  const std::atomic<bool>& stopping_;
};
}  // namespace

struct EventServer::Impl {
  std::atomic<bool> stopping{false};
  std::unique_ptr<EventsHandler> handler;
  std::unique_ptr<CivetServer> server;
};

EventServer::EventServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventServer::~EventServer() {
  impl_->stopping = true;
  impl_->server.reset();  // joins the workers; a long poll ends within 250 ms
}

Result<std::unique_ptr<EventServer>> EventServer::start(const EventHub& hub,
                                                       const std::string& listen,
                                                       unsigned threads) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::make_unique<EventsHandler>(hub, impl->stopping);
  std::vector<std::string> options{"listening_ports", listen,
                                   "num_threads",     std::to_string(threads < 1 ? 1 : threads),
                                   // a request must arrive within this (slowloris)
                                   "request_timeout_ms", "5000",
                                   "enable_keep_alive", "no"};
  try {
    impl->server = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    return fail(fmt::format("listen on {}: {}", listen, e.what()));
  }
  impl->server->addHandler("/events", impl->handler.get());
  return std::unique_ptr<EventServer>(new EventServer(std::move(impl)));
}

std::vector<int> EventServer::ports() const { return impl_->server->getListeningPorts(); }

}  // namespace hvtel::events
