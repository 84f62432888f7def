// OVSDB values (RFC 7047 §5.1) decoded from their JSON wire form.
//
//   atom:  "str" | 42 | 1.5 | true | ["uuid","..."] | ["named-uuid","..."]
//   set:   atom (a one-element set) | ["set",[atom...]]
//   map:   ["map",[[key,value]...]]
//
// A Datum holds either a set (scalars are one-element sets) or a map, kept
// sorted so that equality and diff application are simple.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/util/result.h"

namespace hvtel::ovsdb {

struct Uuid {
  std::string value;
  auto operator<=>(const Uuid&) const = default;
};

using Atom = std::variant<std::string, int64_t, double, bool, Uuid>;

struct Datum {
  bool is_map = false;
  std::vector<Atom> set;                  // sorted, unique (when !is_map)
  std::vector<std::pair<Atom, Atom>> map; // sorted by key, unique keys (when is_map)

  bool operator==(const Datum&) const = default;
  bool empty() const { return is_map ? map.empty() : set.empty(); }

  // Typed views; they return the fallback when the datum is empty or of another type.
  std::optional<std::string> string() const;    // one string (or uuid) element
  std::optional<int64_t> integer() const;       // one integer element
  std::vector<std::string> strings() const;     // every string/uuid element
  std::vector<int64_t> integers() const;        // every integer element
  std::map<std::string, std::string> string_map() const;  // string keys and values only
};

// How a column's update2 "modify" diff applies (RFC 7047 + ovsdb-server(7)).
enum class ColumnKind {
  kScalar,  // min..max 1 (required or optional): the diff is the new value
  kSet,     // max > 1: the diff is the symmetric difference with the old set
  kMap,     // the diff adds new keys, replaces changed values, removes equal pairs
};

Result<Atom> decode_atom(const nlohmann::json& j);
Result<Datum> decode_datum(const nlohmann::json& j);
Datum apply_diff(const Datum& old, const Datum& diff, ColumnKind kind);

std::string atom_to_string(const Atom& a);  // for logs and tests

}  // namespace hvtel::ovsdb
