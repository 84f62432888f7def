#include "base/util/seq_ring.h"

#include <gtest/gtest.h>

#include <string>

namespace hvtel {
namespace {

struct Item {
  uint64_t seq = 0;
  std::string name;
};

std::string names(const std::vector<Item>& items) {
  std::string out;
  for (const auto& i : items) out += i.name + std::to_string(i.seq) + " ";
  return out;
}

TEST(SeqRing, NumbersItemsAndCountsWhatLeftTheRing) {
  SeqRing<Item> ring(3);
  auto empty = ring.after(0, 10);
  EXPECT_TRUE(empty.items.empty());
  EXPECT_EQ(empty.cursor, 0u);
  for (const char* n : {"a", "b", "c", "d", "e"}) ring.push({0, n});
  EXPECT_EQ(ring.last_seq(), 5u);

  auto all = ring.after(0, 10);  // a1 and b2 were dropped
  EXPECT_EQ(names(all.items), "c3 d4 e5 ");
  EXPECT_EQ(all.missed, 2u);
  EXPECT_EQ(all.cursor, 5u);

  auto one = ring.after(3, 1);
  EXPECT_EQ(names(one.items), "d4 ");
  EXPECT_EQ(one.missed, 0u);
  EXPECT_EQ(one.cursor, 4u);

  auto none = ring.after(5, 10);
  EXPECT_TRUE(none.items.empty());
  EXPECT_EQ(none.cursor, 5u);
}

TEST(SeqRing, TheCursorPassesWhatTheFilterRejects) {
  SeqRing<Item> ring(8);
  for (const char* n : {"x", "y", "x", "y"}) ring.push({0, n});
  auto ys = ring.after(0, 10, [](const Item& i) { return i.name == "y"; });
  EXPECT_EQ(names(ys.items), "y2 y4 ");
  EXPECT_EQ(ys.cursor, 4u);
  // `max` counts the items returned; the cursor stops after the last of them.
  auto first_y = ring.after(0, 1, [](const Item& i) { return i.name == "y"; });
  EXPECT_EQ(names(first_y.items), "y2 ");
  EXPECT_EQ(first_y.cursor, 2u);
}

}  // namespace
}  // namespace hvtel
