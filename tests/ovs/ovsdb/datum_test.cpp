#include "ovs/ovsdb/datum.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ovs/ovsdb/db.h"

namespace hvtel::ovsdb {
namespace {

using nlohmann::json;

Datum D(const char* text) {
  auto d = decode_datum(json::parse(text));
  EXPECT_TRUE(d) << text << ": " << (d ? "" : d.error().message);
  return d ? *d : Datum{};
}

TEST(Datum, DecodesAtomsSetsMapsUuids) {
  EXPECT_EQ(D(R"("br-int")").string(), "br-int");
  EXPECT_EQ(D("5").integer(), 5);
  EXPECT_EQ(D(R"(["set",[]])").integer(), std::nullopt);
  EXPECT_TRUE(D(R"(["set",[]])").empty());
  EXPECT_EQ(D(R"(["set",[3,1,2,1]])").integers(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(D(R"(["uuid","1f2e"])").string(), "1f2e");
  EXPECT_EQ(D(R"(["set",[["uuid","b"],["uuid","a"]]])").strings(),
            (std::vector<std::string>{"a", "b"}));
  auto m = D(R"(["map",[["iface-id","p1"],["attached-mac","fa:16:3e:00:00:01"]]])").string_map();
  EXPECT_EQ(m, (std::map<std::string, std::string>{{"attached-mac", "fa:16:3e:00:00:01"},
                                                    {"iface-id", "p1"}}));
  EXPECT_TRUE(D("true").set.size() == 1);
  EXPECT_EQ(std::get<double>(D("1.5").set[0]), 1.5);
}

TEST(Datum, RejectsMalformedValues) {
  for (const char* bad : {R"(["set",5])", R"(["map",[["k"]]])", R"(["map",[[["x"],"v"]]])",
                          R"({"a":1})", "null", R"(["uuid",5])", "18446744073709551615"}) {
    EXPECT_FALSE(decode_datum(json::parse(bad))) << bad;
  }
}

TEST(Datum, ApplyDiffPerColumnKind) {
  // Optional scalars are replaced (tag 5 -> 6), cleared with an empty set.
  EXPECT_EQ(apply_diff(D("5"), D("6"), ColumnKind::kScalar), D("6"));
  EXPECT_EQ(apply_diff(D("5"), D(R"(["set",[]])"), ColumnKind::kScalar), D(R"(["set",[]])"));
  // Sets toggle: trunks [1,2] with diff [1,3] -> [2,3] (what ovsdb-server 3.1 sends).
  EXPECT_EQ(apply_diff(D(R"(["set",[1,2]])"), D(R"(["set",[1,3]])"), ColumnKind::kSet),
            D(R"(["set",[2,3]])"));
  // Maps: new key added, changed value replaced, equal pair removed.
  Datum old = D(R"(["map",[["a","1"],["b","2"],["c","3"]]])");
  Datum diff = D(R"(["map",[["a","1"],["b","9"],["d","4"]]])");
  EXPECT_EQ(apply_diff(old, diff, ColumnKind::kMap).string_map(),
            (std::map<std::string, std::string>{{"b", "9"}, {"c", "3"}, {"d", "4"}}));
}

TEST(Db, Update2InitialInsertModifyDelete) {
  Database db;
  ASSERT_TRUE(apply_table_updates2(db, json::parse(R"({
    "Interface": {"i1": {"initial": {"name": "tap1", "ofport": 1,
        "external_ids": ["map", [["iface-id", "p1"]]]}}},
    "Port": {"p1": {"initial": {"name": "tap1", "interfaces": ["uuid", "i1"]}}},
    "Flow_Table": {"x": {"initial": {}}}
  })"), true));
  const Row& i1 = db["Interface"]["i1"];
  EXPECT_EQ(i1.at("ofport").integer(), 1);
  EXPECT_TRUE(i1.at("error").empty());  // omitted default column present and empty
  EXPECT_EQ(db.count("Flow_Table"), 0u);  // not a monitored table

  ASSERT_TRUE(apply_table_updates2(db, json::parse(R"({
    "Interface": {"i1": {"modify": {"ofport": 7, "external_ids": ["map", [["vm-uuid", "v1"]]]}},
                  "i2": {"insert": {"name": "tap2"}}},
    "Port": {"p1": {"modify": {"tag": 5, "trunks": ["set", [1, 2]]}}}
  })"), false));
  EXPECT_EQ(db["Interface"]["i1"].at("ofport").integer(), 7);
  EXPECT_EQ(db["Interface"]["i1"].at("external_ids").string_map().size(), 2u);
  EXPECT_EQ(db["Port"]["p1"].at("tag").integer(), 5);
  EXPECT_EQ(db["Interface"]["i2"].at("name").string(), "tap2");

  ASSERT_TRUE(apply_table_updates2(db, json::parse(R"({"Interface": {"i2": {"delete": null}}})"),
                                   false));
  EXPECT_EQ(db["Interface"].count("i2"), 0u);
}

TEST(Db, MalformedUpdateLeavesReplicaUntouched) {
  Database db;
  ASSERT_TRUE(apply_table_updates2(
      db, json::parse(R"({"Interface": {"i1": {"initial": {"name": "tap1", "ofport": 1}}}})"), true));
  Database before = db;
  for (const char* bad : {
           R"({"Interface": {"i1": {"modify": {"ofport": 2}}, "i9": {"modify": {"ofport": 3}}}})",
           R"({"Interface": {"i1": {"modify": {"ofport": ["set", 5]}}}})",
           R"({"Interface": {"i1": {"bogus": {}}}})",
           R"({"Interface": []})",
           R"([1])"}) {
    EXPECT_FALSE(apply_table_updates2(db, json::parse(bad), false)) << bad;
    EXPECT_EQ(db, before) << bad;
  }
}

TEST(Db, Rfc7047UpdateNewOld) {
  Database db;
  ASSERT_TRUE(apply_table_updates(db, json::parse(R"({
    "Port": {"p1": {"new": {"name": "tap1", "tag": ["set", []]}}}})"), true));
  EXPECT_FALSE(db["Port"]["p1"].at("tag").integer());
  ASSERT_TRUE(apply_table_updates(db, json::parse(R"({
    "Port": {"p1": {"new": {"name": "tap1", "tag": 7}, "old": {"tag": ["set", []]}}}})"), false));
  EXPECT_EQ(db["Port"]["p1"].at("tag").integer(), 7);
  ASSERT_TRUE(apply_table_updates(db, json::parse(R"({
    "Port": {"p1": {"old": {"name": "tap1", "tag": 7}}}})"), false));
  EXPECT_TRUE(db["Port"].empty());
}

}  // namespace
}  // namespace hvtel::ovsdb
