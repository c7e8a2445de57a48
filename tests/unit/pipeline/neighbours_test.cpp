// The per-frame pipeline's neighbour handling (photometry.neighbour_passes and
// residual_detection) on a synthetic frame with a known answer: a bright star with a 5%
// companion 4 px away (no peak of its own), plus isolated stars.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "psfphot/core/star.hpp"
#include "psfphot/io/fits.hpp"
#include "psfphot/pipeline/process_frame.hpp"
#include "support/synth.hpp"
#include "support/test_support.hpp"

namespace psfphot::pipeline {
namespace {

constexpr double kSigma = 2.0, kSky = 200.0, kGain = 2.0, kReadRms = 8.0;
constexpr double kBx = 100.3, kBy = 120.6, kBflux = 4e5;
constexpr double kCx = kBx + 3.4, kCy = kBy + 2.1, kCflux = 0.05 * kBflux;  // 4.0 px away

std::string write_scene(const test::TempDir& dir) {
  Image<double> model(256, 256, 0.0);
  test::add_star(model, {kBx, kBy, kBflux, kSigma});
  test::add_star(model, {kCx, kCy, kCflux, kSigma});
  for (int i = 0; i < 8; ++i)  // isolated stars, S/N ~100-300, for the PSF width
    test::add_star(model, {30.0 + 25.0 * i + 0.37 * i, 30.0 + 0.21 * i, 2e4 + 5e3 * i, kSigma});
  Image<double> with_sky(256, 256, 0.0);
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) with_sky(x, y) = model(x, y) + kSky;
  Image<float> img = test::to_float(with_sky);
  std::mt19937 rng(17);
  const double sky_rms = std::sqrt(kReadRms * kReadRms + kSky / kGain);
  test::add_noise(img, model, sky_rms, kGain, rng);
  const std::string path = dir.file("scene.fits");
  io::write_fits(path, img.cview(), {io::card("EXPTIME", 10.0), io::card("GAIN", kGain)});
  return path;
}

const Star* nearest(const std::vector<Star>& stars, double x, double y, double* d) {
  const Star* best = nullptr;
  *d = 1e9;
  for (const Star& s : stars) {
    const double r = std::hypot(s.centroid_x - x, s.centroid_y - y);
    if (std::isfinite(r) && r < *d) {
      *d = r;
      best = &s;
    }
  }
  return best;
}

TEST(Neighbours, HiddenCompanionFoundAndBrightStarNoLongerPulled) {
  test::TempDir dir;
  const std::string path = write_scene(dir);
  FrameConfig cfg;
  cfg.psf.sigma_method = "fixed";
  cfg.psf.fixed_sigma_px = kSigma;
  const Masters none;
  const FrameResult with = process_frame(0, path, cfg, none);
  ASSERT_TRUE(with.ok()) << with.message;
  FrameConfig off = cfg;
  off.photometry.neighbour_passes = 0;
  const FrameResult without = process_frame(0, path, off, none);
  ASSERT_TRUE(without.ok()) << without.message;

  double d = 0;
  // Alone, the fit has no companion: it is not in the list, and the bright star is pulled
  // towards it by its light (5% of the flux 4 px away: ~0.1 px).
  nearest(without.stars, kCx, kCy, &d);
  EXPECT_GT(d, 1.5) << "the companion makes no peak of its own";
  const Star* b0 = nearest(without.stars, kBx, kBy, &d);
  ASSERT_NE(b0, nullptr);
  const double pulled = d;
  EXPECT_GT(pulled, 0.05);

  // With the residual search: the companion is found and flagged as such, its flux within
  // 4 of its own errors; the bright star's position within 4 of its errors.
  const Star* c = nearest(with.stars, kCx, kCy, &d);
  ASSERT_NE(c, nullptr);
  EXPECT_LT(d, 0.5);
  EXPECT_TRUE(c->flags & star_flag::kFoundInResidual);
  EXPECT_NEAR(c->psf_flux, kCflux, 4 * c->psf_flux_err);
  const Star* b = nearest(with.stars, kBx, kBy, &d);
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->flags & star_flag::kFoundInResidual);
  EXPECT_LT(std::abs(b->centroid_x - kBx), 4 * b->centroid_err_x);
  EXPECT_LT(std::abs(b->centroid_y - kBy), 4 * b->centroid_err_y);
  EXPECT_LT(d, 0.25 * pulled);
  EXPECT_NEAR(b->psf_flux, kBflux, 4 * b->psf_flux_err);
  // Nothing else was invented: the 8 isolated stars, the pair, no more.
  EXPECT_EQ(with.stars.size(), without.stars.size() + 1);
  // Star ids stay 0..n-1 in order.
  for (std::size_t i = 0; i < with.stars.size(); ++i)
    EXPECT_EQ(with.stars[i].star_id, static_cast<std::int32_t>(i));
}

}  // namespace
}  // namespace psfphot::pipeline
