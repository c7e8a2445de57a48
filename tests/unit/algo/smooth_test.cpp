#include "psfphot/algo/smooth.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>
#include <stdexcept>
#include <vector>

#include "support/synth.hpp"

namespace psfphot {
namespace {

TEST(SmoothTest, RunIntoRefusesAViewTooSmallForTheRows) {
  Image<float> img(40, 30, 1.f), ok(40, 30), narrow(39, 30), short_(40, 20);
  SmoothRowStreamer st(img.cview(), {}, 0, 1.5, true);
  EXPECT_NO_THROW(st.run_into(0, 30, ok.view()));
  EXPECT_THROW(st.run_into(0, 30, narrow.view()), std::invalid_argument);
  EXPECT_THROW(st.run_into(0, 30, short_.view()), std::invalid_argument);
  EXPECT_THROW(st.run_into(-1, 10, ok.view()), std::invalid_argument);
}

TEST(SmoothTest, TapsAreANormalisedSymmetricGaussian) {
  for (double sigma : {0.3, 0.8, 1.0, 1.5, 2.0, 3.3}) {
    const auto t = gaussian_taps(sigma);
    const int r = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
    ASSERT_EQ(t.size(), static_cast<std::size_t>(2 * r + 1)) << sigma;
    double sum = 0;
    for (float v : t) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-6) << sigma;  // float taps: a few ulps
    for (int i = 1; i <= r; ++i) {
      EXPECT_FLOAT_EQ(t[r + i], t[r - i]);
      EXPECT_NEAR(t[r + i] / t[r], std::exp(-0.5 * i * i / (sigma * sigma)), 1e-6);
    }
  }
}

// Smoothed white noise, measured away from the border (zero padding there): the std of the
// output should equal noise_factor x the input std. The smoothed field is correlated with
// correlation exp(-d^2 / 4 s^2), so the relative standard error of its measured std is
// sqrt(pi s^2 / N) (sum of squared correlations 2 pi s^2, over 2 N); 5 of those allowed.
void check_noise_factor(double s, bool lowered) {
  constexpr int w = 1024, h = 1024;
  Image<float> img = test::constant(w, h, 0.f);
  std::mt19937 rng(static_cast<unsigned>(100 * s) + (lowered ? 1 : 0));
  test::add_noise(img, 1.0, rng);
  const Image<float> sm = gaussian_smooth(img.cview(), {}, 0, s, lowered);
  const int r = static_cast<int>(std::ceil(3 * s));
  double sum = 0, sum2 = 0, n = 0;
  for (int y = r; y < h - r; ++y)
    for (int x = r; x < w - r; ++x) {
      sum += sm(x, y);
      sum2 += double(sm(x, y)) * sm(x, y);
      ++n;
    }
  const double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  const double f = smoothing_noise_factor(s, lowered);
  const double rel_se = std::sqrt(std::numbers::pi * s * s / n);
  EXPECT_NEAR(sd / f, 1.0, 5 * rel_se) << "sigma=" << s << " lowered=" << lowered;
}

TEST(SmoothTest, NoiseFactorMatchesSmoothedWhiteNoise) {
  for (double s : {1.0, 2.0, 3.0}) {
    check_noise_factor(s, false);
    check_noise_factor(s, true);
  }
  // The two factors differ by more than the test's resolution (~16% at sigma 2), and a
  // continuous Gaussian gives 1 / (2 sqrt(pi) s) for the plain one.
  EXPECT_LT(smoothing_noise_factor(2.0, true), 0.9 * smoothing_noise_factor(2.0, false));
  EXPECT_NEAR(smoothing_noise_factor(3.0), 1.0 / (2 * std::sqrt(std::numbers::pi) * 3.0), 1e-3);
  EXPECT_EQ(smoothing_noise_factor(0.0), 1.0);
}

TEST(SmoothTest, LoweredKernelIgnoresPedestalAndRamp) {
  constexpr int w = 96, h = 80;
  constexpr double s = 2.0;
  const int r = static_cast<int>(std::ceil(3 * s));
  Image<float> pedestal = test::constant(w, h, 1000.f), ramp(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) ramp(x, y) = static_cast<float>(1000.0 + 0.7 * x - 0.4 * y);
  const Image<float> lp = gaussian_smooth(pedestal.cview(), {}, 0, s, true);
  const Image<float> lr = gaussian_smooth(ramp.cview(), {}, 0, s, true);
  const Image<float> pr = gaussian_smooth(ramp.cview(), {}, 0, s, false);
  // Float sums of ~170 terms of ~1000: rounding ~1e-4 x 1000 at worst; 0.02 ADU allowed, i.e.
  // 2e-5 of the pedestal (the plain kernel passes it whole).
  for (int y = r; y < h - r; ++y)
    for (int x = r; x < w - r; ++x) {
      ASSERT_NEAR(lp(x, y), 0.0, 0.02) << x << "," << y;
      ASSERT_NEAR(lr(x, y), 0.0, 0.02) << x << "," << y;
      // The symmetric plain kernel leaves a ramp unchanged.
      ASSERT_NEAR(pr(x, y), ramp(x, y), 0.02) << x << "," << y;
    }
  // A point source on the pedestal still responds: a delta of flux F gives F K(0, 0) =
  // F (G(0, 0) - 1/n) at its pixel, the pedestal nothing.
  Image<float> star = test::constant(w, h, 1000.f);
  star(40, 40) += 500.f;
  const Image<float> ls = gaussian_smooth(star.cview(), {}, 0, s, true);
  const auto t = gaussian_taps(s);
  const double n = double(t.size()) * double(t.size());
  EXPECT_NEAR(ls(40, 40), 500.0 * (double(t[r]) * t[r] - 1.0 / n), 0.02);
  EXPECT_GT(ls(40, 40), 10.f);
}

TEST(SmoothTest, PointSourceResponseIsTheKernel) {
  constexpr int w = 41, h = 41;
  Image<float> img = test::constant(w, h, 0.f);
  img(20, 20) = 1000.f;
  const Image<float> sm = gaussian_smooth(img.cview(), {}, 0, 1.5, false);
  const auto t = gaussian_taps(1.5);
  const int r = static_cast<int>(t.size() / 2);
  double total = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      total += sm(x, y);
      const int dx = x - 20, dy = y - 20;
      const double expect =
          (std::abs(dx) <= r && std::abs(dy) <= r) ? 1000.0 * t[dx + r] * t[dy + r] : 0.0;
      ASSERT_NEAR(sm(x, y), expect, 1e-3) << x << "," << y;
    }
  EXPECT_NEAR(total, 1000.0, 1e-2);  // flux kept away from the border
}

