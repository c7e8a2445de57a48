// The photometry step's source selection (PhotometryConfig::extended_sigma_ratio): on a
// synthetic frame with a galaxy-like source (a peaked core on a broad halo) among stars,
// the galaxy is not reported as a star, seeds no false companions in the residual search,
// and every star is still measured.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "psfphot/core/star.hpp"
#include "psfphot/io/fits.hpp"
#include "psfphot/pipeline/process_frame.hpp"
#include "support/synth.hpp"
#include "support/test_support.hpp"

namespace psfphot::pipeline {
namespace {

constexpr double kSigma = 2.0, kSky = 200.0, kGain = 2.0, kReadRms = 8.0;
constexpr double kGx = 128.4, kGy = 140.2;  // galaxy centre

// The noiseless `model` on a flat sky with sky, read and photon noise, written as a FITS
// frame with EXPTIME and GAIN; returns its path.
std::string write_frame(const test::TempDir& dir, const Image<double>& model,
                        const std::string& name, unsigned seed) {
  Image<double> with_sky(model.width(), model.height(), 0.0);
  for (int y = 0; y < model.height(); ++y)
    for (int x = 0; x < model.width(); ++x) with_sky(x, y) = model(x, y) + kSky;
  Image<float> img = test::to_float(with_sky);
  std::mt19937 rng(seed);
  test::add_noise(img, model, std::sqrt(kReadRms * kReadRms + kSky / kGain), kGain, rng);
  const std::string path = dir.file(name);
  io::write_fits(path, img.cview(), {io::card("EXPTIME", 10.0), io::card("GAIN", kGain)});
  return path;
}

struct Scene {
  std::string path;
  std::vector<test::SynthStar> stars;
};

Scene write_scene(const test::TempDir& dir) {
  Scene sc;
  Image<double> model(256, 256, 0.0);
  // Core (sigma 2.6 px) on a halo (sigma 8 px): S/N ~150 in the core, like the simulator's
  // Sersic galaxies (n ~3, r_e ~12 px).
  test::add_star(model, {kGx, kGy, 4e4, 2.6});
  test::add_star(model, {kGx + 0.3, kGy - 0.2, 2.5e5, 8.0});
  for (int i = 0; i < 10; ++i) {
    const double x = 24.0 + 22.0 * i + 0.31 * i, y = (i % 2 ? 40.0 : 220.0) + 0.17 * i;
    sc.stars.push_back({x, y, 6e3 + 4e3 * i, kSigma});
  }
  for (const auto& s : sc.stars) test::add_star(model, s);
  sc.path = write_frame(dir, model, "galaxy.fits", 31);
  return sc;
}

int within(const std::vector<Star>& stars, double x, double y, double r) {
  int n = 0;
  for (const Star& s : stars)
    if (std::hypot(s.centroid_x - x, s.centroid_y - y) < r) ++n;
  return n;
}

TEST(PhotometryStep, ExtendedSourceIsNotReportedAsAStar) {
  test::TempDir dir;
  const Scene sc = write_scene(dir);
  FrameConfig cfg;
  cfg.psf.sigma_method = "fixed";
  cfg.psf.fixed_sigma_px = kSigma;
  const FrameResult on = process_frame(0, sc.path, cfg, Masters{});
  ASSERT_TRUE(on.ok()) << on.message;
  FrameConfig keep = cfg;
  keep.photometry.extended_sigma_ratio = 0;
  const FrameResult off = process_frame(0, sc.path, keep, Masters{});
  ASSERT_TRUE(off.ok()) << off.message;

  // Kept, the galaxy is measured as a star (the case being tested exists) ...
  EXPECT_GE(within(off.stars, kGx, kGy, 3.0), 1);
  // ... by default it is gone, with nothing found in its residual within 25 px.
  EXPECT_EQ(within(on.stars, kGx, kGy, 25.0), 0);
  // Every star is still there and measured, with nothing else invented.
  for (const auto& s : sc.stars) {
    EXPECT_EQ(within(on.stars, s.x, s.y, 1.0), 1) << s.x << ", " << s.y;
  }
  EXPECT_EQ(on.stars.size(), sc.stars.size());
  // Star ids stay 0..n-1 in order.
  for (std::size_t i = 0; i < on.stars.size(); ++i)
    EXPECT_EQ(on.stars[i].star_id, static_cast<std::int32_t>(i));
}

// A star on an elliptical galaxy's disc (a Sersic disc with a core, like the simulator's),
// beside fainter ones. The galaxy's light is subtracted before the stars on it are refitted
// (photometry.subtract_extended, algo/extended_profile.hpp): the bright star is no longer
// pulled along the disc's gradient, and nothing on the disc is taken for a star.
struct GalaxyScene {
  std::string path;
  std::vector<test::SynthStar> on_disc, field;
};

constexpr double kRe = 15.0, kQ = 0.5, kAngle = 0.7;

// The simulator's galaxy model (algo/simulate.cpp render_galaxy): a Sersic profile on
// elliptical radii softened by the seeing, r -> sqrt(r^2 + sigma^2); n 2, r_e 15 px, axis ratio
// 0.5, 3.5e5 ADU (S/N ~100 in its core, classified extended by its free-width fit).
GalaxyScene write_galaxy_scene(const test::TempDir& dir, unsigned seed, double gx, double gy) {
  GalaxyScene sc;
  Image<double> model(256, 256, 0.0);
  const double c = std::cos(kAngle), s = std::sin(kAngle), n = 2.0, b = 2 * n - 1.0 / 3;
  double total = 0;
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) {
      const double u = (x - gx) * c + (y - gy) * s, w = (-(x - gx) * s + (y - gy) * c) / kQ;
      const double r = std::sqrt(u * u + w * w + kSigma * kSigma);
      model(x, y) = std::exp(-b * (std::pow(r / kRe, 1.0 / n) - 1));
      total += model(x, y);
    }
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) model(x, y) *= 3.5e5 / total;
  // Along the major axis, where the disc's gradient is steepest across a star.
  sc.on_disc.push_back({gx + 12.0 * c + 0.23, gy + 12.0 * s - 0.31, 3e4, kSigma});
  sc.on_disc.push_back({gx - 20.0 * c + 0.4, gy - 20.0 * s + 0.1, 4e3, kSigma});
  sc.on_disc.push_back({gx + 9.0 * s - 0.2, gy - 9.0 * c + 0.35, 4e3, kSigma});
  for (int i = 0; i < 10; ++i) {
    const double x = 24.0 + 22.0 * i + 0.31 * i, y = (i % 2 ? 24.0 : 232.0) + 0.17 * i;
    sc.field.push_back({x, y, 6e3 + 4e3 * i, kSigma});
  }
  for (const auto& st : sc.on_disc) test::add_star(model, st);
  for (const auto& st : sc.field) test::add_star(model, st);
  sc.path = write_frame(dir, model, "disc" + std::to_string(seed) + ".fits", seed);
  return sc;
}

