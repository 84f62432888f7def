#include "ovs/ovsdb/db.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

namespace hvtel::ovsdb {
namespace {

using nlohmann::json;

const TableSpec* find_table(const std::string& name) {
  for (const auto& t : monitored_tables()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

const ColumnSpec* find_column(const TableSpec& t, const std::string& name) {
  for (const auto& c : t.columns) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

Datum empty_datum(ColumnKind kind) {
  Datum d;
  d.is_map = kind == ColumnKind::kMap;
  return d;
}

// A full row ("initial", "insert", RFC 7047 "new"): absent columns hold their
// default, which ovsdb-server leaves out (empty set/map for our columns).
Result<Row> decode_full_row(const TableSpec& t, const json& j) {
  if (!j.is_object()) return fail("row is not an object");
  Row row;
  for (const auto& c : t.columns) row.emplace(c.name, empty_datum(c.kind));
  for (const auto& [col, value] : j.items()) {
    const ColumnSpec* cs = find_column(t, col);
    if (cs == nullptr) continue;  // a column we did not ask for: ignore
    auto d = decode_datum(value);
    if (!d) return fail(d.error().context(fmt::format("column {}", col)));
    row[col] = std::move(*d);
  }
  return row;
}

Status apply_modify2(const TableSpec& t, Row& row, const json& j) {
  if (!j.is_object()) return fail("modify is not an object");
  for (const auto& [col, value] : j.items()) {
    const ColumnSpec* cs = find_column(t, col);
    if (cs == nullptr) continue;
    auto d = decode_datum(value);
    if (!d) return fail(d.error().context(fmt::format("column {}", col)));
    auto it = row.find(col);
    Datum old = it == row.end() ? empty_datum(cs->kind) : it->second;
    row[col] = apply_diff(old, *d, cs->kind);
  }
  return {};
}

template <typename RowFn>
Status for_each_row(const json& updates, RowFn&& fn) {
  if (!updates.is_object()) return fail("table updates are not an object");
  for (const auto& [table, rows] : updates.items()) {
    const TableSpec* t = find_table(table);
    if (t == nullptr) continue;
    if (!rows.is_object()) return fail(fmt::format("table {}: rows are not an object", table));
    for (const auto& [uuid, update] : rows.items()) {
      if (!update.is_object()) return fail(fmt::format("{} {}: update is not an object", table, uuid));
      auto st = fn(*t, uuid, update);
      if (!st) return fail(st.error().context(fmt::format("{} {}", table, uuid)));
    }
  }
  return {};
}

}  // namespace

const std::vector<TableSpec>& monitored_tables() {
  using K = ColumnKind;
  static const std::vector<TableSpec> kTables = {
      {"Open_vSwitch", {{"external_ids", K::kMap}}},
      {"Bridge",
       {{"name", K::kScalar},
        {"fail_mode", K::kScalar},
        {"protocols", K::kSet},
        {"datapath_type", K::kScalar},
        {"ports", K::kSet},
        {"external_ids", K::kMap}}},
      {"Port",
       {{"name", K::kScalar},
        {"tag", K::kScalar},
        {"vlan_mode", K::kScalar},
        {"trunks", K::kSet},
        {"interfaces", K::kSet},
        {"other_config", K::kMap}}},
      {"Interface",
       {{"name", K::kScalar},
        {"type", K::kScalar},
        {"ofport", K::kScalar},
        {"error", K::kScalar},
        {"external_ids", K::kMap},
        {"options", K::kMap},
        {"link_state", K::kScalar},
        {"admin_state", K::kScalar},
        {"mac_in_use", K::kScalar}}},
  };
  return kTables;
}

Status apply_table_updates2(Database& db, const json& updates, bool initial) {
  // Decode into a copy so that a malformed message leaves the replica untouched.
  Database next = initial ? Database{} : db;
  auto st = for_each_row(updates, [&](const TableSpec& t, const std::string& uuid,
                                      const json& u) -> Status {
    Table& table = next[t.name];
    if (auto it = u.find("initial"); it != u.end()) {
      auto row = decode_full_row(t, *it);
      if (!row) return fail(row.error());
      table[uuid] = std::move(*row);
    } else if (auto ins = u.find("insert"); ins != u.end()) {
      auto row = decode_full_row(t, *ins);
      if (!row) return fail(row.error());
      table[uuid] = std::move(*row);
    } else if (auto mod = u.find("modify"); mod != u.end()) {
      auto rit = table.find(uuid);
      if (rit == table.end()) return fail("modify of an unknown row");
      return apply_modify2(t, rit->second, *mod);
    } else if (u.contains("delete")) {
      table.erase(uuid);
    } else {
      return fail("row update2 has none of initial/insert/modify/delete");
    }
    return {};
  });
  if (!st) return st;
  db = std::move(next);
  return {};
}

Status apply_table_updates(Database& db, const json& updates, bool initial) {
  Database next = initial ? Database{} : db;
  auto st = for_each_row(updates, [&](const TableSpec& t, const std::string& uuid,
                                      const json& u) -> Status {
    Table& table = next[t.name];
    auto nit = u.find("new");
    if (nit == u.end() || nit->is_null()) {
      table.erase(uuid);  // "old" only: deleted
      return {};
    }
    // RFC 7047 "new" carries every monitored column, also on modify.
    auto row = decode_full_row(t, *nit);
    if (!row) return fail(row.error());
    table[uuid] = std::move(*row);
    return {};
  });
  if (!st) return st;
  db = std::move(next);
  return {};
}

}  // namespace hvtel::ovsdb
