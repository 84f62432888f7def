// The raw replica of the monitored OVSDB tables and how updates apply to it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <string>
#include <vector>

#include "ovs/ovsdb/datum.h"
#include "base/util/result.h"

namespace hvtel::ovsdb {

using Row = std::map<std::string, Datum>;       // column -> value
using Table = std::map<std::string, Row>;       // row UUID -> row
using Database = std::map<std::string, Table>;  // table -> rows

struct ColumnSpec {
  const char* name;
  ColumnKind kind;
};
struct TableSpec {
  const char* name;
  std::vector<ColumnSpec> columns;
};

// The Open_vSwitch tables and columns hvtel monitors, with the kind of each
// column in vswitch.ovsschema (optional single values are kScalar).
const std::vector<TableSpec>& monitored_tables();

// Applies a <table-updates2> object (monitor_cond reply or update2 params[1]).
// `initial` replaces the whole replica first (the monitor_cond reply).
Status apply_table_updates2(Database& db, const nlohmann::json& updates, bool initial);
// Applies a <table-updates> object (RFC 7047 monitor reply or update params[1]).
Status apply_table_updates(Database& db, const nlohmann::json& updates, bool initial);

}  // namespace hvtel::ovsdb
