#include "psfphot/algo/background.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "../../../src/algo/background_mesh.hpp"
#include "psfphot/algo/stats.hpp"
#include "support/synth.hpp"

namespace psfphot {
namespace {

// The per-mesh error budget (n pixels of a sky with noise sigma):
//  * level: the mode estimate 2.5 median - 1.5 mean has variance
//    (6.25 pi/2 + 2.25 - 7.5) sigma^2 / n = 4.57 sigma^2 / n for a normal sample (the
//    mean-median covariance is sigma^2 / n), i.e. sd 2.14 sigma / sqrt(n);
//  * rms: the standard deviation of a sample has sd sigma / sqrt(2 n) (less once the
//    tails are clipped).
double mode_se(double sigma, double n) {
  return 2.14 * sigma / std::sqrt(n);
}
double rms_se(double sigma, double n) {
  return sigma / std::sqrt(2 * n);
}

// Iterative kappa-sigma clipping of a normal distribution converges to the s with
// s^2 = Var(X | |X| < kappa s): the standard deviation the mesh RMS estimates (~0.984 sigma
// at kappa = 3), computed here from the truncated-normal variance.
double clipped_sd_factor(double kappa) {
  double s = 1.0;
  for (int i = 0; i < 200; ++i) {
    const double c = kappa * s;
    const double phi = std::exp(-0.5 * c * c) / std::sqrt(2 * std::numbers::pi);
    const double mass = std::erf(c / std::numbers::sqrt2);  // 2 Phi(c) - 1
    s = std::sqrt(1.0 - 2.0 * c * phi / mass);
  }
  return s;
}

// Beyond the outer mesh centres (the outer half mesh) the spline extrapolates with weights
// (1.5, -0.5) per axis, amplifying the node noise by sqrt(1.5^2 + 0.5^2) = 1.58 per axis.
double edge_amp(int x, int y, int w, int h, int mesh = 64) {
  auto a = [&](int v, int n) { return (v < mesh / 2 || v > n - 1 - mesh / 2) ? 1.58 : 1.0; };
  return a(x, w) * a(y, h);
}

double map_mean(const Image<float>& m) {
  double s = 0;
  for (int y = 0; y < m.height(); ++y)
    for (int x = 0; x < m.width(); ++x) s += m(x, y);
  return s / static_cast<double>(m.size());
}

TEST(BackgroundTest, FlatSkyLevelAndRmsWithinSamplingError) {
  constexpr int w = 1024, h = 1024;
  constexpr double sky = 1000, sigma = 10;
  Image<float> img = test::constant(w, h, static_cast<float>(sky));
  std::mt19937 rng(1);
  test::add_noise(img, sigma, rng);
  const BackgroundConfig cfg;  // 64 px meshes: 16 x 16 of 4096 px
  const Background bg = estimate_background(img.cview(), {}, cfg);
  ASSERT_EQ(bg.mesh_level.width(), 16);
  ASSERT_EQ(bg.mesh_level.height(), 16);
  EXPECT_EQ(bg.n_bad_meshes, 0);
  const double n = 64.0 * 64.0;
  const double rms_truth = clipped_sd_factor(cfg.clip_kappa) * sigma;
  EXPECT_NEAR(rms_truth / sigma, 0.984, 0.002);
  // Every pixel of the maps is a smooth combination of mesh values: within 5 per-mesh
  // standard errors (more where extrapolated).
  for (int y = 0; y < h; y += 7)
    for (int x = 0; x < w; x += 7) {
      const double a = edge_amp(x, y, w, h);
      ASSERT_NEAR(bg.level(x, y), sky, 5 * a * mode_se(sigma, n)) << x << "," << y;
      ASSERT_NEAR(bg.rms_image(x, y), rms_truth, 5 * a * rms_se(sigma, n)) << x << "," << y;
    }
  // Averages over the 256 meshes: after the 3x3 median filter at least 256 / 9 of them are
  // independent, and a median of 9 has <= 1.25 / 3 the sd of one value; 5 sd allowed. This
  // is tight enough (0.4% of sigma) to see the clipping's 1.6% RMS deficit.
  const double k = 5 * 1.25 / 3 / std::sqrt(256.0 / 9);
  EXPECT_NEAR(map_mean(bg.mesh_level), sky, k * mode_se(sigma, n));
  EXPECT_NEAR(map_mean(bg.mesh_rms), rms_truth, k * rms_se(sigma, n));
  EXPECT_NEAR(bg.global_level, sky, 5 * mode_se(sigma, n));
  EXPECT_NEAR(bg.global_rms, rms_truth, 5 * rms_se(sigma, n));
}

TEST(BackgroundTest, PartialMeshesAndNonFinitePixels) {
  // 300 x 200 with 64 px meshes: the last column/row of meshes is 44 / 8 px; NaNs ignored.
  constexpr int w = 300, h = 200;
  Image<float> img = test::constant(w, h, 50.f);
  std::mt19937 rng(2);
  test::add_noise(img, 2.0, rng);
  for (int i = 0; i < 500; ++i)
    img((i * 37) % w, (i * 11) % h) = std::numeric_limits<float>::quiet_NaN();
  const Background bg = estimate_background(img.cview(), {}, BackgroundConfig{});
  EXPECT_EQ(bg.mesh_level.width(), 5);
  EXPECT_EQ(bg.mesh_level.height(), 4);
  ASSERT_EQ(bg.level.width(), w);
  ASSERT_EQ(bg.level.height(), h);
  // The smallest meshes hold 44 x 8 = 352 pixels: 5 standard errors of those.
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      ASSERT_TRUE(std::isfinite(bg.level(x, y)));
      ASSERT_NEAR(bg.level(x, y), 50.0, 5 * mode_se(2.0, 352));
    }
}

TEST(BackgroundTest, LinearGradientReproducedBySpline) {
  constexpr int w = 512, h = 512;
  constexpr double sigma = 10;
  auto truth = [](int x, int y) { return 1000.0 + 0.05 * x - 0.03 * y; };
  Image<float> clean(w, h), noisy(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) clean(x, y) = noisy(x, y) = static_cast<float>(truth(x, y));
  std::mt19937 rng(3);
  test::add_noise(noisy, sigma, rng);
  // Without the median filter: a plane is symmetric about each mesh centre (mode = median =
  // mean = value at the centre) and the natural spline reproduces a linear function exactly,
  // also in the outer half meshes, so the noiseless map is the plane to float rounding.
  BackgroundConfig cfg;
  cfg.filter_size = 1;
  const Background bg0 = estimate_background(clean.cview(), {}, cfg);
  double worst = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) worst = std::max(worst, std::abs(bg0.level(x, y) - truth(x, y)));
  EXPECT_LT(worst, 2e-3);
  // With noise the map errs by the mesh noise only: 5 per-mesh standard errors between the
  // outer mesh centres (a small fraction, < 0.2, of the RMS; more where extrapolated),
  // ~0.03 RMS on average.
  const Background bg = estimate_background(noisy.cview(), {}, cfg);
  double sum_abs = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double e = bg.level(x, y) - truth(x, y);
      ASSERT_LT(std::abs(e), 5 * mode_se(sigma, 4096) * edge_amp(x, y, w, h)) << x << "," << y;
      sum_abs += std::abs(e);
    }
  EXPECT_LT(sum_abs / (w * h) / sigma, 0.06);
  // The default 3x3 median filter keeps its window centred on the mesh (shrunk at the grid
  // edges), so on a plane the median is the centre value and the map stays exact over the
  // whole frame, edges and corners included.
  const Background bgf = estimate_background(clean.cview(), {}, BackgroundConfig{});
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) ASSERT_NEAR(bgf.level(x, y), truth(x, y), 2e-3) << x << "," << y;
}

