#include "psfphot/algo/centroid.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/core/star.hpp"
#include "support/synth.hpp"

namespace psfphot {
namespace {

constexpr int kSize = 41, kC = 20;  // star near the centre of a 41 x 41 image

Image<float> star_at(double x, double y, double sigma, double flux = 1e5) {
  Image<float> img = test::constant(kSize, kSize, 0.f);
  test::add_star(img, {x, y, flux, sigma});
  return img;
}

// The lab centroid of a pixel-integrated Gaussian in a (2h+1) box about pixel 0, along one
// axis (the 2-D sums factorise): sum(i E_i) / sum(E_i).
double lab_prediction(double offset, double sigma, int half) {
  Profile1D p;
  integrated_profile(offset, sigma, -half, 2 * half + 1, false, p);
  double s = 0, sx = 0;
  for (int i = 0; i < 2 * half + 1; ++i) {
    s += p.value[i];
    sx += p.value[i] * (i - half);
  }
  return sx / s;
}

TEST(CentroidTest, LabCentroidIsPixelLocked) {
  constexpr double sigma = 2.0;
  constexpr int window = 9;
  std::vector<double> offs, errs;
  for (double d = -0.45; d <= 0.451; d += 0.05) {
    const Image<float> img = star_at(kC + d, kC - 0.5 * d, sigma);
    const Centroid c = centroid_lab(img.cview(), {}, kC, kC, window, 0);
    ASSERT_EQ(c.flags, 0u);
    // Exactly the truncated-window prediction (float image: 1e-5 px).
    EXPECT_NEAR(c.x - kC, lab_prediction(d, sigma, window / 2), 1e-5) << d;
    EXPECT_NEAR(c.y - kC, lab_prediction(-0.5 * d, sigma, window / 2), 1e-5) << d;
    offs.push_back(d);
    errs.push_back(c.x - (kC + d));
  }
  // Error ~ slope x offset with a negative slope (pulled to the pixel centre): a
  // least-squares line through the origin explains it to a few percent of its size.
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < offs.size(); ++i) {
    sxy += offs[i] * errs[i];
    sxx += offs[i] * offs[i];
  }
  const double slope = sxy / sxx;
  EXPECT_LT(slope, -0.05);
  EXPECT_GT(slope, -0.2);
  for (std::size_t i = 0; i < offs.size(); ++i)
    EXPECT_NEAR(errs[i], slope * offs[i], 0.1 * std::abs(slope) * 0.45 + 1e-6) << offs[i];
}

TEST(CentroidTest, WindowedCentroidIsUnbiased) {
  for (double sigma : {1.5, 2.0, 3.0}) {
    CentroidConfig cfg;
    cfg.window_sigma_px = sigma;
    double worst = 0;
    for (double dx = -0.5; dx <= 0.501; dx += 0.1)
      for (double dy = -0.5; dy <= 0.501; dy += 0.125) {
        const double tx = kC + dx, ty = kC + dy;
        const Image<float> img = star_at(tx, ty, sigma);
        const int px = static_cast<int>(std::lround(tx)), py = static_cast<int>(std::lround(ty));
        const Centroid c = centroid_windowed(img.cview(), {}, px, py, cfg);
        ASSERT_EQ(c.flags, 0u) << sigma << " " << dx << " " << dy;
        EXPECT_GT(c.iterations, 0);
        EXPECT_LE(c.iterations, cfg.max_iter);
        worst = std::max({worst, std::abs(c.x - tx), std::abs(c.y - ty)});
      }
    EXPECT_LT(worst, 0.01) << "sigma " << sigma;
  }
}

TEST(CentroidTest, WindowCrossingTheEdgeGivesNanAndFlag) {
  const Image<float> img = star_at(kC, kC, 2.0);
  // Lab, 9 px box: half 4. Windowed, s_w = 2: half ceil(8) = 8.
  for (auto [x, y] : {std::pair{3, kC}, std::pair{kC, 3}, std::pair{kSize - 4, kC},
                      std::pair{kC, kSize - 4}, std::pair{0, 0}}) {
    Centroid c;
    EXPECT_NO_THROW(c = centroid_lab(img.cview(), {}, x, y, 9, 0));
    EXPECT_TRUE(std::isnan(c.x) && std::isnan(c.y));
    EXPECT_TRUE(c.flags & star_flag::kEdge);
  }
  EXPECT_FALSE(centroid_lab(img.cview(), {}, 4, kC, 9, 0).flags & star_flag::kEdge);
  EXPECT_FALSE(centroid_lab(img.cview(), {}, kSize - 5, kC, 9, 0).flags & star_flag::kEdge);
  CentroidConfig cfg;
  for (auto [x, y] : {std::pair{7, kC}, std::pair{kC, kSize - 8}}) {
    const Centroid c = centroid_windowed(img.cview(), {}, x, y, cfg);
    EXPECT_TRUE(std::isnan(c.x) && std::isnan(c.y));
    EXPECT_TRUE(c.flags & star_flag::kEdge);
  }
  EXPECT_FALSE(centroid_windowed(img.cview(), {}, 8, kC, cfg).flags & star_flag::kEdge);
}

TEST(CentroidTest, MaskedPixelsFlaggedAndIgnored) {
  Image<float> img = star_at(kC, kC, 2.0);
  Image<MaskBits> m(kSize, kSize, 0);
  // A symmetric pair of masked pixels carrying garbage: ignored, so the centroid stays put.
  m(kC - 2, kC) = m(kC + 2, kC) = mask::kBadPixel;
  img(kC - 2, kC) = 1e6f;
  img(kC + 2, kC) = -3e5f;
  CentroidConfig cfg;
  for (CentroidMethod meth : {CentroidMethod::kLab, CentroidMethod::kWindowed}) {
    cfg.method = meth;
    const Centroid c = measure_centroid(img.cview(), m.cview(), kC, kC, cfg);
    EXPECT_TRUE(c.flags & star_flag::kMaskedPixel);
    EXPECT_FALSE(c.flags & star_flag::kCentroidNoConverge);
    EXPECT_NEAR(c.x, kC, 1e-6);
    EXPECT_NEAR(c.y, kC, 1e-6);
  }
  // A bit outside exclude_bits is used: the garbage pulls the centroid away.
  cfg.method = CentroidMethod::kLab;
  cfg.exclude_bits = mask::kSaturated;
  const Centroid c = measure_centroid(img.cview(), m.cview(), kC, kC, cfg);
  EXPECT_FALSE(c.flags & star_flag::kMaskedPixel);
  EXPECT_LT(c.x, kC - 0.5);
}

TEST(CentroidTest, NoFluxOrWanderingFlagsNoConvergence) {
  const Image<float> zero = test::constant(kSize, kSize, 0.f);
  CentroidConfig cfg;
  Centroid c;
  EXPECT_NO_THROW(c = centroid_windowed(zero.cview(), {}, kC, kC, cfg));
  EXPECT_TRUE(c.flags & star_flag::kCentroidNoConverge);
  EXPECT_TRUE(std::isnan(c.x));
  // Started 3 px from a bright star (e.g. on a noise peak in its wing): the iteration
  // walks to the star, beyond 2 px, and falls back to the lab box, flagged.
  const Image<float> img = star_at(kC + 3, kC, 2.0);
  c = centroid_windowed(img.cview(), {}, kC, kC, cfg);
  EXPECT_TRUE(c.flags & star_flag::kCentroidNoConverge);
  EXPECT_TRUE(std::isfinite(c.x));
  const Centroid lab = centroid_lab(img.cview(), {}, kC, kC, cfg.window_px, cfg.exclude_bits);
  EXPECT_DOUBLE_EQ(c.x, lab.x);
  EXPECT_DOUBLE_EQ(c.y, lab.y);
}

TEST(CentroidTest, MeasureCentroidDispatches) {
  const Image<float> img = star_at(kC + 0.3, kC - 0.2, 2.0);
  CentroidConfig cfg;
  cfg.method = CentroidMethod::kLab;
  cfg.window_px = 7;
  const Centroid a = measure_centroid(img.cview(), {}, kC, kC, cfg);
  const Centroid b = centroid_lab(img.cview(), {}, kC, kC, 7, cfg.exclude_bits);
  EXPECT_DOUBLE_EQ(a.x, b.x);
  cfg.method = CentroidMethod::kWindowed;
  const Centroid c = measure_centroid(img.cview(), {}, kC, kC, cfg);
  const Centroid d = centroid_windowed(img.cview(), {}, kC, kC, cfg);
  EXPECT_DOUBLE_EQ(c.x, d.x);
  EXPECT_NE(a.x, c.x);
}

// The clipped core of a saturated star: every pixel above the saturation level of a
// pixel-integrated Gaussian (flux 2.5e7 ADU, sigma 2 px: radius ~4.5 px). Its centre is the
// star's to ~0.1 px wherever the star sits in its pixel (the disc is made of whole pixels:
// 0.08 px seen), a start the PSF fit on the wings then refines.
TEST(CentroidTest, SaturatedRegionCentreIsTheStars) {
  for (const auto& [tx, ty] :
       {std::pair{30.0, 30.0}, std::pair{30.3, 29.6}, std::pair{31.5, 30.25}}) {
    Image<double> model(64, 64, 0.0);
    test::add_star(model, {tx, ty, 2.5e7, 2.0});
    Image<MaskBits> m(64, 64, 0);
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x)
        if (model(x, y) > 65535) m(x, y) = mask::kSaturated;
    m(5, 5) = mask::kSaturated;  // another region, not touching: ignored
    // From the rim of the core (where the detection peak of a clipped star may sit).
    const RegionCentre r = masked_region_centre(m.cview(), static_cast<int>(tx) + 5,
                                                static_cast<int>(ty), mask::kSaturated);
    ASSERT_GT(r.n_pixels, 50) << tx;
    EXPECT_NEAR(r.x, tx, 0.15) << tx;
    EXPECT_NEAR(r.y, ty, 0.15) << ty;
    EXPECT_GT(r.radius_px, 4.0);
    EXPECT_LT(r.radius_px, 6.0);
    // Too far from the region, or a region above the size limit: none.
    EXPECT_EQ(masked_region_centre(m.cview(), static_cast<int>(tx) + 9, static_cast<int>(ty),
                                   mask::kSaturated)
                  .n_pixels,
              0);
    EXPECT_EQ(masked_region_centre(m.cview(), static_cast<int>(tx), static_cast<int>(ty),
                                   mask::kSaturated, 2, 20)
                  .n_pixels,
              0);
  }
}

