// The per-frame pipeline's neighbour handling (photometry.neighbour_passes and
// residual_detection) on a synthetic frame with a known answer: a bright star with a 5%
// companion 4 px away (no peak of its own), plus isolated stars.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "psfphot/algo/deblend.hpp"
#include "psfphot/core/star.hpp"
#include "psfphot/io/fits.hpp"
#include "psfphot/pipeline/neighbours.hpp"
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

// A close pair (2.6 sigma apart, flux ratio 2) and an isolated star on a sky-subtracted frame:
// one at a time, a pair's refits alternate and settle slowly (the pair's coupling); the passes
// fit it jointly, so they come to rest within a few passes (6 here), and both stars end within 4 of
// their errors of the truth, at the joint fit's answer (refit_pair on the same stamp, started
// there).
TEST(Neighbours, ClosePairSettlesInAFewPassesAtTheTruth) {
  constexpr int kW = 128;
  const double sky_rms = std::sqrt(kReadRms * kReadRms + kSky / kGain);
  struct Truth {
    double x, y, flux;
  };
  const Truth truth[3] = {{60.3, 64.2, 3e4}, {60.3 + 4.2, 64.2 + 3.06, 1.5e4}, {20.4, 20.7, 2e4}};
  const FrameConfig cfg;
  const Masters none;
  for (std::uint32_t seed : {3u, 4u, 5u}) {
    Image<double> model(kW, kW, 0.0);
    for (const Truth& t : truth) test::add_star(model, {t.x, t.y, t.flux, kSigma});
    Image<float> img = test::to_float(model);
    std::mt19937 rng(seed);
    test::add_noise(img, model, sky_rms, kGain, rng);
    FrameContext c(cfg, none);
    c.frame.pixels = std::move(img);
    c.background.rms_image = Image<float>(kW, kW, static_cast<float>(sky_rms));
    c.background.global_rms = sky_rms;
    c.gain = kGain;
    const auto iv = c.frame.pixels.cview();
    const FloatPlane rv = c.background.rms_plane();
    const auto mv = c.frame.mask.cview();
    // Starts as the centroids would give them: each pulled towards the other by ~0.3 px.
    std::vector<double> x0 = {truth[0].x + 0.3, truth[1].x - 0.3, truth[2].x + 0.1};
    std::vector<double> y0 = {truth[0].y + 0.2, truth[1].y - 0.2, truth[2].y - 0.1};
    std::vector<double> sig(3, kSigma);
    std::vector<PsfFit> fits(3);
    for (int i = 0; i < 3; ++i)
      fits[i] = measure_psf_flux(iv, rv, mv, x0[i], y0[i], kSigma, c.pixel_gain(), cfg.photometry);
    std::vector<char> moved(3, 1);
    int passes = 0;
    while (passes < 10 && std::any_of(moved.begin(), moved.end(), [](char m) { return m != 0; })) {
      fits = refit_with_neighbours(c, iv, rv, mv, x0, y0, sig, fits, moved);
      ++passes;
    }
    // At rest (nothing moved in the last pass) well before the 10-pass limit: the joint fit,
    // then its repeats from its own answer, which move by less than 1e-3 px.
    EXPECT_TRUE(std::none_of(moved.begin(), moved.end(), [](char m) { return m != 0; }))
        << "seed " << seed;
    EXPECT_LE(passes, 6) << "seed " << seed;
    for (int i = 0; i < 3; ++i) {
      const PsfFit& f = fits[i];
      ASSERT_TRUE(f.converged) << "seed " << seed << " star " << i;
      EXPECT_LT(std::abs(f.x - truth[i].x), 4 * f.x_err) << "seed " << seed << " star " << i;
      EXPECT_LT(std::abs(f.y - truth[i].y), 4 * f.y_err) << "seed " << seed << " star " << i;
      EXPECT_NEAR(f.flux, truth[i].flux, 4 * f.flux_err) << "seed " << seed << " star " << i;
    }
    // The pair's answer is the joint fit's: refitted jointly from it, it stays (within the
    // joint fit's 1e-3 px convergence).
    const auto again =
        refit_pair(iv, rv, mv, fits[0], fits[1], kSigma, c.pixel_gain(), cfg.photometry);
    ASSERT_TRUE(again[0].converged);
    for (int m = 0; m < 2; ++m) {
      EXPECT_NEAR(again[m].x, fits[m].x, 2e-3);
      EXPECT_NEAR(again[m].y, fits[m].y, 2e-3);
    }
  }
}

}  // namespace
}  // namespace psfphot::pipeline