TEST(BackgroundTest, StarsBiasTheModeFarLessThanTheMean) {
  constexpr int w = 512, h = 512;
  constexpr double sky = 1000, sigma = 10;
  Image<float> img = test::constant(w, h, static_cast<float>(sky));
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> uf(2000, 20000);
  auto stars = test::scatter_stars(400, w, h, 3, 6, 0, 2.0, rng);
  for (auto& s : stars) {
    s.flux = uf(rng);
    test::add_star(img, s);
  }
  test::add_noise(img, sigma, rng);
  double mean = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) mean += img(x, y);
  mean /= w * h;
  const double mean_bias = mean - sky;
  ASSERT_GT(mean_bias, 10.0);  // ~17 ADU of starlight per pixel on average
  const Background bg = estimate_background(img.cview(), {}, BackgroundConfig{});
  const double mode_bias = map_mean(bg.level) - sky;
  EXPECT_LT(std::abs(mode_bias), 0.1 * mean_bias);
  EXPECT_LT(std::abs(bg.global_level - sky), 0.1 * mean_bias);
  // And the RMS is not blown up by the stars' cores (clipped away).
  EXPECT_LT(bg.global_rms, 1.1 * sigma);
}

TEST(BackgroundTest, MaskedBlobExcluded) {
  // An extended source (a galaxy) several meshes wide, so the 3x3 median filter over the
  // mesh grid does not remove it by itself: 300 ADU peak, sigma 50 px, masked out to 4 sigma
  // (0.1 ADU left beyond).
  constexpr int w = 1024, h = 1024;
  constexpr double sky = 1000, sigma = 10, blob_sigma = 50, radius = 200, c = 512;
  Image<float> img = test::constant(w, h, static_cast<float>(sky));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double r2 = (x - c) * (x - c) + (y - c) * (y - c);
      img(x, y) += static_cast<float>(300.0 * std::exp(-0.5 * r2 / (blob_sigma * blob_sigma)));
    }
  std::mt19937 rng(5);
  test::add_noise(img, sigma, rng);
  auto make_mask = [&](MaskBits bit) {
    Image<MaskBits> m(w, h, 0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if (std::hypot(x - c, y - c) < radius) m(x, y) = bit;
    return m;
  };
  const Image<MaskBits> user_bg = make_mask(mask::kUserBackground);
  const Background masked = estimate_background(img.cview(), user_bg.cview(), BackgroundConfig{});
  EXPECT_GT(masked.n_bad_meshes, 0);  // the central meshes are filled from their neighbours
  // 5 per-mesh standard errors plus the 0.1 ADU the blob leaves outside the mask.
  for (int y = 0; y < h; y += 5)
    for (int x = 0; x < w; x += 5)
      ASSERT_NEAR(masked.level(x, y), sky, 5 * edge_amp(x, y, w, h) * mode_se(sigma, 4096) + 0.1)
          << x << "," << y;
  // Unmasked, or masked with a bit the background does not exclude (kUserDetect), the blob
  // lifts the level at its centre by over 1 RMS (clipping removes only part of a source this
  // smooth): the mask is what made the difference.
  const Background plain = estimate_background(img.cview(), {}, BackgroundConfig{});
  EXPECT_GT(plain.level(512, 512) - sky, sigma);
  const Image<MaskBits> detect_only = make_mask(mask::kUserDetect);
  const Background other = estimate_background(img.cview(), detect_only.cview(), {});
  EXPECT_GT(other.level(512, 512) - sky, sigma);
  // ... unless the caller asks for that bit to be excluded.
  BackgroundConfig cfg;
  cfg.exclude_bits = mask::kUserDetect;
  const Background asked = estimate_background(img.cview(), detect_only.cview(), cfg);
  EXPECT_NEAR(asked.level(512, 512), sky, 5 * mode_se(sigma, 4096) + 0.1);
}

