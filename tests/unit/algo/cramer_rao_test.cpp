#include "psfphot/algo/cramer_rao.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <numbers>
#include <random>
#include <vector>

namespace psfphot {
namespace {

TEST(CramerRao, PixelFractionSumsToOneAndDerivativeMatchesFiniteDifference) {
  for (double sigma : {0.7, 2.0, 3.5}) {
    for (double x : {0.0, 0.3, -0.49, 7.25}) {
      double sum = 0, dsum = 0;
      for (int i = -60; i <= 60; ++i) {
        sum += pixel_fraction_1d(i, x, sigma);
        dsum += pixel_fraction_1d_dx(i, x, sigma);
        const double h = 1e-6;
        const double fd =
            (pixel_fraction_1d(i, x + h, sigma) - pixel_fraction_1d(i, x - h, sigma)) / (2 * h);
        EXPECT_NEAR(pixel_fraction_1d_dx(i, x, sigma), fd, 1e-8) << i << " " << x << " " << sigma;
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
      EXPECT_NEAR(dsum, 0.0, 1e-12);  // moving the star does not change the total
    }
  }
  // Far tail keeps relative precision (erfc difference, not 1 - 1).
  EXPECT_GT(pixel_fraction_1d(20, 0.0, 1.0), 0.0);
  EXPECT_GT(pixel_fraction_1d(-20, 0.0, 1.0), 0.0);
}

TEST(CramerRao, SnrAndSimpleBoundFormulas) {
  const double sigma = 2.0, b = 150.0, f = 5000.0;
  const double snr = background_limited_snr(f, sigma, b);
  EXPECT_NEAR(snr, f / std::sqrt(4 * std::numbers::pi * sigma * sigma * b), 1e-12);
  const StarBound s = simple_bound(snr, sigma);
  EXPECT_NEAR(s.flux_frac, 1.0 / snr, 1e-15);
  EXPECT_NEAR(s.x_px, std::sqrt(2.0) * sigma / snr, 1e-15);
  EXPECT_NEAR(s.y_px, s.x_px, 1e-15);
  EXPECT_NEAR(s.axis_px(), s.x_px, 1e-15);
  EXPECT_TRUE(std::isnan(simple_bound(0.0, sigma).flux_frac));
  EXPECT_TRUE(std::isnan(simple_bound(10.0, -1.0).x_px));
  EXPECT_TRUE(std::isnan(background_limited_snr(f, sigma, 0.0)));
}

// Background-limited (F / gain << B): the full bound is the simple one for a Gaussian of
// variance sigma^2 + 1/12 (pixel integration), i.e. flux larger by sqrt(1 + 1/(12 sigma^2))
// and centroid by 1 + 1/(12 sigma^2); the joint fit costs nothing for a symmetric star.
TEST(CramerRao, FullBoundApproachesSimpleBoundWhenBackgroundLimited) {
  for (double sigma : {2.0, 3.0}) {
    for (double dx : {0.0, 0.3, 0.5}) {
      const double b = 100.0, f = 2000.0, gain = 1e9;
      const double snr = background_limited_snr(f, sigma, b);
      const StarBound s = simple_bound(snr, sigma);
      const StarBound full = full_bound(f, 50.0 + dx, 40.0 - dx, sigma, b, gain);
      const double k = 1.0 / (12 * sigma * sigma);
      EXPECT_NEAR(full.flux_frac / s.flux_frac, std::sqrt(1 + k), 5e-4) << sigma << " " << dx;
      EXPECT_NEAR(full.x_px / s.x_px, 1 + k, 5e-4) << sigma << " " << dx;
      EXPECT_NEAR(full.y_px / s.y_px, 1 + k, 5e-4) << sigma << " " << dx;
      EXPECT_GE(full.flux_frac, s.flux_frac);
    }
  }
}

// Source-limited (B -> 0): Poisson statistics of F*gain electrons: sigma_F/F = 1/sqrt(F g)
// exactly, and sigma_x = sigma_eff / sqrt(F g) with sigma_eff^2 ~ sigma^2 + 1/12.
TEST(CramerRao, FullBoundIsPoissonLimitedForBrightStarsAndLargerThanSimple) {
  const double sigma = 2.0, gain = 1.5, f = 1e6, b = 1e-9;
  const StarBound full = full_bound(f, 10.0, 10.0, sigma, b, gain);
  EXPECT_NEAR(full.flux_frac * std::sqrt(f * gain), 1.0, 1e-4);
  const double sigma_eff = std::sqrt(sigma * sigma + 1.0 / 12);
  EXPECT_NEAR(full.x_px * std::sqrt(f * gain) / sigma_eff, 1.0, 0.01);
  // With a realistic sky the full bound exceeds the simple one, more so for brighter stars.
  double prev_ratio = 0;
  for (double flux : {1e3, 1e4, 1e5, 1e6}) {
    const double sky = 150.0;
    const StarBound s = simple_bound(background_limited_snr(flux, sigma, sky), sigma);
    const StarBound fb = full_bound(flux, 10.2, 9.9, sigma, sky, gain);
    EXPECT_GT(fb.flux_frac, s.flux_frac);
    EXPECT_GT(fb.x_px, s.x_px);
    EXPECT_GT(fb.flux_frac / s.flux_frac, prev_ratio);
    prev_ratio = fb.flux_frac / s.flux_frac;
  }
  EXPECT_GT(prev_ratio, 3.0);  // at 1e6 ADU the star's own noise dominates
}

TEST(CramerRao, FullBoundInvalidInputsGiveNaN) {
  EXPECT_TRUE(std::isnan(full_bound(0.0, 5, 5, 2, 100, 1).flux_frac));
  EXPECT_TRUE(std::isnan(full_bound(100.0, 5, 5, 0, 100, 1).x_px));
  EXPECT_TRUE(std::isnan(full_bound(100.0, 5, 5, 2, -1, 1).y_px));
  EXPECT_TRUE(std::isnan(full_bound(100.0, 5, 5, 2, 100, 0).flux_frac));
  EXPECT_TRUE(std::isnan(full_bound(100.0, NAN, 5, 2, 100, 1).flux_frac));
  EXPECT_TRUE(std::isnan(full_bound(100.0, 5, 5, 2, 100, 1, 0.5).flux_frac));
}

// Monte Carlo: weighted least-squares fits of (F, x, y) to noisy simulated stamps scatter
// as the full bound says. With N trials the sample std has relative error 1/sqrt(2N)
// (1.6% at N = 2000), so 10% is a > 5-sigma tolerance; nonlinearity bias at S/N >= 25 is
// well under 1%.
struct McCase {
  double flux, sky_var, gain, sigma, x0, y0;
};

void run_monte_carlo(const McCase& c, unsigned seed) {
  const int r = static_cast<int>(std::ceil(5 * c.sigma));
  const int n = 2 * r + 1;
  // Pixel grid centred on pixel (0, 0); true centre at (x0, y0).
  auto model = [&](double f, double x, double y, std::vector<double>& mu,
                   std::vector<Eigen::Vector3d>& jac) {
    mu.resize(static_cast<std::size_t>(n * n));
    jac.resize(mu.size());
    for (int j = 0; j < n; ++j) {
      const double py = pixel_fraction_1d(j - r, y, c.sigma);
      const double dpy = pixel_fraction_1d_dx(j - r, y, c.sigma);
      for (int i = 0; i < n; ++i) {
        const double px = pixel_fraction_1d(i - r, x, c.sigma);
        const double dpx = pixel_fraction_1d_dx(i - r, x, c.sigma);
        const auto k = static_cast<std::size_t>(j * n + i);
        mu[k] = f * px * py;
        jac[k] = Eigen::Vector3d(px * py, f * dpx * py, f * px * dpy);
      }
    }
  };
  std::vector<double> mu0, var, mu, data;
  std::vector<Eigen::Vector3d> jac;
  model(c.flux, c.x0, c.y0, mu0, jac);
  var.resize(mu0.size());
  for (std::size_t k = 0; k < mu0.size(); ++k) var[k] = c.sky_var + mu0[k] / c.gain;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int trials = 2000;
  double sf = 0, sf2 = 0, sx = 0, sx2 = 0, sy = 0, sy2 = 0;
  data.resize(mu0.size());
  for (int t = 0; t < trials; ++t) {
    for (std::size_t k = 0; k < data.size(); ++k)
      data[k] = mu0[k] + std::sqrt(var[k]) * normal(rng);
    Eigen::Vector3d p(c.flux, c.x0, c.y0);
    for (int it = 0; it < 8; ++it) {  // Gauss-Newton with the known variances as weights
      model(p(0), p(1), p(2), mu, jac);
      Eigen::Matrix3d a = Eigen::Matrix3d::Zero();
      Eigen::Vector3d g = Eigen::Vector3d::Zero();
      for (std::size_t k = 0; k < data.size(); ++k) {
        a += jac[k] * jac[k].transpose() / var[k];
        g += jac[k] * (data[k] - mu[k]) / var[k];
      }
      p += a.ldlt().solve(g);
    }
    sf += p(0);
    sf2 += p(0) * p(0);
    sx += p(1);
    sx2 += p(1) * p(1);
    sy += p(2);
    sy2 += p(2) * p(2);
  }
  auto sd = [&](double s, double s2) { return std::sqrt((s2 - s * s / trials) / (trials - 1)); };
  const StarBound b = full_bound(c.flux, c.x0, c.y0, c.sigma, c.sky_var, c.gain);
  EXPECT_NEAR(sd(sf, sf2) / c.flux / b.flux_frac, 1.0, 0.10);
  EXPECT_NEAR(sd(sx, sx2) / b.x_px, 1.0, 0.10);
  EXPECT_NEAR(sd(sy, sy2) / b.y_px, 1.0, 0.10);
}

TEST(CramerRao, FullBoundMatchesMonteCarloWeightedFitScatter) {
  // S/N ~ 50 with the star's Poisson noise comparable to the sky at the peak.
  run_monte_carlo({3500.0, 100.0, 1.0, 2.0, 0.3, -0.2}, 11);
  // Bright star on a faint sky: Poisson-dominated, full bound ~ 2x the simple one.
  const McCase bright{20000.0, 20.0, 1.2, 1.6, -0.45, 0.1};
  const double snr = background_limited_snr(bright.flux, bright.sigma, bright.sky_var);
  ASSERT_GT(full_bound(bright.flux, bright.x0, bright.y0, bright.sigma, bright.sky_var, bright.gain)
                .flux_frac,
            1.5 * simple_bound(snr, bright.sigma).flux_frac);
  run_monte_carlo(bright, 12);
}

}  // namespace
}  // namespace psfphot
