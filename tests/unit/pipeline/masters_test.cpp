#include "psfphot/pipeline/masters.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot::pipeline {
namespace {

using test::TempDir;

// Darks: bias + a fixed pattern + noise, each with a few cosmic-ray hits; 150 rows so the
// 64-row stacking blocks do not divide the frame.
constexpr int kW = 41, kH = 150;

float pattern(int x, int y) {
  return static_cast<float>(500.0 + 0.5 * x + 0.25 * y);
}

std::vector<std::string> write_darks(const TempDir& dir, int n, double exptime_s) {
  std::vector<std::string> paths;
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0.0, 3.0);
  for (int i = 0; i < n; ++i) {
    Image<float> img(kW, kH);
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x)
        img(x, y) = static_cast<float>(std::round(pattern(x, y) + noise(rng)));
    for (int k = 0; k < 20; ++k) img((7 * k + 3 * i) % kW, (13 * k + 5 * i) % kH) = 60000.f;
    const std::string p = dir.file("dark" + std::to_string(i) + ".fits");
    io::write_fits(p, img.cview(), {io::card("EXPTIME", exptime_s)});
    paths.push_back(p);
  }
  return paths;
}

// Stacking a block of rows at a time must give exactly what stacking whole frames gives.
TEST(Masters, StreamedDarkEqualsWholeFrameStack) {
  TempDir dir;
  const auto paths = write_darks(dir, 5, 30.0);
  CombineConfig cfg;
  double t = 0;
  const Image<float> master = build_master_dark(paths, cfg, &t);
  EXPECT_DOUBLE_EQ(t, 30.0);
  std::vector<io::FitsImage> frames;
  std::vector<ImageView<const float>> views;
  for (const auto& p : paths) frames.push_back(io::read_fits(p));
  for (const auto& f : frames) views.push_back(f.pixels.cview());
  const Image<float> whole = combine_frames(views, cfg);
  ASSERT_EQ(master.width(), kW);
  ASSERT_EQ(master.height(), kH);
  int differ = 0;
  double worst = 0;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      differ += master(x, y) != whole(x, y);
      worst = std::max(worst, std::abs(double(master(x, y)) - pattern(x, y)));
    }
  EXPECT_EQ(differ, 0);
  // And the clipping removed every cosmic ray: within 5 noise sigmas of the pattern
  // (the clipped mean of 4-5 frames of sigma 3 has sd <= 1.5).
  EXPECT_LT(worst, 7.5);
}

TEST(Masters, DarksOfAnotherExposureOrShapeAreNamed) {
  TempDir dir;
  const auto paths = write_darks(dir, 3, 30.0);
  Image<float> small(kW, kH - 1, 500.f);
  const std::string odd = dir.file("odd.fits");
  io::write_fits(odd, small.cview(), {io::card("EXPTIME", 30.0)});
  auto with_odd = paths;
  with_odd.push_back(odd);
  try {
    build_master_dark(with_odd, CombineConfig{}, nullptr);
    FAIL() << "expected a shape error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("odd.fits"), std::string::npos) << e.what();
  }
  Image<float> longer(kW, kH, 500.f);
  const std::string slow = dir.file("slow.fits");
  io::write_fits(slow, longer.cview(), {io::card("EXPTIME", 90.0)});
  auto with_slow = paths;
  with_slow.push_back(slow);
  try {
    build_master_dark(with_slow, CombineConfig{}, nullptr);
    FAIL() << "expected an EXPTIME error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("slow.fits"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("EXPTIME"), std::string::npos) << e.what();
  }
}

// Flats k_i * R + dark (scaled by exposure time): the master is R / median(R), whatever
// the k_i, once the dark scaled by each flat's EXPTIME is removed.
TEST(Masters, StreamedFlatRemovesTheScaledDarkAndNormalises) {
  TempDir dir;
  Image<float> dark(kW, kH);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) dark(x, y) = static_cast<float>(10.0 + (x % 5));
  auto response = [](int x, int y) {
    return 0.8 + 0.4 * std::exp(-((x - 20.0) * (x - 20.0) + (y - 75.0) * (y - 75.0)) / 2000.0);
  };
  std::vector<std::string> paths;
  const double ks[] = {10000, 14000, 9000};
  const double ts[] = {2.0, 3.0, 1.0};  // the dark is for 1 s
  for (int i = 0; i < 3; ++i) {
    Image<float> f(kW, kH);
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x)
        f(x, y) = static_cast<float>(ks[i] * response(x, y) + ts[i] * dark(x, y));
    paths.push_back(dir.file("flat" + std::to_string(i) + ".fits"));
    io::write_fits(paths.back(), f.cview(), {io::card("EXPTIME", ts[i])});
  }
  const Image<float> master = build_master_flat(paths, CombineConfig{}, &dark, 1.0);
  std::vector<double> r;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) r.push_back(response(x, y));
  const double med = median_inplace(r);  // stats.hpp, tested on its own
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x)
      ASSERT_NEAR(master(x, y), response(x, y) / med, 2e-5) << x << "," << y;
}

}  // namespace
}  // namespace psfphot::pipeline