TEST(BackgroundTest, TooManyMaskedMeshesThrow) {
  constexpr int w = 256, h = 256;  // 4 x 4 meshes
  Image<float> img = test::constant(w, h, 10.f);
  std::mt19937 rng(6);
  test::add_noise(img, 1.0, rng);
  Image<MaskBits> m(w, h, mask::kSaturated);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) m(x, y) = 0;  // one good mesh of 16
  EXPECT_THROW(estimate_background(img.cview(), m.cview(), BackgroundConfig{}), BackgroundError);
  // Allowed by the config: the one good mesh fills the whole grid.
  BackgroundConfig cfg;
  cfg.max_bad_mesh_fraction = 1.0;
  const Background bg = estimate_background(img.cview(), m.cview(), cfg);
  EXPECT_EQ(bg.n_bad_meshes, 15);
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(bg.mesh_level(i, j), bg.mesh_level(0, 0));
  EXPECT_NEAR(bg.mesh_level(0, 0), 10.0, 5 * mode_se(1.0, 4096));
  // Everything masked: nothing to estimate, whatever the config.
  Image<MaskBits> all(w, h, mask::kNonFinite);
  EXPECT_THROW(estimate_background(img.cview(), all.cview(), cfg), BackgroundError);
}

TEST(BackgroundTest, InvalidInputsThrow) {
  Image<float> img = test::constant(64, 64, 1.f);
  BackgroundConfig cfg;
  cfg.mesh_px = 1;
  EXPECT_THROW(estimate_background(img.cview(), {}, cfg), BackgroundError);
  Image<MaskBits> m(63, 64, 0);
  EXPECT_THROW(estimate_background(img.cview(), m.cview(), BackgroundConfig{}), BackgroundError);
}

