#include "psfphot/algo/crowding.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace psfphot {
namespace {

TEST(CrowdingTest, FriendsWithinRadiusFlaggedIsolatedNot) {
  const std::vector<Position> pos{
      {100, 100},                // 0: pair with 1 (7.9 px)
      {107.9, 100},              // 1
      {200, 200},                // 2: isolated (next star 8.1 px away is 3)
      {200, 208.1},              // 3: 8.1 px from 2
      {300, 300},                // 4: chain 4-5-6, 6 px steps; 4 and 6 are 12 px apart
      {306, 300},                // 5
      {312, 300},                // 6
      {200 + 5.6, 208.1 + 5.7},  // 7: hypot(5.6, 5.7) = 7.99 from 3
  };
  const auto c = find_crowded(pos, 8.0);
  ASSERT_EQ(c.size(), pos.size());
  EXPECT_TRUE(c[0]);
  EXPECT_TRUE(c[1]);
  EXPECT_FALSE(c[2]);
  EXPECT_TRUE(c[3]);  // via 7
  EXPECT_TRUE(c[4]);  // every member of a friends-of-friends chain has a friend
  EXPECT_TRUE(c[5]);
  EXPECT_TRUE(c[6]);
  EXPECT_TRUE(c[7]);
  // "Closer than": at exactly the radius a pair is not crowded.
  const auto d = find_crowded({{0, 0}, {3, 4}}, 5.0);
  EXPECT_FALSE(d[0]);
  EXPECT_FALSE(d[1]);
  EXPECT_TRUE(find_crowded({{0, 0}, {3, 4}}, 5.0001)[0]);
}

TEST(CrowdingTest, DegenerateInputs) {
  EXPECT_TRUE(find_crowded({}, 8.0).empty());
  const auto one = find_crowded({{5, 5}}, 8.0);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_FALSE(one[0]);
  // Radius <= 0 disables the check, even for coincident stars.
  const auto off = find_crowded({{5, 5}, {5, 5}}, 0.0);
  EXPECT_FALSE(off[0] || off[1]);
  // Coincident stars (e.g. duplicate detections) are crowded.
  const auto dup = find_crowded({{5, 5}, {5, 5}}, 1.0);
  EXPECT_TRUE(dup[0] && dup[1]);
}

TEST(CrowdingTest, AgreesWithBruteForce) {
  // The bucket grid must find every pair, also across cell boundaries and at negative
  // coordinates (peak pixels of stars partly off the frame).
  std::mt19937 rng(31);
  std::uniform_real_distribution<double> u(-50.0, 450.0);
  for (double radius : {0.7, 3.0, 8.0, 25.0}) {
    std::vector<Position> pos(1500);
    for (auto& p : pos) p = {u(rng), u(rng)};
    const auto c = find_crowded(pos, radius);
    int n_crowded = 0;
    for (std::size_t i = 0; i < pos.size(); ++i) {
      bool expect = false;
      for (std::size_t j = 0; j < pos.size() && !expect; ++j)
        expect = j != i && std::hypot(pos[i].x - pos[j].x, pos[i].y - pos[j].y) < radius;
      ASSERT_EQ(static_cast<bool>(c[i]), expect) << "radius " << radius << " star " << i;
      n_crowded += expect;
    }
    // Neither all nor none: the comparison tests something at each radius.
    EXPECT_GT(n_crowded, 0);
    if (radius < 20) {
      EXPECT_LT(n_crowded, 1500);
    }
  }
}

}  // namespace
}  // namespace psfphot
