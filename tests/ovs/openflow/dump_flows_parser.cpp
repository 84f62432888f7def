#include "dump_flows_parser.h"

#include <fmt/core.h>

#include <charconv>

#include "base/util/strings.h"

namespace hvtel::ovs {
namespace {

std::optional<uint64_t> parse_num(std::string_view s) {
  if (starts_with(s, "0x") || starts_with(s, "0X")) return parse_u64(s, 16);
  return parse_u64(s, 10);
}

// Reads "<digits>[.<digits>]s".
std::optional<double> parse_duration(std::string_view s) {
  if (s.empty() || s.back() != 's') return std::nullopt;
  s.remove_suffix(1);
  size_t dot = s.find('.');
  auto whole = parse_u64(s.substr(0, dot));
  if (!whole) return std::nullopt;
  double v = static_cast<double>(*whole);
  if (dot != std::string_view::npos) {
    std::string_view frac = s.substr(dot + 1);
    if (frac.empty() || frac.size() > 9) return std::nullopt;
    auto f = parse_u64(frac);
    if (!f) return std::nullopt;
    double scale = 1;
    for (size_t i = 0; i < frac.size(); ++i) scale *= 10;
    v += static_cast<double>(*f) / scale;
  }
  return v;
}

}  // namespace

std::vector<std::string> split_actions(std::string_view actions) {
  std::vector<std::string> out;
  int paren = 0, bracket = 0;
  size_t start = 0;
  for (size_t i = 0; i < actions.size(); ++i) {
    char c = actions[i];
    if (c == '(')
      ++paren;
    else if (c == ')' && paren > 0)
      --paren;
    else if (c == '[')
      ++bracket;
    else if (c == ']' && bracket > 0)
      --bracket;
    else if (c == ',' && paren == 0 && bracket == 0) {
      out.emplace_back(actions.substr(start, i - start));
      start = i + 1;
    }
  }
  if (start < actions.size()) out.emplace_back(actions.substr(start));
  return out;
}

Result<std::optional<DumpedFlow>> parse_dump_flow_line(std::string_view line) {
  std::string_view s = trim(line);
  if (!starts_with(s, "cookie=") && !starts_with(s, "table=")) return std::optional<DumpedFlow>{};

  size_t act = s.find(" actions=");
  std::string_view head;
  std::string_view actions;
  if (act != std::string_view::npos) {
    head = s.substr(0, act);
    actions = s.substr(act + 9);
  } else if (starts_with(s, "actions=")) {
    actions = s.substr(8);
  } else {
    // "priority=0,actions=drop" style is not what dump-flows prints; accept the
    // ",actions=" separator anyway for hand-written fixtures.
    size_t a2 = s.find(",actions=");
    if (a2 == std::string_view::npos) return fail("no actions= in flow line");
    head = s.substr(0, a2);
    actions = s.substr(a2 + 9);
  }
  if (actions.empty()) return fail("empty actions");

  DumpedFlow f;
  f.id.actions = std::string(actions);

  // The head is "key=value, key=value, ..., <flag> <flag> [priority=N,]<match>".
  // Stats are separated by ", "; the match is the remainder after the last ", "
  // that starts a recognized stats key or flag.
  std::string_view rest = head;
  // OVS prints stats, then flags, then importance/idle_age/hard_age stats.
  for (bool more = true; more;) {
    more = false;
    while (!rest.empty()) {
      size_t sep = rest.find(", ");
      std::string_view tok = sep == std::string_view::npos ? rest : rest.substr(0, sep);
      // With an empty match at default priority the last stat keeps its comma:
      // "idle_age=1, actions=drop".
      if (sep == std::string_view::npos && !tok.empty() && tok.back() == ',') tok.remove_suffix(1);
      // Flags are separated by single spaces and may precede the match.
      size_t eq = tok.find('=');
      std::string_view key = tok.substr(0, eq);
      std::string_view val = eq == std::string_view::npos ? std::string_view{} : tok.substr(eq + 1);
      bool consumed = true;
      if (key == "cookie") {
        auto v = parse_num(val);
        if (!v) return fail(fmt::format("bad cookie '{}'", val));
        f.id.cookie = *v;
      } else if (key == "duration") {
        auto v = parse_duration(val);
        if (!v) return fail(fmt::format("bad duration '{}'", val));
        f.duration_s = *v;
      } else if (key == "table") {
        auto v = parse_u64(val);
        if (!v || *v > 254) return fail(fmt::format("bad table '{}'", val));
        f.id.table = static_cast<uint8_t>(*v);
      } else if (key == "n_packets" || key == "n_bytes") {
        std::optional<uint64_t> v;
        if (val != "?") {
          v = parse_u64(val);
          if (!v) return fail(fmt::format("bad {} '{}'", key, val));
        }
        (key == "n_packets" ? f.n_packets : f.n_bytes) = v;
      } else if (key == "idle_timeout" || key == "hard_timeout" || key == "importance") {
        auto v = parse_u64(val);
        if (!v || *v > 65535) return fail(fmt::format("bad {} '{}'", key, val));
        (key == "idle_timeout"   ? f.idle_timeout
         : key == "hard_timeout" ? f.hard_timeout
                                 : f.importance) = static_cast<uint16_t>(*v);
      } else if (key == "idle_age" || key == "hard_age") {
        auto v = parse_u64(val);
        if (!v) return fail(fmt::format("bad {} '{}'", key, val));
        (key == "idle_age" ? f.idle_age : f.hard_age) = *v;
      } else {
        consumed = false;
      }
      if (!consumed) break;
      rest = sep == std::string_view::npos ? std::string_view{} : rest.substr(sep + 2);
    }

    // Leading flags ("send_flow_rem check_overlap ...") are space separated.
    while (true) {
      size_t sp = rest.find(' ');
      if (sp == std::string_view::npos) break;
      std::string_view word = rest.substr(0, sp);
      static constexpr std::string_view kFlags[] = {
          "send_flow_rem",  "check_overlap",       "reset_counts",     "no_packet_counts",
          "no_byte_counts", "allow_hidden_fields", "no_readonly_table"};
      bool is_flag = false;
      for (auto fl : kFlags) is_flag |= word == fl;
      if (!is_flag) break;
      f.flags.emplace_back(word);
      rest = rest.substr(sp + 1);
      more = true;
    }
  }

  if (starts_with(rest, "priority=")) {
    size_t comma = rest.find(',');
    std::string_view pv =
        rest.substr(9, comma == std::string_view::npos ? rest.size() - 9 : comma - 9);
    auto p = parse_u64(pv);
    if (!p || *p > 65535) return fail(fmt::format("bad priority '{}'", pv));
    f.id.priority = static_cast<uint16_t>(*p);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  if (rest.find(' ') != std::string_view::npos) {
    return fail(fmt::format("unexpected text in match '{}'", rest));
  }
  f.id.match = std::string(rest);
  return std::optional<DumpedFlow>(std::move(f));
}

DumpParseResult parse_dump_flows(std::string_view text) {
  DumpParseResult out;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? text.size() - pos : nl - pos);
    ++line_no;
    auto r = parse_dump_flow_line(line);
    if (!r) {
      out.errors.push_back(fmt::format("line {}: {}", line_no, r.error().message));
    } else if (*r) {
      out.flows.push_back(std::move(**r));
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

}  // namespace hvtel::ovs
