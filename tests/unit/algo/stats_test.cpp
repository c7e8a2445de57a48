#include "psfphot/algo/stats.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace psfphot {
namespace {

TEST(StatsTest, MedianOddEvenAndEmpty) {
  std::vector<float> odd{5.f, 1.f, 3.f, 9.f, 2.f};
  EXPECT_DOUBLE_EQ(median_inplace(odd), 3.0);
  // Even size: mean of the two middle values, as numpy does.
  std::vector<double> even{4.0, 1.0, 3.0, 2.0};
  EXPECT_DOUBLE_EQ(median_inplace(even), 2.5);
  std::vector<float> even_f{10.f, -2.f, 7.f, 3.f, 100.f, -50.f};  // sorted: -50 -2 3 7 10 100
  EXPECT_DOUBLE_EQ(median_inplace(even_f), 5.0);
  std::vector<double> one{42.0};
  EXPECT_DOUBLE_EQ(median_inplace(one), 42.0);
  std::vector<double> two{1.0, 2.0};
  EXPECT_DOUBLE_EQ(median_inplace(two), 1.5);
  std::vector<double> empty;
  EXPECT_TRUE(std::isnan(median_inplace(empty)));
}

TEST(StatsTest, MadStdAnalytic) {
  // |v - 3| = {2, 1, 0, 1, 97}: median 1, so mad_std = 1.4826.
  std::vector<double> v{1, 2, 3, 4, 100};
  EXPECT_NEAR(mad_std_inplace(v), 1.482602218505602, 1e-12);
  std::vector<double> empty;
  EXPECT_TRUE(std::isnan(mad_std_inplace(empty)));
}

TEST(StatsTest, MadStdOfNormalSample) {
  // The MAD estimate of sigma has asymptotic efficiency 0.3675 for a normal sample, so its
  // relative standard error is 1 / sqrt(2 n 0.3675) = 1.166 / sqrt(n); 5 of those allowed.
  constexpr int n = 100000;
  constexpr double sigma = 2.5;
  std::mt19937 rng(11);
  std::normal_distribution<double> nd(7.0, sigma);
  std::vector<double> v(n);
  for (auto& x : v) x = nd(rng);
  const double tol = 5 * 1.166 / std::sqrt(double(n)) * sigma;
  EXPECT_NEAR(mad_std_inplace(v), sigma, tol);
}

TEST(StatsTest, SigmaClipRejectsOutliers) {
  constexpr int n = 10000;
  constexpr double sigma = 1.0;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, static_cast<float>(sigma));
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  for (int i = 0; i < 50; ++i) v.push_back(100.f + static_cast<float>(i));  // +100 sigma
  for (int i = 0; i < 20; ++i) v.push_back(-60.f);
  const ClippedStats s = sigma_clip_inplace(v, 3.0, 10);
  // Every outlier gone, and 3-sigma clipping of a normal sample keeps ~99.5% of it.
  ASSERT_EQ(s.n, v.size());
  for (float x : v) EXPECT_LT(std::abs(x), 5.0);
  EXPECT_GT(s.n, static_cast<std::size_t>(0.99 * n));
  EXPECT_LE(s.n, static_cast<std::size_t>(n));
  // Mean and median of the kept values: standard errors sigma/sqrt(n) and 1.25 sigma/sqrt(n).
  EXPECT_NEAR(s.mean, 0.0, 5 * sigma / std::sqrt(double(n)));
  EXPECT_NEAR(s.median, 0.0, 5 * 1.25 * sigma / std::sqrt(double(n)));
  // Clipping truncates the distribution near 3 sigma: the stddev of the kept values is a few
  // percent below sigma (the truncated normal's ~0.984), never above it.
  EXPECT_GT(s.stddev, 0.95 * sigma);
  EXPECT_LT(s.stddev, 1.0 * sigma);
  EXPECT_GE(s.iterations, 2);  // the outliers inflate the first pass's stddev
}

TEST(StatsTest, SigmaClipConstantStops) {
  std::vector<float> v(100, 3.f);
  const ClippedStats s = sigma_clip_inplace(v);
  EXPECT_EQ(s.n, 100u);
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.median, 3.0);
  EXPECT_DOUBLE_EQ(s.stddev, 0.0);
  EXPECT_EQ(s.iterations, 1);
}