TEST(BackgroundTest, SplineReproducesConstantAndLinearGridsExactly) {
  // Non-uniform node spacing and nodes inside the image: the outer pixels are extrapolated.
  const std::vector<double> cx{10, 30, 50, 70, 85}, cy{5, 20, 40, 61};
  constexpr int w = 100, h = 70;
  Image<float> lin(5, 4), con(5, 4, 42.5f);
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 5; ++i) lin(i, j) = static_cast<float>(3.0 + 0.2 * cx[i] - 0.5 * cy[j]);
  const Image<float> up_c = spline_upsample(con.cview(), cx, cy, w, h);
  const Image<float> up_l = spline_upsample(lin.cview(), cx, cy, w, h);
  ASSERT_EQ(up_l.width(), w);
  ASSERT_EQ(up_l.height(), h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      ASSERT_NEAR(up_c(x, y), 42.5, 1e-5) << x << "," << y;
      // Float output, values up to ~25: 1e-4 is a few ulps.
      ASSERT_NEAR(up_l(x, y), 3.0 + 0.2 * x - 0.5 * y, 1e-4) << x << "," << y;
    }
}

TEST(BackgroundTest, SplineInterpolatesThroughTheNodes) {
  const std::vector<double> cx{3, 11, 19, 27, 35, 43}, cy{3, 11, 19, 27};
  Image<float> g(6, 4);
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(-5.f, 5.f);
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 6; ++i) g(i, j) = u(rng);
  const Image<float> up = spline_upsample(g.cview(), cx, cy, 47, 31);
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 6; ++i)
      EXPECT_NEAR(up(static_cast<int>(cx[i]), static_cast<int>(cy[j])), g(i, j), 1e-5);
  // A single node: a constant map.
  Image<float> one(1, 1, 7.f);
  const Image<float> c = spline_upsample(one.cview(), {12.0}, {9.0}, 30, 20);
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 30; ++x) ASSERT_FLOAT_EQ(c(x, y), 7.f);
}

