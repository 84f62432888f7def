#include "ovs/ovsdb/session.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "base/util/log.h"

namespace hvtel::ovsdb {
namespace {

using nlohmann::json;

// The monitor id (json-value) that tags our update notifications.
constexpr const char* kMonitorTag = "hvtel";
constexpr const char* kEchoId = "hvtel-echo";

json monitor_requests(bool cond) {
  json tables = json::object();
  for (const auto& t : monitored_tables()) {
    json cols = json::array();
    for (const auto& c : t.columns) cols.push_back(c.name);
    json req = {{"columns", cols}};
    // monitor_cond takes an array of requests per table; monitor a single object.
    tables[t.name] = cond ? json::array({req}) : req;
  }
  return tables;
}

}  // namespace

void Session::on_connect(TimePoint now) {
  framer_.reset();
  db_.clear();
  out_.clear();
  synced_ = false;
  changed_ = true;  // the previous contents are gone
  monitor_cond_ = true;
  last_rx_ = now;
  probe_outstanding_ = false;
  send_monitor();
}

void Session::send_monitor() {
  monitor_id_ = next_id_++;
  json req = {{"method", monitor_cond_ ? "monitor_cond" : "monitor"},
              {"params", json::array({kDatabase, kMonitorTag, monitor_requests(monitor_cond_)})},
              {"id", monitor_id_}};
  send(req);
}

void Session::send(const json& msg) { out_ += msg.dump(); }

std::string Session::take_output() {
  std::string s;
  s.swap(out_);
  return s;
}

bool Session::take_changed() {
  bool c = changed_;
  changed_ = false;
  return c;
}

Status Session::on_bytes(std::string_view bytes, TimePoint now) {
  last_rx_ = now;
  probe_outstanding_ = false;  // any traffic proves the server is alive
  if (auto st = framer_.feed(bytes); !st) {
    ++stats_.parse_errors;
    return st;
  }
  while (auto text = framer_.pop()) {
    ++stats_.messages;
    json msg;
    try {
      msg = json::parse(*text);
    } catch (const json::exception& e) {
      ++stats_.parse_errors;
      return fail(fmt::format("malformed JSON-RPC message: {}", e.what()));
    }
    Status st;
    try {
      st = handle(msg);
    } catch (const json::exception& e) {
      st = fail(fmt::format("unexpected JSON-RPC message shape: {}", e.what()));
    }
    if (!st) {
      ++stats_.protocol_errors;
      return st;
    }
  }
  return {};
}

Status Session::on_tick(TimePoint now) {
  if (now - last_rx_ < opts_.probe_interval) return {};
  if (probe_outstanding_) {
    if (now - last_rx_ >= 2 * opts_.probe_interval) {
      return fail(fmt::format("no reply from ovsdb-server for {} ms",
                              std::chrono::duration_cast<std::chrono::milliseconds>(now - last_rx_)
                                  .count()));
    }
    return {};
  }
  send(json{{"method", "echo"}, {"params", json::array()}, {"id", kEchoId}});
  probe_outstanding_ = true;
  return {};
}

Status Session::handle(const json& msg) {
  if (!msg.is_object()) return fail("JSON-RPC message is not an object");
  auto method = msg.find("method");
  if (method == msg.end()) return handle_reply(msg);
  if (!method->is_string()) return fail("JSON-RPC method is not a string");
  const std::string& m = method->get_ref<const std::string&>();
  const json params = msg.value("params", json::array());
  const json id = msg.value("id", json(nullptr));

  if (m == "echo") {
    // RFC 7047 §4.1.11: reply with the same params. ovsdb-server drops silent clients.
    send(json{{"id", id}, {"result", params}, {"error", nullptr}});
    ++stats_.echo_replies;
    return {};
  }
  if (m == "update" || m == "update2") {
    if (!params.is_array() || params.size() != 2) return fail(m + ": params are not [id, updates]");
    if (params[0] != json(kMonitorTag)) return {};  // not our monitor
    if (!synced_) return fail(m + " before the monitor reply");
    auto st = m == "update2" ? apply_table_updates2(db_, params[1], false)
                             : apply_table_updates(db_, params[1], false);
    if (!st) return fail(st.error().context(m));
    ++stats_.updates;
    changed_ = true;
    return {};
  }
  // Notifications we did not ask for (locked, stolen, update3...): ignore.
  // Requests need an answer, or the server may wait on us.
  if (!id.is_null()) send(json{{"id", id}, {"result", nullptr}, {"error", "unknown method"}});
  log::debug("ovsdb", "ignoring JSON-RPC method {}", m);
  return {};
}

Status Session::handle_reply(const json& msg) {
  auto id = msg.find("id");
  if (id == msg.end()) return fail("JSON-RPC message has neither method nor id");
  if (*id == json(kEchoId)) return {};  // our probe came back
  if (!id->is_number_integer() || id->get<int64_t>() != monitor_id_) {
    log::debug("ovsdb", "reply to unknown id {}", id->dump());
    return {};
  }
  const json error = msg.value("error", json(nullptr));
  if (!error.is_null()) {
    if (monitor_cond_) {
      // OVS < 2.6 has no monitor_cond; RFC 7047 monitor works everywhere.
      log::info("ovsdb", "monitor_cond rejected ({}), falling back to monitor", error.dump());
      monitor_cond_ = false;
      send_monitor();
      return {};
    }
    return fail(fmt::format("monitor rejected: {}", error.dump()));
  }
  auto result = msg.find("result");
  if (result == msg.end()) return fail("monitor reply has no result");
  auto st = monitor_cond_ ? apply_table_updates2(db_, *result, true)
                          : apply_table_updates(db_, *result, true);
  if (!st) return fail(st.error().context("monitor reply"));
  synced_ = true;
  changed_ = true;
  monitor_id_ = 0;
  return {};
}

}  // namespace hvtel::ovsdb