TEST(StatsTest, ImageStatsSkipsNonFinite) {
  Image<float> img(4, 3, 1.f);
  img(0, 0) = std::numeric_limits<float>::quiet_NaN();
  img(1, 0) = std::numeric_limits<float>::infinity();
  img(2, 2) = -5.f;
  img(3, 2) = 20.f;
  const ImageStats s = image_stats(img.cview());
  EXPECT_EQ(s.n_finite, 10u);
  EXPECT_EQ(s.n_nonfinite, 2u);
  EXPECT_DOUBLE_EQ(s.min, -5.0);
  EXPECT_DOUBLE_EQ(s.max, 20.0);
  EXPECT_DOUBLE_EQ(s.median, 1.0);
  EXPECT_DOUBLE_EQ(s.mean, (8 * 1.0 - 5.0 + 20.0) / 10.0);
  // A sub-view sees only its own pixels.
  const ImageStats sub = image_stats(img.cview().subview(2, 2, 2, 1));
  EXPECT_EQ(sub.n_finite, 2u);
  EXPECT_DOUBLE_EQ(sub.mean, 7.5);
}

// Radix selection (detail::median_radix, what median_inplace uses for large float vectors)
// against the sorted array's middle (mean of the two middle values for even sizes), on every
// shape of data: small sizes, a flat's narrow spread, many duplicates, negative medians, the
// two middle values in different buckets (positive and negative), +-0, denormals, infinities
// and the largest floats, random bit patterns; and through median_inplace above its
// threshold.
TEST(StatsTest, RadixMedianIsTheSortedMiddle) {
  std::mt19937 rng(7);
  std::normal_distribution<float> flat(20000.f, 141.f);
  std::uniform_int_distribution<int> small(-3, 3);
  std::uniform_int_distribution<std::uint32_t> bits;
  auto reference = [](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? double(v[m]) : 0.5 * (double(v[m - 1]) + double(v[m]));
  };
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr float kMax = std::numeric_limits<float>::max();
  constexpr float kDen = std::numeric_limits<float>::denorm_min();
  std::vector<std::vector<float>> cases = {
      {5.f}, {2.f, -1.f}, {-0.f, 0.f, -0.f}, {kInf, -kInf, 1.f}, {-kInf, 3.f, kInf, 2.f}};
  for (std::size_t n : {std::size_t(1000), std::size_t(4097), std::size_t(70000)}) {
    std::vector<float> a(n), b(n), c(n), d(n), e(n), f(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = flat(rng);                                         // one bucket holds a third
      b[i] = static_cast<float>(small(rng));                    // duplicates, +-0, signs
      c[i] = -flat(rng);                                        // negative median
      d[i] = static_cast<float>(small(rng)) * 3 * kDen;         // denormals around zero
      e[i] = i % 3 == 0 ? -kInf : (i % 3 == 1 ? kMax : -kMax);  // extremes only
      do f[i] = std::bit_cast<float>(bits(rng));                // random patterns, no NaN
      while (f[i] != f[i]);
    }
    for (auto* x : {&a, &b, &c, &d, &e, &f}) cases.push_back(*x);
  }
  // Even sizes whose two middle values lie in different buckets: the lower middle is the
  // largest value below the upper middle's bucket (positive, then negative values).
  for (float lo_v : {1.0f, -1000.0f}) {
    std::vector<float> split(20000, lo_v < 0 ? -1.0f : 1000.0f);
    std::fill(split.begin(), split.begin() + 10000, lo_v);
    split[3] = lo_v - 5.f;  // a smaller value below: not the lower middle
    split[17] = 4e30f;      // and values above the upper middle's bucket
    std::shuffle(split.begin(), split.end(), rng);
    cases.push_back(split);
  }
  for (std::size_t k = 0; k < cases.size(); ++k) {
    double got = 0;
    ASSERT_TRUE(detail::median_radix(cases[k], &got)) << "case " << k;
    EXPECT_EQ(got, reference(cases[k])) << "case " << k;
  }
  // NaN and empty input are left to the caller (median_inplace falls back).
  double unused = 0;
  EXPECT_FALSE(detail::median_radix({}, &unused));
  EXPECT_FALSE(detail::median_radix({1.f, std::numeric_limits<float>::quiet_NaN(), 2.f}, &unused));
  // median_inplace itself on a large vector (the radix path).
  std::vector<float> big(300001);
  for (auto& x : big) x = flat(rng);
  const double want = reference(big);
  EXPECT_EQ(median_inplace(big), want);
}

}  // namespace
}  // namespace psfphot
