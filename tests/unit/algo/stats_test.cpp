#include "psfphot/algo/stats.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

// Large float vectors take the radix selection: the median must be exactly the sorted
// array's middle (mean of the two middle values for even sizes) for every shape of data:
// a flat's smooth spread, many duplicates, mixed signs and zeros of both signs, the middle
// values in two different buckets (lower middle found as the largest value below), huge
// and infinite values.
TEST(Stats, LargeFloatMedianIsTheSortedMiddle) {
  std::mt19937 rng(7);
  std::normal_distribution<float> flat(20000.f, 400.f);
  std::uniform_int_distribution<int> small(-3, 3);
  auto reference = [](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? double(v[m]) : 0.5 * (double(v[m - 1]) + double(v[m]));
  };
  std::vector<std::vector<float>> cases;
  for (std::size_t n : {std::size_t(1) << 16, (std::size_t(1) << 16) + 1, std::size_t(300001)}) {
    std::vector<float> a(n), b(n), c(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = flat(rng);
      b[i] = static_cast<float>(small(rng));  // duplicates, +-0 and sign changes
      c[i] = i % 7 == 0 ? -0.0f : static_cast<float>(small(rng)) * 1e-30f;
    }
    cases.push_back(a);
    cases.push_back(b);
    cases.push_back(c);
  }
  // Even size, lower half 1.0 and upper half 1000.0: the middle values in two buckets.
  std::vector<float> split(std::size_t(1) << 17, 1000.0f);
  std::fill(split.begin(), split.begin() + (std::size_t(1) << 16), 1.0f);
  std::shuffle(split.begin(), split.end(), rng);
  cases.push_back(split);
  // Extremes: infinities and the largest floats around a middle of ordinary values.
  std::vector<float> ext(100000);
  for (std::size_t i = 0; i < ext.size(); ++i)
    ext[i] = i % 5 == 0   ? std::numeric_limits<float>::infinity()
             : i % 5 == 1 ? -std::numeric_limits<float>::max()
                          : flat(rng);
  cases.push_back(ext);
  for (std::size_t k = 0; k < cases.size(); ++k) {
    std::vector<float> v = cases[k];
    const double want = reference(cases[k]);
    EXPECT_EQ(median_inplace(v), want) << "case " << k;
  }
}

}  // namespace
}  // namespace psfphot