TEST(SmoothTest, ExcludedAndNonFinitePixelsCountAsZero) {
  constexpr int w = 30, h = 30;
  Image<float> img = test::constant(w, h, 0.f);
  Image<MaskBits> m(w, h, 0);
  img(10, 10) = 1e6f;
  m(10, 10) = mask::kSaturated;
  img(20, 20) = std::numeric_limits<float>::quiet_NaN();
  img(5, 25) = 1e6f;
  m(5, 25) = mask::kUserDetect;  // not in the excluded bits: kept
  const Image<float> sm = gaussian_smooth(img.cview(), m.cview(), mask::kSaturated, 1.0, false);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      ASSERT_TRUE(std::isfinite(sm(x, y))) << x << "," << y;
      if (std::abs(x - 5) > 3 || std::abs(y - 25) > 3) {
        ASSERT_EQ(sm(x, y), 0.f) << x << "," << y;
      }
    }
  EXPECT_GT(sm(5, 25), 1e5f);
  // sigma <= 0: a copy with the excluded and non-finite pixels zeroed.
  const Image<float> c = gaussian_smooth(img.cview(), m.cview(), mask::kSaturated, 0.0, false);
  EXPECT_EQ(c(10, 10), 0.f);
  EXPECT_EQ(c(20, 20), 0.f);
  EXPECT_EQ(c(5, 25), 1e6f);
  EXPECT_EQ(c(0, 0), 0.f);
}

// The definition the blocked, register-chunked implementation must reproduce bit for bit:
// each row convolved (zero padding; the centre tap, then the symmetric taps outwards, each
// times the sum of its pixel pair) and box-summed (in float, the centre, then the pairs), then each
// column summed the same way (taps in order), minus 1/n times the column's sum of box rows (in
// order).
Image<float> plain_two_pass(ImageView<const float> img, ImageView<const MaskBits> m, MaskBits excl,
                            double sigma, bool lowered) {
  const int w = img.width(), h = img.height();
  const std::vector<float> k = gaussian_taps(sigma);
  const int rad = static_cast<int>(k.size() / 2);
  const float inv_n = 1.0f / static_cast<float>((2 * rad + 1) * (2 * rad + 1));
  Image<float> c(w, h), hg(w, h), hb(w, h), out(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      c(x, y) = (!std::isfinite(img(x, y)) || (m(x, y) & excl)) ? 0.f : img(x, y);
  auto cz = [&](int x, int y) { return x >= 0 && x < w ? c(x, y) : 0.f; };  // zero padding
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      float s = k[rad] * c(x, y), b = c(x, y);
      for (int i = 1; i <= rad; ++i) {
        const float pair = cz(x - i, y) + cz(x + i, y);
        s += k[rad + i] * pair;
        b += pair;
      }
      hg(x, y) = s;
      hb(x, y) = b;
    }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      float s = 0, b = 0;
      const int lo = std::max(-rad, -y), hi = std::min(rad, h - 1 - y);
      for (int i = lo; i <= hi; ++i) s += k[i + rad] * hg(x, y + i);
      if (lowered) {
        for (int i = lo; i <= hi; ++i) b += hb(x, y + i);
        s -= inv_n * b;
      }
      out(x, y) = s;
    }
  return out;
}