// The per-mesh statistics (value buckets sorted on demand) against the plain iteration over
// the whole array (sigma_clip_inplace): the same kept count, median and iterations, mean and
// standard deviation to rounding, on sky with stars, quantised (many ties), constant, skewed
// and tiny samples, and offsets far from zero; meshes of up to 65535 values and of more (the
// counting sort's 16- and 32-bit counters).
TEST(BackgroundTest, MeshStatisticsMatchTheArrayIteration) {
  std::mt19937 rng(21);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::exponential_distribution<double> ed(1.0);
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  detail::MeshScratch scratch;
  int cases = 0;
  for (int n : {1, 2, 3, 7, 63, 64, 65, 200, 1000, 4096, 4097, 20000, 65535, 65536, 70001}) {
    for (int kind = 0; kind < 7; ++kind) {
      std::vector<float> v(n);
      const double off = kind == 5 ? 3e4 : (kind == 6 ? -2e-3 : 181.0);
      const double sd = kind == 6 ? 1e-5 : 14.6;
      for (auto& x : v) {
        double y = off + sd * nd(rng);
        if (kind == 1 && ud(rng) < 0.05) y += 60000 * ud(rng) * ud(rng);  // stars
        if (kind == 2) y = std::round(y / 2.92) * 2.92;                   // quantised
        if (kind == 3) y = off;                                           // constant
        if (kind == 4) y = off + sd * ed(rng);                            // skewed
        x = static_cast<float>(y);
      }
      if (kind == 1 && n > 10) v[n / 3] = 3e38f;  // one extreme value
      std::vector<float> ref = v;
      const ClippedStats want = sigma_clip_inplace(ref, 3.0, 10);
      const ClippedStats got = detail::clip_mesh(v.data(), v.size(), scratch, 3.0, 10);
      ASSERT_EQ(got.n, want.n) << n << " " << kind;
      ASSERT_EQ(got.median, want.median) << n << " " << kind;
      ASSERT_EQ(got.iterations, want.iterations) << n << " " << kind;
      const double tol = 1e-9 * (std::abs(want.mean) + want.stddev) + 1e-300;
      ASSERT_NEAR(got.mean, want.mean, tol) << n << " " << kind;
      ASSERT_NEAR(got.stddev, want.stddev, tol) << n << " " << kind;
      ++cases;
    }
  }
  EXPECT_EQ(cases, 105);
}

template <typename T>
bool same_bytes(const Image<T>& a, const Image<T>& b) {
  return a.width() == b.width() && a.height() == b.height() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

TEST(BackgroundTest, OneAndTwoThreadsGiveIdenticalBytes) {
  constexpr int w = 700, h = 530;
  Image<float> img = test::constant(w, h, 300.f);
  std::mt19937 rng(9);
  for (const auto& s : test::scatter_stars(150, w, h, 0, 3, 30000, 1.8, rng))
    test::add_star(img, s);
  test::add_noise(img, 6.0, rng);
  Image<MaskBits> m(w, h, 0);
  for (int y = 100; y < 300; ++y)
    for (int x = 50; x < 260; ++x) m(x, y) = mask::kUserBackground;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Background a = estimate_background(img.cview(), m.cview(), BackgroundConfig{});
  omp_set_num_threads(2);
  const Background b = estimate_background(img.cview(), m.cview(), BackgroundConfig{});
  omp_set_num_threads(saved);
  EXPECT_TRUE(same_bytes(a.level, b.level));
  EXPECT_TRUE(same_bytes(a.rms_image, b.rms_image));
  EXPECT_TRUE(same_bytes(a.mesh_level, b.mesh_level));
  EXPECT_EQ(a.n_bad_meshes, b.n_bad_meshes);
  EXPECT_EQ(a.global_level, b.global_level);
}

// Without the full-resolution level image, level_at and subtract_background evaluate the
// same spline row by row: they must give the very same floats, everywhere (an image whose
// size is not a multiple of the mesh, with a sky gradient and stars).
TEST(BackgroundTest, LevelWithoutTheFullImageIsBitIdentical) {
  const int w = 203, h = 131;
  Image<float> img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img(x, y) = static_cast<float>(100.0 + 0.3 * x - 0.2 * y);
  std::mt19937 rng(5);
  test::add_noise(img, 4.0, rng);
  for (int i = 0; i < 12; ++i) test::add_star(img, {10.0 + 15.0 * i, 20.0 + 8.0 * i, 2000.0, 1.5});
  BackgroundConfig cfg;
  cfg.mesh_px = 32;
  const Background full = estimate_background(img.cview(), {}, cfg, true);
  const Background lean = estimate_background(img.cview(), {}, cfg, false);
  ASSERT_FALSE(full.level.empty());
  ASSERT_TRUE(lean.level.empty());
  int differ = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      differ += lean.level_at(x, y) != full.level(x, y);
      differ += full.level_at(x, y) != full.level(x, y);
    }
  EXPECT_EQ(differ, 0);
  // The level varies (a gradient), so equality above is not a constant map agreeing.
  EXPECT_GT(std::abs(full.level(w - 1, 0) - full.level(0, h - 1)), 50.0f);
  Image<float> a = img.clone(), b = img.clone();
  subtract_background(a.view(), lean);
  subtract_background(b.view(), full);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float want = img(x, y) - full.level(x, y);
      differ += a(x, y) != want;
      differ += b(x, y) != want;
    }
  EXPECT_EQ(differ, 0);
  // The RMS map likewise: kept as an image only with the level, else computed where read.
  ASSERT_FALSE(full.rms_image.empty());
  EXPECT_TRUE(lean.rms_image.empty());
  const FloatPlane lr = lean.rms_plane();
  ASSERT_EQ(lr.kind(), FloatPlane::Kind::kComputed);
  std::vector<float> row(w);
  for (int y = 0; y < h; ++y) {
    const float* r = lr.row(y, row.data());
    for (int x = 0; x < w; ++x) {
      differ += std::memcmp(&r[x], &full.rms_image(x, y), 4) != 0;
      const float v = lr(x, y);
      differ += std::memcmp(&v, &full.rms_image(x, y), 4) != 0;
    }
  }
  EXPECT_EQ(differ, 0);
}

