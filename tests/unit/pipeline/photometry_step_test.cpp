// The photometry step's source selection (PhotometryConfig::extended_sigma_ratio): on a
// synthetic frame with a galaxy-like source (a peaked core on a broad halo) among stars,
// the galaxy is not reported as a star, seeds no false companions in the residual search,
// and every star is still measured.
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
constexpr double kGx = 128.4, kGy = 140.2;  // galaxy centre

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
  Image<double> with_sky(256, 256, 0.0);
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) with_sky(x, y) = model(x, y) + kSky;
  Image<float> img = test::to_float(with_sky);
  std::mt19937 rng(31);
  test::add_noise(img, model, std::sqrt(kReadRms * kReadRms + kSky / kGain), kGain, rng);
  sc.path = dir.file("galaxy.fits");
  io::write_fits(sc.path, img.cview(), {io::card("EXPTIME", 10.0), io::card("GAIN", kGain)});
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

}  // namespace
}  // namespace psfphot::pipeline
