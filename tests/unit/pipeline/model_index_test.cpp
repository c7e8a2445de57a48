// The model index's distance test (pipeline/model_index.hpp, detail::closer_than): the answer
// of hypot(dx, dy) < r, decided mostly from the squared distance, must be hypot's answer, also
// for distances within a few units in the last place of r (where dx^2 + dy^2 rounds
// differently from hypot) and for non-finite or degenerate inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

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

}  // namespace
}  // namespace psfphot::pipeline