// measure_centroids against measure_centroid star by star, bit for bit: a noisy field with
// stars in the interior, near and across the edges, on masked and non-finite pixels, peaks
// on empty sky (no flux: the fallback), a low iteration cap (no convergence) and both
// methods; the per-lane iteration counts differ, so lanes are refilled at different times.
TEST(CentroidTest, BatchEqualsOneByOneBitForBit) {
  constexpr int w = 160, h = 120;
  Image<float> img = test::constant(w, h, 0.f);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> ux(-3.0, w + 2.0), uy(-3.0, h + 2.0), uf(0.0, 1.0);
  std::vector<int> px, py;
  for (int i = 0; i < 150; ++i) {
    const double x = ux(rng), y = uy(rng);
    test::add_star(img, {x, y, 200.0 + 2e5 * uf(rng) * uf(rng), 1.6 + 0.8 * uf(rng)});
    px.push_back(std::clamp(static_cast<int>(std::lround(x)), 0, w - 1));
    py.push_back(std::clamp(static_cast<int>(std::lround(y)), 0, h - 1));
  }
  test::add_noise(img, 3.0, rng);
  for (int i = 0; i < 40; ++i) {  // peaks on empty sky
    px.push_back(static_cast<int>(uf(rng) * w));
    py.push_back(static_cast<int>(uf(rng) * h));
  }
  Image<MaskBits> msk(w, h, 0);
  for (int i = 0; i < 300; ++i) {
    const int x = static_cast<int>(uf(rng) * w), y = static_cast<int>(uf(rng) * h);
    if (i % 3 == 0)
      img(x, y) = std::numeric_limits<float>::quiet_NaN();
    else
      msk(x, y) = i % 2 ? mask::kSaturated : mask::kBadPixel;
  }
  int compared = 0, fallbacks = 0, masked = 0;
  for (int variant = 0; variant < 4; ++variant) {
    CentroidConfig cfg;
    cfg.window_sigma_px = variant == 1 ? 1.3 : 2.0;
    if (variant == 2) cfg.max_iter = 3;
    if (variant == 3) cfg.method = CentroidMethod::kLab;
    for (bool with_mask : {true, false}) {
      const ImageView<const MaskBits> m = with_mask ? msk.cview() : ImageView<const MaskBits>{};
      std::vector<Centroid> got(px.size());
      measure_centroids(img.cview(), m, px.data(), py.data(), px.size(), cfg, got.data());
      for (std::size_t i = 0; i < px.size(); ++i) {
        const Centroid want = measure_centroid(img.cview(), m, px[i], py[i], cfg);
        ASSERT_EQ(std::memcmp(&got[i].x, &want.x, sizeof want.x), 0) << variant << " " << i;
        ASSERT_EQ(std::memcmp(&got[i].y, &want.y, sizeof want.y), 0) << variant << " " << i;
        ASSERT_EQ(got[i].flags, want.flags) << variant << " " << i;
        ASSERT_EQ(got[i].iterations, want.iterations) << variant << " " << i;
        fallbacks += (want.flags & star_flag::kCentroidNoConverge) != 0;
        masked += (want.flags & star_flag::kMaskedPixel) != 0;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 8 * 190);
  EXPECT_GT(fallbacks, 20);  // the paths the test is meant to cover were taken
  EXPECT_GT(masked, 20);
}

}  // namespace
}  // namespace psfphot