TEST(PhotometryStep, StarsOnAGalaxyDiscAreMeasuredWithoutItsLight) {
  test::TempDir dir;
  FrameConfig cfg;
  cfg.psf.sigma_method = "fixed";
  cfg.psf.fixed_sigma_px = kSigma;
  FrameConfig off = cfg;
  off.photometry.subtract_extended = false;
  double err_on_max = 0, err_off_sum = 0, err_on_sum = 0;
  int false_on = 0, false_off = 0;
  for (unsigned seed : {51u, 52u, 53u, 54u}) {
    // Every other frame the galaxy is centred between pixels (no pixel centre within 0.5 px
    // of it: the profile's innermost annulus is empty there).
    const double kDx = seed % 2 ? 128.4 : 128.5, kDy = seed % 2 ? 130.2 : 130.5;
    const GalaxyScene sc = write_galaxy_scene(dir, seed, kDx, kDy);
    const FrameResult a = process_frame(0, sc.path, cfg, Masters{});
    const FrameResult b = process_frame(0, sc.path, off, Masters{});
    ASSERT_TRUE(a.ok() && b.ok()) << a.message << b.message;
    // The galaxy itself is not a star either way.
    EXPECT_EQ(within(a.stars, kDx, kDy, 3.0), 0);
    auto nearest = [](const std::vector<Star>& stars, double x, double y) {
      double best = 1e9;
      for (const Star& st : stars)
        best = std::min(best, std::hypot(st.centroid_x - x, st.centroid_y - y));
      return best;
    };
    const auto& bright = sc.on_disc[0];
    const double e_on = nearest(a.stars, bright.x, bright.y);
    const double e_off = nearest(b.stars, bright.x, bright.y);
    err_on_max = std::max(err_on_max, e_on);
    err_on_sum += e_on;
    err_off_sum += e_off;
    // Every star on the disc measured within 1 px.
    for (const auto& st : sc.on_disc) EXPECT_LT(nearest(a.stars, st.x, st.y), 1.0) << seed;
    // Rows on the disc that are no star (> 1.5 px from every true one).
    auto count_false = [&](const std::vector<Star>& stars) {
      int nf = 0;
      for (const Star& st : stars) {
        if (std::hypot(st.centroid_x - kDx, st.centroid_y - kDy) > 45.0) continue;
        bool star = false;
        for (const auto& t : sc.on_disc)
          star |= std::hypot(st.centroid_x - t.x, st.centroid_y - t.y) < 1.5;
        nf += star ? 0 : 1;
      }
      return nf;
    };
    false_on += count_false(a.stars);
    false_off += count_false(b.stars);
  }
  std::printf(
      "bright star on the disc: mean position error %.3f px with the galaxy subtracted, "
      "%.3f px without; rows on the disc that are no star: %d with, %d without\n",
      err_on_sum / 4, err_off_sum / 4, false_on, false_off);
  // S/N ~300: its Cramer-Rao bound is ~0.01 px; the disc's gradient pulls it ~0.1 px.
  EXPECT_LT(err_on_max, 0.05);
  EXPECT_LT(err_on_sum, 0.5 * err_off_sum);
  EXPECT_EQ(false_on, 0);
}

