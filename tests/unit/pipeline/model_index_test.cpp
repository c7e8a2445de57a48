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

}  // namespace
}  // namespace psfphot::pipeline
