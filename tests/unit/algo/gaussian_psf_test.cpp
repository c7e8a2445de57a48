#include "psfphot/algo/gaussian_psf.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace psfphot {
namespace {

constexpr double kPi = std::numbers::pi;

double gauss(double t, double x0, double s) {
  return std::exp(-0.5 * (t - x0) * (t - x0) / (s * s)) / (std::sqrt(2 * kPi) * s);
}

// Independent reference for one pixel: composite Simpson rule of the Gaussian density
// over [i - 1/2, i + 1/2] (error ~ h^4 f'''' ~ 1e-12 with 200 intervals at sigma >= 0.5).
double simpson_pixel(int i, double x0, double s) {
  constexpr int n = 200;
  const double a = i - 0.5, h = 1.0 / n;
  double sum = gauss(a, x0, s) + gauss(a + 1.0, x0, s);
  for (int k = 1; k < n; ++k) sum += (k % 2 ? 4.0 : 2.0) * gauss(a + k * h, x0, s);
  return sum * h / 3.0;
}

TEST(GaussianPsfTest, IntegratedProfileMatchesQuadratureAndSumsToOne) {
  for (double sigma : {0.5, 1.0, 2.0, 3.7, 8.0})
    for (double x0 : {0.0, 0.13, 0.5, -0.77, 12.31}) {
      const int half = static_cast<int>(std::ceil(12 * sigma)) + 2;
      const int first = static_cast<int>(std::floor(x0)) - half;
      Profile1D p;
      integrated_profile(x0, sigma, first, 2 * half + 1, false, p);
      ASSERT_EQ(p.first, first);
      ASSERT_EQ(p.value.size(), static_cast<std::size_t>(2 * half + 1));
      double sum = 0;
      for (std::size_t k = 0; k < p.value.size(); ++k) {
        sum += p.value[k];
        EXPECT_NEAR(p.value[k], simpson_pixel(first + static_cast<int>(k), x0, sigma), 1e-10)
            << "sigma=" << sigma << " x0=" << x0 << " k=" << k;
        EXPECT_GE(p.value[k], 0.0);
      }
      // The mass beyond 12 sigma is ~1e-33: the sum is 1 to rounding.
      EXPECT_NEAR(sum, 1.0, 1e-13) << "sigma=" << sigma << " x0=" << x0;
      // The 2-D PSF is the outer product, so it sums to 1 as well.
      EXPECT_NEAR(sum * sum, 1.0, 2e-13);
    }
}

TEST(GaussianPsfTest, IntegratedProfileIsSymmetricAboutThePixelCentre) {
  Profile1D p;
  integrated_profile(5.0, 1.7, -5, 21, false, p);  // x0 = 5 is pixel index 10
  for (int k = 1; k <= 10; ++k) EXPECT_NEAR(p.value[10 + k], p.value[10 - k], 1e-15);
  // Centred on a pixel edge: pixel 5 and pixel 6 carry the same light.
  integrated_profile(5.5, 1.7, 0, 12, false, p);
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(p.value[5 - k], p.value[6 + k], 1e-15);
}

TEST(GaussianPsfTest, SampledProfileObeysPoissonSummation) {
  // sum_n g(n - x0) = 1 + 2 sum_k exp(-2 pi^2 sigma^2 k^2) cos(2 pi k x0): the sampled
  // profile does not sum to 1 for narrow PSFs, and the formula says by how much.
  for (double sigma : {0.4, 0.6, 1.0, 2.0})
    for (double x0 : {0.0, 0.25, 0.5, 0.9}) {
      Profile1D p;
      sampled_profile(x0, sigma, -40, 81, false, p);
      double sum = 0;
      for (double v : p.value) sum += v;
      double expect = 1.0;
      for (int k = 1; k <= 5; ++k)
        expect += 2 * std::exp(-2 * kPi * kPi * sigma * sigma * k * k) * std::cos(2 * kPi * k * x0);
      EXPECT_NEAR(sum, expect, 1e-13) << "sigma=" << sigma << " x0=" << x0;
      for (int k = 0; k < 81; ++k) EXPECT_NEAR(p.value[k], gauss(-40 + k, x0, sigma), 1e-15);
    }
}

// Central finite differences with step h: truncation error h^2/6 f''' (~1e-11 here) plus
// rounding eps/h (~1e-11): 1e-8 is a safe bound that still catches any wrong factor.
template <typename F>
void check_derivatives(F profile, const char* what) {
  constexpr double h = 1e-5;
  for (double sigma : {0.7, 1.5, 2.0, 4.0})
    for (double x0 : {0.0, 0.3, -0.45, 3.9}) {
      const int first = static_cast<int>(std::floor(x0)) - 12, n = 25;
      Profile1D p, pxp, pxm, psp, psm;
      profile(x0, sigma, first, n, true, p);
      ASSERT_EQ(p.d_x0.size(), static_cast<std::size_t>(n));
      ASSERT_EQ(p.d_s.size(), static_cast<std::size_t>(n));
      profile(x0 + h, sigma, first, n, false, pxp);
      profile(x0 - h, sigma, first, n, false, pxm);
      profile(x0, sigma + h, first, n, false, psp);
      profile(x0, sigma - h, first, n, false, psm);
      for (int k = 0; k < n; ++k) {
        EXPECT_NEAR(p.d_x0[k], (pxp.value[k] - pxm.value[k]) / (2 * h), 1e-8)
            << what << " d/dx0 sigma=" << sigma << " x0=" << x0 << " k=" << k;
        EXPECT_NEAR(p.d_s[k], (psp.value[k] - psm.value[k]) / (2 * h), 1e-8)
            << what << " d/ds sigma=" << sigma << " x0=" << x0 << " k=" << k;
      }
    }
}

TEST(GaussianPsfTest, IntegratedDerivativesMatchFiniteDifferences) {
  check_derivatives(integrated_profile, "integrated");
}

TEST(GaussianPsfTest, SampledDerivativesMatchFiniteDifferences) {
  check_derivatives(sampled_profile, "sampled");
}

TEST(GaussianPsfTest, IntegratedDerivativesSumToZeroOverTheLine) {
  // Shifting or broadening the star moves light between pixels but keeps the total (1):
  // over +-15 sigma (tails ~1e-50) both derivative sums vanish to rounding.
  for (double sigma : {0.7, 1.5, 2.0, 4.0})
    for (double x0 : {0.0, 0.3, -0.45}) {
      const int half = static_cast<int>(std::ceil(15 * sigma));
      Profile1D p;
      integrated_profile(x0, sigma, -half, 2 * half + 1, true, p);
      double sx = 0, ss = 0;
      for (int k = 0; k < 2 * half + 1; ++k) {
        sx += p.d_x0[k];
        ss += p.d_s[k];
      }
      EXPECT_NEAR(sx, 0.0, 1e-14) << sigma << " " << x0;
      EXPECT_NEAR(ss, 0.0, 1e-14) << sigma << " " << x0;
    }
}

TEST(GaussianPsfTest, ValuesOnlyCallLeavesDerivativeVectorsAlone) {
  Profile1D p;
  integrated_profile(0.0, 2.0, -3, 7, false, p);
  EXPECT_TRUE(p.d_x0.empty());
  EXPECT_TRUE(p.d_s.empty());
  // Reuse with a different size resizes the outputs.
  integrated_profile(0.0, 2.0, -1, 3, true, p);
  EXPECT_EQ(p.value.size(), 3u);
  EXPECT_EQ(p.d_x0.size(), 3u);
  EXPECT_EQ(p.first, -1);
}

TEST(GaussianPsfTest, DerivativesAloneAreTheFullCallsBits) {
  // The photometry adds the derivatives to a profile it already has the values of
  // (integrated_profile_derivs); the fitted numbers stay those of the one-call form only if
  // every derivative is the same double.
  for (double sigma : {0.7, 2.003, 4.5})
    for (double x0 : {12.0, 12.37, -3.499, 4095.5001}) {
      const int first = static_cast<int>(std::floor(x0)) - 8;
      Profile1D full, part;
      integrated_profile(x0, sigma, first, 17, true, full);
      integrated_profile(x0, sigma, first, 17, false, part);
      integrated_profile_derivs(x0, sigma, part);
      ASSERT_EQ(part.d_x0.size(), full.d_x0.size());
      for (std::size_t k = 0; k < full.value.size(); ++k) {
        EXPECT_EQ(part.value[k], full.value[k]);
        EXPECT_EQ(part.d_x0[k], full.d_x0[k]) << sigma << " " << x0 << " " << k;
        EXPECT_EQ(part.d_s[k], full.d_s[k]) << sigma << " " << x0 << " " << k;
      }
    }
}

// The tracked profile (erf and exp(-u^2) moved by their Taylor series between nearby positions)
// against the direct one at every step of a Gauss-Newton-like walk: steps from 0.5 px down to
// 1e-9 px, chained, at several widths; then a jump too large for the series (direct again),
// a new width and a new grid (direct). The series is cut at 1e-19 and each step adds a rounding
// or two, so the values stay within a few units in the last place of the direct erf
// differences (absolute, as the erf values are O(1)).
TEST(GaussianPsfTest, TrackedProfileFollowsTheDirectOneAcrossShifts) {
  for (double sigma : {0.7, 1.3, 2.0, 3.1}) {
    const int first = -12, n = 26;
    ProfileEdges edges;
    Profile1D tracked, direct;
    double x0 = 0.3;
    double worst_v = 0, worst_dx = 0, worst_ds = 0;
    auto compare = [&](double x, bool derivs) {
      integrated_profile_tracked(x, sigma, first, n, derivs, tracked, edges);
      integrated_profile(x, sigma, first, n, derivs, direct);
      ASSERT_EQ(tracked.first, first);
      ASSERT_EQ(tracked.value.size(), static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) {
        worst_v = std::max(worst_v, std::abs(tracked.value[i] - direct.value[i]));
        if (derivs) {
          // Scaled to the derivatives' own size (k / sqrt(pi) and 1 / sigma).
          worst_dx = std::max(worst_dx, std::abs(tracked.d_x0[i] - direct.d_x0[i]) * sigma);
          worst_ds = std::max(worst_ds, std::abs(tracked.d_s[i] - direct.d_s[i]) * sigma);
        }
      }
    };
    compare(x0, false);  // values only: erf at the edges, directly
    compare(x0, true);   // the same position with derivatives: exp added
    double step = 0.5;
    for (int it = 0; it < 14; ++it) {  // alternating signs, shrinking steps
      x0 += (it % 2 ? -step : step) * 0.93;
      step *= 0.25;
      compare(x0, it % 3 != 2);
    }
    compare(x0 + 3.0, true);  // beyond the series' reach: direct
    compare(x0 + 3.2, true);  // and a shift from there
    EXPECT_EQ(edges.x0, x0 + 3.2);
    EXPECT_LT(worst_v, 2e-15) << "sigma " << sigma;
    EXPECT_LT(worst_dx, 2e-15) << "sigma " << sigma;
    EXPECT_LT(worst_ds, 1e-14) << "sigma " << sigma;
  }
  // A different width or grid is never shifted into: the direct values, bit for bit.
  ProfileEdges edges;
  Profile1D tracked, direct;
  integrated_profile_tracked(1.1, 2.0, 0, 15, true, tracked, edges);
  integrated_profile_tracked(1.1, 2.1, 0, 15, true, tracked, edges);
  integrated_profile(1.1, 2.1, 0, 15, true, direct);
  EXPECT_EQ(tracked.value, direct.value);
  EXPECT_EQ(tracked.d_x0, direct.d_x0);
  EXPECT_EQ(tracked.d_s, direct.d_s);
  integrated_profile_tracked(1.1, 2.1, 1, 15, true, tracked, edges);
  integrated_profile(1.1, 2.1, 1, 15, true, direct);
  EXPECT_EQ(tracked.value, direct.value);
  EXPECT_EQ(tracked.d_s, direct.d_s);
}

}  // namespace
}  // namespace psfphot
