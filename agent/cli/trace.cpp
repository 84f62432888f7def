#include "cli/trace.h"

#include <fmt/core.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <ctime>

#include "base/http/http_client.h"

namespace hvtel::cli {
namespace {

constexpr uint32_t kWaitMs = 1000;  // also how quickly Ctrl-C is noticed at worst
constexpr size_t kMax = 1000;

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

void write_out(const std::string& s) {
  fwrite(s.data(), 1, s.size(), stdout);
  fflush(stdout);
}

}  // namespace

std::string events_target(const std::string& since, uint32_t wait_ms, size_t max,
                          const std::string& source, const std::string& instance) {
  std::string t = fmt::format("/events?since={}&wait_ms={}&max={}", since.empty() ? "now" : since,
                              wait_ms, max);
  if (!source.empty()) t += "&source=" + url_encode(source);
  if (!instance.empty()) t += "&instance=" + url_encode(instance);
  return t;
}

std::string format_trace_line(const events::AgentEvent& e) {
  return fmt::format("{} {:<7} {}", events::format_time_iso8601(e.time_ms), e.source,
                     e.text.empty() ? e.kind + " " + e.instance_id : e.text);
}

int cmd_trace(const TraceOptions& opts) {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;  // no SA_RESTART: a blocked read returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::string since = opts.from_start ? "0" : "";
  bool connected = false, lost = false;
  auto backoff = std::chrono::milliseconds(250);
  while (!g_stop) {
    // The first poll returns at once: it tells "not there" from "went away".
    const uint32_t wait_ms = connected ? kWaitMs : 0;
    auto resp = http::http_get(opts.agent,
                         events_target(since, wait_ms, kMax, opts.source, opts.instance),
                         std::chrono::milliseconds(wait_ms + 10000));
    if (g_stop) break;
    if (!resp) {
      if (resp.error().err == EINTR) continue;
      if (!connected) {
        fmt::print(stderr, "hvtel trace: cannot reach the agent at {}: {} (is `hvtel serve` "
                   "running with --events-listen?)\n", opts.agent, resp.error().message);
        return 1;
      }
      // An agent restart (rollout, crash): keep following. The new agent's
      // ring starts over, and its first answer says so (reset).
      if (!lost)
        fmt::print(stderr, "hvtel trace: lost the agent at {}: {}; reconnecting\n", opts.agent,
                   resp.error().message);
      lost = true;
      // nanosleep, not sleep_for: a stop signal interrupts it (EINTR).
      const timespec ts{static_cast<time_t>(backoff.count() / 1000),
                        static_cast<long>(backoff.count() % 1000) * 1000000L};
      nanosleep(&ts, nullptr);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    if (lost) {
      fmt::print(stderr, "hvtel trace: reconnected to the agent at {}\n", opts.agent);
      lost = false;
      backoff = std::chrono::milliseconds(250);
    }
    if (resp->status != 200) {
      fmt::print(stderr, "hvtel trace: the agent at {} answered HTTP {}: {}", opts.agent,
                 resp->status, resp->body);
      return 1;
    }
    connected = true;
    // JSON lines; the last one is the cursor.
    std::string out;
    nlohmann::json tail;
    size_t pos = 0;
    const std::string& body = resp->body;
    while (pos < body.size()) {
      size_t eol = body.find('\n', pos);
      std::string line = body.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
      pos = eol == std::string::npos ? body.size() : eol + 1;
      if (line.empty()) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        fmt::print(stderr, "hvtel trace: skipping a malformed line from the agent\n");
        continue;
      }
      if (j.contains("cursor")) {
        tail = std::move(j);
        continue;
      }
      if (opts.json && !opts.keep) {
        out += line + "\n";
        continue;
      }
      auto ev = events::event_from_json(j);
      if (!ev) {
        fmt::print(stderr, "hvtel trace: {}\n", ev.error().message);
        continue;
      }
      if (opts.keep && !opts.keep(*ev)) continue;
      out += opts.json ? line + "\n" : format_trace_line(*ev) + "\n";
    }
    if (!out.empty()) write_out(out);
    if (!tail.is_object() || !tail["cursor"].is_number_unsigned()) {
      fmt::print(stderr, "hvtel trace: the agent's answer has no cursor line\n");
      return 1;
    }
    if (tail.value("reset", false))
      fmt::print(stderr, "hvtel trace: the agent restarted; following from its oldest event\n");
    if (uint64_t missed = tail.value("missed", uint64_t{0}); missed > 0)
      fmt::print(stderr, "hvtel trace: {} events missed (left the agent's ring)\n", missed);
    since = std::to_string(tail["cursor"].get<uint64_t>());
  }
  return 0;
}

}  // namespace hvtel::cli
