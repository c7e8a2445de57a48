// find_peaks' threshold test (a float pre-test of 8 pixels, then the exact double test)
// against find_peaks_naive's scalar double test, at the threshold's edge.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "peaks_support.hpp"
#include "psfphot/algo/peaks.hpp"

namespace psfphot {
namespace {

// The threshold test (a float pre-test, then the exact double test) against the naive search
// at the threshold's edge: isolated pixels one float step below, at and above k * rms in
// double, for RMS values spanning normal, subnormal, zero, huge, infinite and NaN, positive
// and negative k, and absolute thresholds; NaN pixel values too. (An infinite pixel value is
// left out: find_peaks does not test finiteness beyond the threshold, find_peaks_naive does;
// smoothed images are finite.)
TEST(PeaksTest, ThresholdEdgeMatchesTheDoubleTest) {
  constexpr int w = 3 * 40 + 2, h = 3 * 30 + 2;
  constexpr float kLow = -3e38f;  // neighbours below every tested value
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float rms_values[] = {1.0f,   14.65f, 0.1f, 1e-40f, 0.0f,  3e38f,
                              1e-30f, 7.3e5f, kInf, -2.0f,  1e20f, std::nanf("")};
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> ud(0.5, 2.0);
  int passing = 0;
  // k below the smallest normal float too (the float pre-test cannot represent it).
  for (double k : {5.0 * 1.0737, 3.0, 0.7, -2.5, 1.0, 1.2e-44, 1.3e-44, -1e-50, 2.9e-45}) {
    Image<float> img(w, h, kLow), rms(w, h, 1.f);
    int i = 0;
    for (int y = 1; y + 1 < h; y += 3)
      for (int x = 1; x + 1 < w; x += 3, ++i) {
        float sv = rms_values[i % 12];
        if (i % 12 == 1) sv = static_cast<float>(sv * ud(rng));
        rms(x, y) = sv;
        const double t = k * static_cast<double>(sv);
        float v = static_cast<float>(t);
        const int step = (i / 12) % 3 - 1;  // one float below, at, above
        if (step < 0) v = std::nextafter(v, -kInf);
        if (step > 0) v = std::nextafter(v, kInf);
        if (std::isinf(v)) v = std::copysign(std::numeric_limits<float>::max(), v);
        if (i % 41 == 0) v = std::nanf("");
        img(x, y) = v;
      }
    PeakConfig sig;
    sig.k_sigma = k;
    for (const PeakConfig& cfg :
         {sig, test::absolute_threshold(k), test::absolute_threshold(-k * 1e-40)}) {
      const auto fast = find_peaks(img.cview(), rms.cview(), {}, cfg);
      const auto naive = find_peaks_naive(img.cview(), rms.cview(), {}, cfg);
      EXPECT_TRUE(test::same_peaks(fast, naive))
          << k << ": " << fast.size() << " vs " << naive.size();
      passing += static_cast<int>(naive.size());
    }
  }
  EXPECT_GT(passing, 500);  // both sides of the edge were exercised
}

}  // namespace
}  // namespace psfphot

namespace psfphot {
namespace {

// |k| below the smallest normal float: the float pre-test cannot hold k within its error
// bound, so every block must go to the double test (review of session 15: these two
// pixels were missed).
TEST(PeaksTest, ThresholdWithSubnormalFloatKMatchesTheDoubleTest) {
  struct Case {
    double k;
    float rms, value;
  };
  for (const Case c : {Case{1.2e-44, 1e30f, 1.23e-14f}, Case{-1e-50, 1e38f, -1e-20f}}) {
    // Wide enough for whole 8-pixel blocks (the float pre-test's unit).
    Image<float> img(40, 5, -3e38f), rms(40, 5, c.rms);
    img(13, 2) = c.value;
    PeakConfig cfg;
    cfg.k_sigma = c.k;
    const auto naive = find_peaks_naive(img.cview(), rms.cview(), {}, cfg);
    ASSERT_EQ(naive.size(), 1u) << c.k;  // the pixel passes the exact test
    EXPECT_EQ(find_peaks(img.cview(), rms.cview(), {}, cfg).size(), 1u) << c.k;
  }
}

}  // namespace
}  // namespace psfphot