// The box term in double (the 2-D box sum of the cleaned pixels, one rounding to float at
// the end): the float box sums above may differ from it by rounding only.
Image<float> box_in_double(ImageView<const float> img, ImageView<const MaskBits> m, MaskBits excl,
                           double sigma) {
  const int w = img.width(), h = img.height();
  const std::vector<float> k = gaussian_taps(sigma);
  const int rad = static_cast<int>(k.size() / 2);
  const double nk = 2 * rad + 1;
  Image<float> out(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double b = 0;
      for (int j = std::max(0, y - rad); j <= std::min(h - 1, y + rad); ++j)
        for (int i = std::max(0, x - rad); i <= std::min(w - 1, x + rad); ++i)
          if (std::isfinite(img(i, j)) && !(m(i, j) & excl)) b += img(i, j);
      out(x, y) = static_cast<float>(b / (nk * nk));
    }
  return out;
}

TEST(SmoothTest, EqualsThePlainTwoPassConvolutionBitForBit) {
  std::mt19937 rng(5);
  // Sizes around the kernel width, the 16-pixel chunks, the 4-row groups and the
  // 128-row blocks.
  const int sizes[][2] = {{1, 1}, {3, 2}, {7, 5}, {17, 13}, {40, 300}, {300, 129}, {95, 257}};
  for (const auto& sz : sizes) {
    const int w = sz[0], h = sz[1];
    Image<float> img = test::constant(w, h, 100.f);
    test::add_noise(img, 5.0, rng);
    Image<MaskBits> m(w, h, 0);
    for (int i = 0; i < w * h / 50; ++i) m((i * 97) % w, (i * 31) % h) = mask::kBadPixel;
    img(w / 2, h / 2) = std::numeric_limits<float>::quiet_NaN();
    // Half-widths 1 and 10 take the run-time-count loops, 2, 5 and 8 the unrolled ones.
    for (double sigma : {0.3, 0.6, 1.5, 2.5, 3.2})
      for (bool lowered : {false, true}) {
        const Image<float> a =
            gaussian_smooth(img.cview(), m.cview(), mask::kNoDetect, sigma, lowered);
        const Image<float> b =
            plain_two_pass(img.cview(), m.cview(), mask::kNoDetect, sigma, lowered);
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
            << w << "x" << h << " sigma " << sigma << " lowered " << lowered;
      }
  }
}

// The lowered kernel's box term, summed in float, agrees with the exact (double) box mean
// to float rounding of the sums involved: |error| <= a few ulps of the box sum of |pixels|.
TEST(SmoothTest, LoweredBoxTermMatchesDoubleBoxMean) {
  std::mt19937 rng(9);
  for (const auto& sz : {std::array<int, 2>{37, 29}, std::array<int, 2>{130, 71}}) {
    const int w = sz[0], h = sz[1];
    Image<float> img = test::constant(w, h, 1000.f);
    test::add_noise(img, 30.0, rng);
    img(w / 3, h / 3) = 60000.f;  // a bright pixel, as a saturated star's core
    Image<MaskBits> m(w, h, 0);
    for (int i = 0; i < w * h / 40; ++i) m((i * 97) % w, (i * 31) % h) = mask::kBadPixel;
    for (double sigma : {1.0, 1.5}) {
      const Image<float> g = gaussian_smooth(img.cview(), m.cview(), mask::kNoDetect, sigma, false);
      const Image<float> l = gaussian_smooth(img.cview(), m.cview(), mask::kNoDetect, sigma, true);
      const Image<float> b = box_in_double(img.cview(), m.cview(), mask::kNoDetect, sigma);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          // ~ (taps + rows) roundings of sums up to ~2000 x 121 / 121, in float.
          const double tol = 64 * 6e-8 * (std::fabs(b(x, y)) + 60000.0 / 121);
          ASSERT_NEAR(double(g(x, y)) - l(x, y), b(x, y), tol + 4e-7 * std::fabs(g(x, y)))
              << w << "x" << h << " " << x << "," << y << " sigma " << sigma;
        }
    }
  }
}

TEST(SmoothTest, OneAndTwoThreadsGiveIdenticalBytes) {
  constexpr int w = 333, h = 271;
  Image<float> img = test::constant(w, h, 100.f);
  std::mt19937 rng(12);
  test::add_noise(img, 5.0, rng);
  Image<MaskBits> m(w, h, 0);
  for (int i = 0; i < 300; ++i) m((i * 97) % w, (i * 31) % h) = mask::kBadPixel;
  const int saved = omp_get_max_threads();
  for (bool lowered : {false, true}) {
    omp_set_num_threads(1);
    const Image<float> a = gaussian_smooth(img.cview(), m.cview(), mask::kNoDetect, 1.7, lowered);
    omp_set_num_threads(2);
    const Image<float> b = gaussian_smooth(img.cview(), m.cview(), mask::kNoDetect, 1.7, lowered);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << lowered;
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace psfphot