// Pairs 3.6-4.2 px apart make one peak after the matched filter; the split test turns
// each such detection back into its two stars (algo/deblend.hpp).
TEST(PhotometryStep, BlendedPairsAreSplitIntoTheirStars) {
  test::TempDir dir;
  Image<double> model(256, 256, 0.0);
  std::vector<test::SynthStar> pairs, singles;
  for (int i = 0; i < 8; ++i) {
    const double cx = 30.3 + 50.0 * (i % 4) + 0.11 * i, cy = 50.6 + 60.0 * (i / 4) + 0.13 * i;
    const double sep = 3.6 + 0.2 * (i % 4), ang = 0.3 + 0.7 * i;
    const double f = 2.2e3 * (1.0 + 0.1 * (i % 3));  // S/N ~25-30 each
    pairs.push_back({cx + 0.5 * sep * std::cos(ang), cy + 0.5 * sep * std::sin(ang), f, kSigma});
    pairs.push_back(
        {cx - 0.5 * sep * std::cos(ang), cy - 0.5 * sep * std::sin(ang), 0.8 * f, kSigma});
  }
  // Most stars are single, as on a real frame (the split candidates are judged against the
  // median star's second moments).
  for (int i = 0; i < 24; ++i)
    singles.push_back({20.0 + 30.0 * (i % 8) + 0.37 * i, 180.0 + 25.0 * (i / 8) + 0.21 * i,
                       4e3 + 1e3 * i, kSigma});
  for (const auto& s : pairs) test::add_star(model, s);
  for (const auto& s : singles) test::add_star(model, s);
  const std::string path = write_frame(dir, model, "pairs.fits", 41);

  FrameConfig cfg;
  cfg.psf.sigma_method = "fixed";
  cfg.psf.fixed_sigma_px = kSigma;
  FrameConfig off = cfg;
  off.photometry.split_min_dchi2 = 0;
  const FrameResult a = process_frame(0, path, off, Masters{});
  const FrameResult b = process_frame(0, path, cfg, Masters{});
  ASSERT_TRUE(a.ok() && b.ok()) << a.message << b.message;
  int found_off = 0, found_on = 0;
  for (const auto& s : pairs) {
    found_off += within(a.stars, s.x, s.y, 1.0);
    found_on += within(b.stars, s.x, s.y, 1.0);
  }
  // Without the split most pair stars are missed (one detection between them) ...
  EXPECT_LE(found_off, static_cast<int>(pairs.size()) / 2);
  // ... with it every pair star is measured within 1 px, and the singles stay single.
  EXPECT_EQ(found_on, static_cast<int>(pairs.size()));
  for (const auto& s : singles) EXPECT_EQ(within(b.stars, s.x, s.y, 3.0), 1) << s.x;
  EXPECT_EQ(b.stars.size(), pairs.size() + singles.size());
  for (std::size_t i = 0; i < b.stars.size(); ++i)
    EXPECT_EQ(b.stars[i].star_id, static_cast<std::int32_t>(i));
  std::printf("pair stars found: %d of %zu without the split, %d with\n", found_off, pairs.size(),
              found_on);
}

}  // namespace
}  // namespace psfphot::pipeline
