#include "psfphot/algo/sim_psf.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>

namespace psfphot {
namespace {

constexpr double kPi = std::numbers::pi;

// Stamps are float: each pixel carries a relative rounding error <= 2^-24, so a sum of
// positive pixels is exact to ~1e-7 relative (summed in double here).
constexpr double kFloatRel = 1e-6;

double stamp_sum(const Stamp& s) {
  double sum = 0;
  for (int j = 0; j < s.pixels.height(); ++j)
    for (int i = 0; i < s.pixels.width(); ++i) sum += s.pixels(i, j);
  return sum;
}

// Independent reference: composite Simpson rule (n x n intervals) of the continuous PSF
// over the pixel square of frame pixel (px, py) for a star at (x, y).
double simpson_pixel(const PsfShape& psf, double x, double y, int px, int py, int n = 64) {
  auto w = [n](int k) { return (k == 0 || k == n) ? 1.0 : (k % 2 ? 4.0 : 2.0); };
  const double h = 1.0 / n;
  double sum = 0;
  for (int j = 0; j <= n; ++j)
    for (int i = 0; i <= n; ++i) {
      const double dx = px - 0.5 + i * h - x, dy = py - 0.5 + j * h - y;
      sum += w(i) * w(j) * psf_intensity(psf, std::hypot(dx, dy));
    }
  return sum * h * h / 9.0;
}

struct Case {
  PsfModel model;
  double sigma, beta, x, y;
};

class PsfStampTest : public ::testing::TestWithParam<Case> {};

TEST_P(PsfStampTest, StampSumsToTheFluxLessWhatFallsOutside) {
  const Case c = GetParam();
  const PsfShape psf{c.model, c.sigma, c.beta};
  const double flux = 12345.6;
  for (int radius : {3, 8, 20}) {
    const Stamp s = render_psf_stamp(psf, c.x, c.y, flux, radius);
    ASSERT_EQ(s.pixels.width(), 2 * radius + 1);
    const double got = stamp_sum(s) / flux;
    // The square stamp holds the disc of radius R around the star (|offset| <= 0.5 px from
    // the central pixel) and lies inside the disc of radius sqrt(2) (R + 1).
    const double lo = 1.0 - psf_fraction_outside(psf, radius);
    const double hi = 1.0 - psf_fraction_outside(psf, std::sqrt(2.0) * (radius + 1));
    EXPECT_GE(got, lo - kFloatRel) << "R=" << radius;
    EXPECT_LE(got, hi + kFloatRel) << "R=" << radius;
  }
  // A generous stamp: the flux is all there.
  const int big = stamp_radius_px(psf, flux, 1e-6, 0, 1, 300);
  const Stamp s = render_psf_stamp(psf, c.x, c.y, flux, big);
  EXPECT_NEAR(stamp_sum(s) / flux, 1.0, kFloatRel + psf_fraction_outside(psf, big));
}

TEST_P(PsfStampTest, PixelsMatchTheAnalyticPixelIntegral) {
  const Case c = GetParam();
  const PsfShape psf{c.model, c.sigma, c.beta};
  const double flux = 1000.0;
  // Out to 45 px so that every quadrature order of the Moffat's wing is visited.
  const Stamp s = render_psf_stamp(psf, c.x, c.y, flux, 45);
  const ImageView<const float> v = s.view();
  for (int py = v.origin_y(); py < v.origin_y() + v.height(); py += 5)
    for (int px = v.origin_x(); px < v.origin_x() + v.width(); px += 3) {
      double ref;
      if (c.model == PsfModel::kGaussian) {
        // Exact: product of 1-D erf differences.
        const double k = 1.0 / (c.sigma * std::numbers::sqrt2);
        ref = 0.25 * (std::erf((px + 0.5 - c.x) * k) - std::erf((px - 0.5 - c.x) * k)) *
              (std::erf((py + 0.5 - c.y) * k) - std::erf((py - 0.5 - c.y) * k));
      } else {
        ref = simpson_pixel(psf, c.x, c.y, px, py);
      }
      // Float storage (1e-7 relative) plus the quadrature's documented 1e-6 per pixel;
      // an absolute floor for pixels near zero.
      EXPECT_NEAR(v.at_frame(px, py) / flux, ref, 2e-6 * ref + 1e-12) << px << "," << py;
    }
}

INSTANTIATE_TEST_SUITE_P(Models, PsfStampTest,
                         ::testing::Values(Case{PsfModel::kGaussian, 2.0, 0, 10.0, 20.0},
                                           Case{PsfModel::kGaussian, 0.9, 0, 10.37, 20.49},
                                           Case{PsfModel::kGaussian, 3.3, 0, -4.21, 7.8},
                                           Case{PsfModel::kMoffat, 2.0, 3.0, 10.25, 20.4},
                                           Case{PsfModel::kMoffat, 1.2, 2.5, 0.49, -0.3},
                                           Case{PsfModel::kMoffat, 3.0, 4.765, 5.0, 5.0}),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return std::string(psf_model_name(p.param.model)) + "_" +
                                  std::to_string(p.index);
                         });

TEST(SimPsf, MoffatHasTheFwhmOfItsEquivalentGaussian) {
  for (double beta : {2.0, 3.0, 4.765}) {
    const PsfShape m{PsfModel::kMoffat, 2.0, beta};
    const double half_fwhm = std::sqrt(2.0 * std::log(2.0)) * 2.0;
    EXPECT_NEAR(psf_intensity(m, half_fwhm) / psf_intensity(m, 0.0), 0.5, 1e-12);
  }
  const PsfShape g{PsfModel::kGaussian, 2.0, 0};
  EXPECT_NEAR(psf_intensity(g, 0.0), 1.0 / (2 * kPi * 4.0), 1e-15);
}

TEST(SimPsf, FractionOutsideIsTheIntegralOfTheIntensity) {
  for (PsfShape psf :
       {PsfShape{PsfModel::kGaussian, 1.7, 0}, PsfShape{PsfModel::kMoffat, 1.7, 3}}) {
    // d/dr (fraction outside r) = -2 pi r I(r).
    for (double r : {0.5, 2.0, 6.0}) {
      const double h = 1e-5;
      const double deriv =
          (psf_fraction_outside(psf, r + h) - psf_fraction_outside(psf, r - h)) / (2 * h);
      EXPECT_NEAR(deriv, -2 * kPi * r * psf_intensity(psf, r), 1e-8);
    }
    EXPECT_DOUBLE_EQ(psf_fraction_outside(psf, 0.0), 1.0);
  }
}

TEST(SimPsf, StampRadiusEndsWhereTheStarIsFaintAndMostlyInside) {
  for (PsfShape psf :
       {PsfShape{PsfModel::kGaussian, 2.0, 0}, PsfShape{PsfModel::kMoffat, 2.0, 3}}) {
    for (double flux : {300.0, 1e4, 1e6}) {
      const int r = stamp_radius_px(psf, flux, 0.02, 0, 1, 1000);
      EXPECT_LE(flux * psf_intensity(psf, r), 0.02) << flux;
      EXPECT_GT(flux * psf_intensity(psf, r - 1), 0.02) << flux;
      // With a bound on the flux left outside, whichever needs the larger stamp wins.
      const int rm = stamp_radius_px(psf, flux, 0.02, 1e-3, 1, 1000);
      EXPECT_LE(psf_fraction_outside(psf, rm), 1e-3) << flux;
      EXPECT_TRUE(rm == r || psf_fraction_outside(psf, rm - 1) > 1e-3) << flux;
      EXPECT_GE(rm, r);
    }
    EXPECT_EQ(stamp_radius_px(psf, 1e9, 0.02, 1e-3, 3, 12), 12);
    EXPECT_EQ(stamp_radius_px(psf, 1e-3, 0.02, 0, 7, 64), 7);
  }
}

TEST(SimPsf, StampIsCentredOnTheNearestPixel) {
  const Stamp s = render_psf_stamp({PsfModel::kGaussian, 2.0, 0}, 100.4, 50.6, 1.0, 5);
  EXPECT_EQ(s.x0, 95);
  EXPECT_EQ(s.y0, 46);
  // The brightest pixel is the one containing the centre.
  const ImageView<const float> v = s.view();
  for (int j = 0; j < v.height(); ++j)
    for (int i = 0; i < v.width(); ++i) EXPECT_LE(v(i, j), v.at_frame(100, 51));
}

}  // namespace
}  // namespace psfphot
