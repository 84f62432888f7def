#include "ovs/ovsdb/datum.h"

#include <fmt/core.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace hvtel::ovsdb {
namespace {

using nlohmann::json;

void normalize_set(std::vector<Atom>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool is_tagged(const json& j, const char* tag) {
  return j.is_array() && j.size() == 2 && j[0].is_string() && j[0].get_ref<const std::string&>() == tag;
}

}  // namespace

Result<Atom> decode_atom(const json& j) {
  switch (j.type()) {
    case json::value_t::string:
      return Atom{j.get<std::string>()};
    case json::value_t::number_integer:
      return Atom{j.get<int64_t>()};
    case json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return fail("integer atom out of range");
      return Atom{static_cast<int64_t>(u)};
    }
    case json::value_t::number_float:
      return Atom{j.get<double>()};
    case json::value_t::boolean:
      return Atom{j.get<bool>()};
    case json::value_t::array:
      if ((is_tagged(j, "uuid") || is_tagged(j, "named-uuid")) && j[1].is_string()) {
        return Atom{Uuid{j[1].get<std::string>()}};
      }
      return fail("array is not an atom");
    default:
      return fail(fmt::format("unexpected {} where an atom was expected", j.type_name()));
  }
}

Result<Datum> decode_datum(const json& j) {
  Datum d;
  if (is_tagged(j, "set")) {
    if (!j[1].is_array()) return fail("[\"set\", ...] needs an array");
    for (const auto& e : j[1]) {
      auto a = decode_atom(e);
      if (!a) return fail(a.error().context("set element"));
      d.set.push_back(std::move(*a));
    }
    normalize_set(d.set);
    return d;
  }
  if (is_tagged(j, "map")) {
    if (!j[1].is_array()) return fail("[\"map\", ...] needs an array");
    d.is_map = true;
    for (const auto& pair : j[1]) {
      if (!pair.is_array() || pair.size() != 2) return fail("map entry is not a [key, value] pair");
      auto k = decode_atom(pair[0]);
      if (!k) return fail(k.error().context("map key"));
      auto v = decode_atom(pair[1]);
      if (!v) return fail(v.error().context("map value"));
      d.map.emplace_back(std::move(*k), std::move(*v));
    }
    std::sort(d.map.begin(), d.map.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    // Duplicate keys are invalid OVSDB; keep the first rather than fail the row.
    d.map.erase(std::unique(d.map.begin(), d.map.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }),
                d.map.end());
    return d;
  }
  auto a = decode_atom(j);
  if (!a) return fail(a.error());
  d.set.push_back(std::move(*a));
  return d;
}

Datum apply_diff(const Datum& old, const Datum& diff, ColumnKind kind) {
  switch (kind) {
    case ColumnKind::kScalar:
      return diff;
    case ColumnKind::kSet: {
      Datum out;
      std::set_symmetric_difference(old.set.begin(), old.set.end(), diff.set.begin(),
                                    diff.set.end(), std::back_inserter(out.set));
      return out;
    }
    case ColumnKind::kMap: {
      std::map<Atom, Atom> m(old.map.begin(), old.map.end());
      for (const auto& [k, v] : diff.map) {
        auto it = m.find(k);
        if (it == m.end()) {
          m.emplace(k, v);
        } else if (it->second == v) {
          m.erase(it);
        } else {
          it->second = v;
        }
      }
      Datum out;
      out.is_map = true;
      out.map.assign(m.begin(), m.end());
      return out;
    }
  }
  return diff;
}

std::optional<std::string> Datum::string() const {
  if (is_map || set.size() != 1) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(&set[0])) return *s;
  if (const auto* u = std::get_if<Uuid>(&set[0])) return u->value;
  return std::nullopt;
}

std::optional<int64_t> Datum::integer() const {
  if (is_map || set.size() != 1) return std::nullopt;
  if (const auto* i = std::get_if<int64_t>(&set[0])) return *i;
  return std::nullopt;
}

std::vector<std::string> Datum::strings() const {
  std::vector<std::string> out;
  if (is_map) return out;
  for (const auto& a : set) {
    if (const auto* s = std::get_if<std::string>(&a)) out.push_back(*s);
    if (const auto* u = std::get_if<Uuid>(&a)) out.push_back(u->value);
  }
  return out;
}

std::vector<int64_t> Datum::integers() const {
  std::vector<int64_t> out;
  if (is_map) return out;
  for (const auto& a : set) {
    if (const auto* i = std::get_if<int64_t>(&a)) out.push_back(*i);
  }
  return out;
}

std::map<std::string, std::string> Datum::string_map() const {
  std::map<std::string, std::string> out;
  if (!is_map) return out;
  for (const auto& [k, v] : map) {
    const auto* ks = std::get_if<std::string>(&k);
    const auto* vs = std::get_if<std::string>(&v);
    if (ks && vs) out.emplace(*ks, *vs);
  }
  return out;
}

std::string atom_to_string(const Atom& a) {
  struct V {
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return fmt::format("{}", d); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(const Uuid& u) const { return u.value; }
  };
  return std::visit(V{}, a);
}

}  // namespace hvtel::ovsdb
