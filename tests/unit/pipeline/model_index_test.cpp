// The model index's distance test (pipeline/model_index.hpp, detail::closer_than): the answer
// of hypot(dx, dy) < r, decided mostly from the squared distance, must be hypot's answer, also
// for distances within a few units in the last place of r (where dx^2 + dy^2 rounds
// differently from hypot) and for non-finite or degenerate inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "../../../src/pipeline/model_index.hpp"

namespace psfphot::pipeline {
namespace {

TEST(ModelIndex, CloserThanIsHypotsAnswer) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> ang(0.0, 6.283185307179586), rad(0.1, 40.0);
  long checked = 0;
  for (int t = 0; t < 200000; ++t) {
    const double r = rad(rng), a = ang(rng);
    // Points at r itself, nudged by -4 .. +4 ulps of their distance, and well inside/outside.
    for (double scale : {0.5, 0.999999, 1.0, 1.000001, 2.0}) {
      double dx = r * scale * std::cos(a), dy = r * scale * std::sin(a);
      for (int k = -4; k <= 4; ++k) {
        const double ex = k == 0 ? dx : std::nextafter(dx, k > 0 ? 1e300 : -1e300);
        dx = ex;
        ASSERT_EQ(detail::closer_than(dx, dy, r), std::hypot(dx, dy) < r)
            << dx << " " << dy << " " << r;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 1000000);
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for (double dx : {0.0, -0.0, 1.0, 1e-300, 1e200, inf, -inf, nan})
    for (double dy : {0.0, 3.0, 1e-300, 1e200, inf, nan})
      for (double r : {0.0, -1.0, 1e-200, 2.0, 1e150, inf, nan})
        EXPECT_EQ(detail::closer_than(dx, dy, r), std::hypot(dx, dy) < r)
            << dx << " " << dy << " " << r;
}

// close_pairs looks only in the cells within the pair distance (+1 px): the same partners as
// the definition over every pair of stars, in a crowded random field with a few bright models
// (whose reach made the index's usual query look much further).
TEST(ModelIndex, ClosePairsMatchEveryPairTested) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> pos(-5.0, 305.0), flux(50.0, 5e3), sg(1.5, 2.5);
  std::vector<PsfFit> fits(600);
  std::vector<double> sig(fits.size());
  for (std::size_t i = 0; i < fits.size(); ++i) {
    fits[i].x = pos(rng);
    fits[i].y = pos(rng);
    fits[i].flux = i % 97 == 0 ? 1e7 : flux(rng);
    fits[i].converged = i % 13 != 0;
    sig[i] = sg(rng);
  }
  const detail::ModelIndex index(fits, sig, 10.0, 300, 300, 0.0);
  ASSERT_GT(index.max_reach, 10.0);
  auto eligible = [](std::ptrdiff_t i) { return i % 7 != 0; };
  const double sep = 3.0;
  const std::vector<std::ptrdiff_t> partner = detail::close_pairs(index, fits, sig, sep, eligible);
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(fits.size());
  std::vector<std::ptrdiff_t> close(fits.size(), -1), want(fits.size(), -1);
  std::vector<int> count(fits.size(), 0);
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    if (!index.usable[i] || !eligible(i)) continue;
    for (std::ptrdiff_t j = 0; j < n; ++j)
      if (j != i && index.usable[j] && eligible(j) &&
          detail::closer_than(fits[j].x - fits[i].x, fits[j].y - fits[i].y, sep * sig[i])) {
        ++count[i];
        close[i] = j;  // the only one, where it counts
      }
  }
  int pairs = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::ptrdiff_t j = close[i];
    if (j >= 0 && count[i] == 1 && count[j] == 1 && close[j] == i) want[i] = j;
    pairs += want[i] >= 0;
  }
  EXPECT_GT(pairs, 10);
  EXPECT_EQ(partner, want);
}

// Pairs planted across the grid's cell boundaries (kCell = 32 px), just closer than the pair
// distance, in the 8 directions, at several distances of the first star from the boundary,
// and at the frame's edges (off the frame too): a search looking less far than the pair
// distance (e.g. 0.5 r, or r - 1 px) misses some of them, which the random field above can
// leave unseen (its pairs rarely straddle a boundary).
TEST(ModelIndex, ClosePairsFoundAcrossCellBoundaries) {
  const int size = 640;
  const double sigma = 2.0, sep = 3.0, r = sep * sigma, d = 0.99 * r;
  std::vector<PsfFit> fits;
  std::vector<std::pair<std::size_t, std::size_t>> planted;
  auto add = [&](double x, double y) {
    PsfFit f;
    f.x = x;
    f.y = y;
    f.flux = 1e3;
    f.converged = true;
    fits.push_back(f);
    return fits.size() - 1;
  };
  auto pair = [&](double ax, double ay, double ux, double uy) {
    const std::size_t a = add(ax, ay), b = add(ax + d * ux, ay + d * uy);
    planted.emplace_back(a, b);
  };
  const double h = std::sqrt(0.5);
  const double dirs[8][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {h, h}, {-h, h}, {h, -h}, {-h, -h}};
  const double offs[5] = {0.6, 0.3 * r, 0.5 * r, 0.7 * r, d - 0.6};
  int slot = 0;
  for (const auto& u : dirs)
    for (double off : offs) {
      // A cell corner 64 px from the previous one: the pairs are far apart.
      const double px = 32.0 * (1 + 2 * (slot % 9)), py = 32.0 * (1 + 2 * (slot / 9));
      ++slot;
      pair(px - off * u[0], py - off * u[1], u[0], u[1]);
    }
  pair(-2.5, 100.0, 1, 0);         // off the frame's left edge
  pair(size + 1.0, 300.0, -1, 0);  // off the right edge, towards the frame
  pair(300.0, size - 0.5, h, h);   // across the bottom edge
  pair(200.0, 0.4, h, -h);         // across the top edge
  std::vector<double> sig(fits.size(), sigma);
  const detail::ModelIndex index(fits, sig, 10.0, size, size, 0.0);
  const std::vector<std::ptrdiff_t> partner =
      detail::close_pairs(index, fits, sig, sep, [](std::ptrdiff_t) { return true; });
  std::vector<std::ptrdiff_t> want(fits.size(), -1);
  for (const auto& [a, b] : planted) {
    want[a] = static_cast<std::ptrdiff_t>(b);
    want[b] = static_cast<std::ptrdiff_t>(a);
  }
  EXPECT_EQ(planted.size(), 44u);
  EXPECT_EQ(partner, want);
}

}  // namespace
}  // namespace psfphot::pipeline