// SplineMap, the RMS map computed where it is read: any pixel and any part of a row (within
// one mesh interval or across several, from the frame's edges or inside, through a subview)
// is spline_upsample's value bit for bit, also for grids of one node column or row.
TEST(BackgroundTest, SplineMapPartsAreTheUpsampledMapBitForBit) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(5.0, 30.0);
  struct Case {
    int gw, gh, w, h;
  };
  for (const Case c : {Case{7, 5, 203, 131}, Case{1, 4, 40, 97}, Case{6, 1, 150, 20},
                       Case{1, 1, 17, 9}, Case{70, 3, 4450, 130}}) {
    Image<float> grid(c.gw, c.gh);
    for (int j = 0; j < c.gh; ++j)
      for (int i = 0; i < c.gw; ++i) grid(i, j) = static_cast<float>(u(rng));
    std::vector<double> cx(c.gw), cy(c.gh);
    const double mx = static_cast<double>(c.w) / c.gw, my = static_cast<double>(c.h) / c.gh;
    for (int i = 0; i < c.gw; ++i) cx[i] = (i + 0.5) * mx - 0.5;
    for (int j = 0; j < c.gh; ++j) cy[j] = (j + 0.5) * my - 0.5;
    const Image<float> want = spline_upsample(grid.cview(), cx, cy, c.w, c.h);
    const SplineMap map(make_mesh_spline(grid.cview(), cx, cy), c.w, c.h);
    const FloatPlane p = map.plane();
    std::vector<float> buf(c.w);
    std::size_t differ = 0, checked = 0;
    for (int y = 0; y < c.h; ++y) {
      std::uniform_int_distribution<int> x0d(0, c.w - 1);
      for (int k = 0; k < 6; ++k) {
        const int x0 = k == 0 ? 0 : x0d(rng);
        const int n = k == 1 ? c.w - x0 : std::uniform_int_distribution<int>(1, c.w - x0)(rng);
        const float* r = p.row_part(y, x0, n, buf.data());
        for (int i = 0; i < n; ++i, ++checked)
          differ += std::memcmp(&r[i], &want(x0 + i, y), 4) != 0;
      }
      const int x = std::uniform_int_distribution<int>(0, c.w - 1)(rng);
      const float v = map.at(x, y);
      differ += std::memcmp(&v, &want(x, y), 4) != 0;
    }
    const FloatPlane sub = p.subview(c.w / 3, c.h / 4, c.w / 2 + 1, c.h / 2);
    for (int y = 0; y < sub.height(); ++y)
      for (int x = 0; x < sub.width(); ++x) {
        const float v = sub(x, y);
        differ += std::memcmp(&v, &want(c.w / 3 + x, c.h / 4 + y), 4) != 0;
      }
    EXPECT_EQ(differ, 0u) << c.gw << "x" << c.gh;
    EXPECT_GT(checked, static_cast<std::size_t>(c.w));
  }
}

