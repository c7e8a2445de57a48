#include "psfphot/algo/centroid.hpp"

#include <gtest/gtest.h>

#include <cmath>
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

}  // namespace
}  // namespace psfphot
