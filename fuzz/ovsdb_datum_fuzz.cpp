// One JSON value as it appears inside OVSDB updates:
//  - decode_atom / decode_datum and the typed views;
//  - a JSON array of values: each neighbouring pair as old value and update2 diff, for every
//    column kind; a set diff applied twice must give back the old set (symmetric difference);
//  - the value as <table-updates2> and <table-updates> (initial, then again as a change), the
//    replica built into a PortModel.
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "fuzz_input.h"
#include "ovs/ovsdb/datum.h"
#include "ovs/ovsdb/db.h"
#include "ovs/ovsdb/port_model.h"

using namespace hvtel::ovsdb;
using nlohmann::json;

namespace {

void views(const Datum& d) {
  (void)d.string();
  (void)d.integer();
  (void)d.strings();
  (void)d.integers();
  (void)d.string_map();
  for (const auto& a : d.set) (void)atom_to_string(a);
}

void diffs(const json& j) {
  if (!j.is_array()) return;
  std::vector<Datum> values;
  for (const auto& e : j) {
    if (auto d = decode_datum(e)) values.push_back(std::move(*d));
  }
  for (size_t i = 1; i < values.size(); ++i) {
    const Datum& old = values[i - 1];
    const Datum& diff = values[i];
    for (auto kind : {ColumnKind::kScalar, ColumnKind::kSet, ColumnKind::kMap}) views(apply_diff(old, diff, kind));
    if (!old.is_map && !diff.is_map &&
        !(apply_diff(apply_diff(old, diff, ColumnKind::kSet), diff, ColumnKind::kSet) == old)) {
      std::abort();
    }
  }
}

template <typename Apply>
void replica(const json& j, Apply apply) {
  Database db;
  if (!apply(db, j, true)) return;
  PortModel first = build_port_model(db, nullptr, TimePoint{}, 1, true);
  if (!apply(db, j, false)) return;
  PortModel second = build_port_model(db, &first, TimePoint{} + std::chrono::seconds(1), 2, true);
  for (const auto& b : second.bridges) (void)PortModel::same_content(b, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hvtel::fuzz::Input in(data, size);
  json j = json::parse(in.text(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  (void)decode_atom(j);
  if (auto d = decode_datum(j)) views(*d);
  diffs(j);
  replica(j, [](Database& db, const json& u, bool initial) { return apply_table_updates2(db, u, initial); });
  replica(j, [](Database& db, const json& u, bool initial) { return apply_table_updates(db, u, initial); });
  return 0;
}