// SplineMap::prepare_row / eval: the row's values bit for bit, and each interval's lower bound
// at or below every value there (grids of one node column or row, smooth and wild grids whose
// cubics dip inside their intervals, end intervals that extrapolate).
TEST(BackgroundTest, SplineMapPreparedRowsAreTheRowsAndTheirBoundsHold) {
  std::mt19937 rng(5);
  struct Case {
    int gw, gh, w, h;
    double lo, hi;
  };
  std::size_t differ = 0, below = 0, checked = 0, tight = 0;
  for (const Case c : {Case{7, 5, 203, 131, 5.0, 30.0}, Case{1, 4, 40, 97, 5.0, 30.0},
                       Case{6, 1, 150, 20, 5.0, 30.0}, Case{1, 1, 17, 9, 5.0, 30.0},
                       Case{70, 3, 4450, 130, 9.0, 11.0}, Case{9, 9, 577, 577, 0.1, 100.0},
                       Case{5, 4, 320, 256, 10.0, 10.0}}) {
    Image<float> grid(c.gw, c.gh);
    std::uniform_real_distribution<double> u(c.lo, c.hi);
    for (int j = 0; j < c.gh; ++j)
      for (int i = 0; i < c.gw; ++i) grid(i, j) = static_cast<float>(u(rng));
    std::vector<double> cx(c.gw), cy(c.gh);
    const double mx = static_cast<double>(c.w) / c.gw, my = static_cast<double>(c.h) / c.gh;
    for (int i = 0; i < c.gw; ++i) cx[i] = (i + 0.5) * mx - 0.5;
    for (int j = 0; j < c.gh; ++j) cy[j] = (j + 0.5) * my - 0.5;
    const SplineMap map(make_mesh_spline(grid.cview(), cx, cy), c.w, c.h);
    std::vector<float> want(c.w), got(c.w, -1.f);
    SplineMap::Row row;
    for (int y = 0; y < c.h; ++y) {
      map.row(y, 0, c.w, want.data());
      map.prepare_row(y, row);
      ASSERT_EQ(row.begin.front(), 0);
      ASSERT_EQ(row.end.back(), c.w);
      for (std::size_t k = 0; k < row.begin.size(); ++k) {
        if (k > 0) {
          ASSERT_EQ(row.begin[k], row.end[k - 1]);
        }
        double vmin = std::numeric_limits<double>::infinity();
        for (int x = row.begin[k]; x < row.end[k]; ++x) {
          vmin = std::min(vmin, static_cast<double>(want[x]));
          below += !(row.lower[k] <= want[x]);
          ++checked;
        }
        // Not vacuous: within 1% of the interval's minimum (the grids are positive).
        if (row.begin[k] < row.end[k]) tight += row.lower[k] > vmin - 0.01 * std::abs(vmin);
      }
      // The whole row, then random parts (within one interval or across several).
      map.eval(row, 0, c.w, got.data());
      differ += std::memcmp(got.data(), want.data(), sizeof(float) * c.w) != 0;
      for (int k = 0; k < 4; ++k) {
        const int x0 = std::uniform_int_distribution<int>(0, c.w - 1)(rng);
        const int x1 = std::uniform_int_distribution<int>(x0 + 1, c.w)(rng);
        std::fill(got.begin(), got.end(), -1.f);
        map.eval(row, x0, x1, got.data());
        differ += std::memcmp(got.data() + x0, want.data() + x0, sizeof(float) * (x1 - x0)) != 0;
        differ += (x0 > 0 && got[x0 - 1] != -1.f) || (x1 < c.w && got[x1] != -1.f);
      }
    }
  }
  EXPECT_EQ(differ, 0u);
  EXPECT_EQ(below, 0u);
  EXPECT_GT(checked, 100000u);
  EXPECT_GT(tight, checked / 200);
}

}  // namespace
}  // namespace psfphot
