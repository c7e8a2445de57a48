#include "psfphot/algo/moments.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "psfphot/core/star.hpp"
#include "support/synth.hpp"

namespace psfphot {
namespace {

constexpr int kSize = 61, kC = 30;

// An elliptical Gaussian sampled at pixel centres (the "sampled Gaussian").
Image<float> sampled_gaussian(double xc, double yc, double sx, double sy, double amp = 1000) {
  Image<float> img(kSize, kSize);
  for (int y = 0; y < kSize; ++y)
    for (int x = 0; x < kSize; ++x) {
      const double u = (x - xc) / sx, v = (y - yc) / sy;
      img(x, y) = static_cast<float>(amp * std::exp(-0.5 * (u * u + v * v)));
    }
  return img;
}

TEST(MomentsTest, SampledGaussianSigma3Within10Percent) {
  // The requirement, with a window wide enough for the star (the 9 px default
  // truncates a sigma-3 star to ~2.3 px, which is why photometry does not use it).
  // A Gaussian sampled on the integer grid has the discrete second moment sigma^2 to
  // ~exp(-2 pi^2 sigma^2) (Poisson summation), so beyond truncation the only error is the
  // float image: 1e-4 px in a 41 px window (> 6 sigma).
  for (double off : {0.0, 0.3, -0.5}) {
    const Image<float> img = sampled_gaussian(kC + off, kC - off, 3.0, 3.0);
    MomentsConfig cfg;
    cfg.window_px = 41;
    const Widths w = second_moments(img.cview(), {}, kC + off, kC - off, cfg);
    EXPECT_EQ(w.flags, 0u);
    EXPECT_NEAR(w.sigma_x, 3.0, 1e-4);
    EXPECT_NEAR(w.sigma_y, 3.0, 1e-4);
    cfg.window_px = 21;  // +-10 px = 3.3 sigma: truncated, but within 10%
    const Widths t = second_moments(img.cview(), {}, kC + off, kC - off, cfg);
    EXPECT_NEAR(t.sigma_x, 3.0, 0.3);
    EXPECT_NEAR(t.sigma_y, 3.0, 0.3);
    EXPECT_LT(t.sigma_x, 3.0);  // truncation only ever shrinks them
  }
}

TEST(MomentsTest, EllipticalWidthsSeparately) {
  const Image<float> img = sampled_gaussian(kC, kC, 2.5, 1.5);
  MomentsConfig cfg;
  cfg.window_px = 41;
  const Widths w = second_moments(img.cview(), {}, kC, kC, cfg);
  EXPECT_NEAR(w.sigma_x, 2.5, 1e-4);
  EXPECT_NEAR(w.sigma_y, 1.5, 1e-4);
}

// A Gaussian with axes sigma_major, sigma_minor whose major axis is at angle_deg to x,
// sampled at pixel centres.
Image<float> rotated_gaussian(double xc, double yc, double smaj, double smin, double angle_deg) {
  Image<float> img(kSize, kSize);
  const double t = angle_deg * M_PI / 180, c = std::cos(t), s = std::sin(t);
  for (int y = 0; y < kSize; ++y)
    for (int x = 0; x < kSize; ++x) {
      const double u = ((x - xc) * c + (y - yc) * s) / smaj,
                   v = (-(x - xc) * s + (y - yc) * c) / smin;
      img(x, y) = static_cast<float>(1000 * std::exp(-0.5 * (u * u + v * v)));
    }
  return img;
}

// The minor principal-axis moment is the smaller sigma^2 of the Gaussian whatever its angle
// on the grid (sampled Gaussians have the discrete moments sigma^2: see above), while
// sigma_x and sigma_y mix the two axes: the reason the cosmic-ray rule uses it.
TEST(MomentsTest, MinorAxisMomentIsTheSmallerAxisAtAnyAngle) {
  MomentsConfig cfg;
  cfg.window_px = 41;
  for (double angle : {0.0, 30.0, 45.0, 90.0, 139.0}) {
    const Image<float> img = rotated_gaussian(kC + 0.3, kC - 0.2, 4.0, 1.5, angle);
    const MinorMoment m = minor_axis_moment(img.cview(), {}, kC + 0.3, kC - 0.2, 0.0, 0.0, cfg);
    EXPECT_NEAR(std::sqrt(m.lambda_px2), 1.5, 1e-3) << angle;
    EXPECT_EQ(m.err_px2, 0.0);  // no noise given
    const Widths w = second_moments(img.cview(), {}, kC + 0.3, kC - 0.2, cfg);
    EXPECT_LE(std::sqrt(m.lambda_px2), std::min(w.sigma_x, w.sigma_y) + 1e-9) << angle;
    if (angle == 45.0) {
      EXPECT_GT(std::min(w.sigma_x, w.sigma_y), 3.0);  // sqrt((16 + 2.25) / 2)
    }
  }
  // Gaussian weights of sigma w on a source of variance s^2: s^2 w^2 / (s^2 + w^2), the
  // sampled Gaussian's (1.5 px minor axis, weights 2 px) and a pixel-integrated star's
  // (point_source_minor_moment, which adds the pixel's 1/12 px^2).
  for (double angle : {0.0, 45.0}) {
    const Image<float> img = rotated_gaussian(kC + 0.3, kC - 0.2, 1.5, 1.5, angle);
    EXPECT_NEAR(minor_axis_moment(img.cview(), {}, kC + 0.3, kC - 0.2, 0.0, 2.0, cfg).lambda_px2,
                2.25 * 4 / 6.25, 1e-3);
  }
  for (double sig : {0.9, 2.0}) {
    Image<float> st = test::constant(kSize, kSize, 0.f);
    test::add_star(st, {kC + 0.3, kC - 0.2, 1000.0, sig});
    EXPECT_NEAR(minor_axis_moment(st.cview(), {}, kC + 0.3, kC - 0.2, 0.0, sig, cfg).lambda_px2,
                point_source_minor_moment(sig, sig), 0.01 * point_source_minor_moment(sig, sig))
        << sig;
  }
  // The star reference: a noiseless star's own moment, through the same window, weights and
  // unmasked pixels, truncation included (sigma 5 px in the 9 px window: under half the
  // untruncated value).
  for (double sig : {2.0, 5.0}) {
    Image<float> st = test::constant(kSize, kSize, 0.f);
    test::add_star(st, {kC + 0.3, kC - 0.2, 1e4, sig});
    const MinorMoment m = minor_axis_moment(st.cview(), {}, kC + 0.3, kC - 0.2, 1.0, sig, {}, sig);
    EXPECT_NEAR(m.lambda_px2, m.star_px2, 1e-3 * m.star_px2) << sig;
    if (sig == 5.0) {
      EXPECT_LT(m.star_px2, 0.5 * point_source_minor_moment(sig, sig));
    }
    // All but the centre column masked (a line through the centre): not judged.
    Image<MaskBits> mask(kSize, kSize);
    std::fill(mask.data(), mask.data() + mask.size(), MaskBits{0});
    for (int y = 0; y < kSize; ++y)
      for (int x = 0; x < kSize; ++x)
        if (x != kC) mask(x, y) = mask::kSaturated;
    EXPECT_TRUE(std::isnan(
        minor_axis_moment(st.cview(), mask.cview(), kC + 0.3, kC - 0.2, 1.0, sig, {}, sig)
            .lambda_px2));
  }
  // Unknown noise: the moment, but no error.
  {
    Image<float> st = test::constant(kSize, kSize, 0.f);
    test::add_star(st, {kC, kC, 1e4, 2.0});
    const MinorMoment m = minor_axis_moment(st.cview(), {}, kC, kC, std::nan(""), 2.0, {}, 2.0);
    EXPECT_TRUE(std::isfinite(m.lambda_px2));
    EXPECT_TRUE(std::isnan(m.err_px2));
  }
  // A diagonal line of single pixels has no width across itself.
  Image<float> line = test::constant(kSize, kSize, 0.f);
  for (int k = -6; k <= 6; ++k) line(kC + k, kC + k) = 100.f;
  EXPECT_NEAR(minor_axis_moment(line.cview(), {}, kC, kC, 0.0, 0.0, cfg).lambda_px2, 0.0, 1e-6);
  // No judgement: off the frame, no light, non-finite centre.
  EXPECT_TRUE(std::isnan(minor_axis_moment(line.cview(), {}, 3, kC, 1.0, 0.0, {}).lambda_px2));
  const Image<float> zero = test::constant(kSize, kSize, 0.f);
  EXPECT_TRUE(std::isnan(minor_axis_moment(zero.cview(), {}, kC, kC, 1.0, 0.0, cfg).lambda_px2));
  EXPECT_TRUE(
      std::isnan(minor_axis_moment(line.cview(), {}, std::nan(""), kC, 1.0, 0.0, cfg).err_px2));
}

// The stated error against the scatter the moment shows under background noise: 2000
// noise realisations (noise 1 per pixel) in the 9 px window. For an elongated source the
// minor axis is well defined and first-order propagation holds: within 10% (2000 draws pin
// the scatter to ~2%). For a round star the two eigenvalues are degenerate and the smaller
// one scatters less than first order says: the stated error is conservative there (the
// rule then keeps stars more readily), by at most 35%.
TEST(MomentsTest, MinorAxisMomentErrorIsItsScatter) {
  const MomentsConfig cfg;
  auto ratio = [&](double smaj, double smin, double amp, double weight) {
    std::mt19937 rng(17);
    std::normal_distribution<double> g(0.0, 1.0);
    double s1 = 0, s2 = 0, se = 0;
    constexpr int kN = 2000;
    const Image<float> clean = rotated_gaussian(kC + 0.2, kC - 0.3, smaj, smin, 30.0);
    for (int k = 0; k < kN; ++k) {
      Image<float> img(kSize, kSize);
      for (std::size_t i = 0; i < img.size(); ++i)
        img.data()[i] = static_cast<float>(amp / 1000 * clean.data()[i] + g(rng));
      const MinorMoment m =
          minor_axis_moment(img.cview(), {}, kC + 0.2, kC - 0.3, 1.0, weight, cfg);
      s1 += m.lambda_px2;
      s2 += m.lambda_px2 * m.lambda_px2;
      se += m.err_px2;
    }
    const double mean = s1 / kN, sd = std::sqrt(s2 / kN - mean * mean);
    return (se / kN) / sd;
  };
  for (double weight : {0.0, 1.5}) {  // the lab's flat window; the cosmic-ray rule's weights
    const double elongated = ratio(3.0, 1.2, 40.0, weight);  // flux 2 pi 3.6 x 40: S/N ~ 60
    EXPECT_NEAR(elongated, 1.0, 0.10) << weight;
    const double round = ratio(1.5, 1.5, 30.0, weight);  // flux ~ 420: S/N ~ 32
    EXPECT_GE(round, 1.0) << weight;
    EXPECT_LE(round, 1.35) << weight;
    std::cout << "weights " << weight << ": stated error / scatter: elongated " << elongated
              << ", round " << round << "\n";
  }
}

TEST(MomentsTest, TruncatedMomentSigmaPredictsTheLabWindow) {
  // The number: a sigma-2 star through a 9 px window shows ~1.86 px.
  EXPECT_NEAR(truncated_moment_sigma(2.0, 9), 1.86, 0.01);
  // Wide window: no truncation, and pixel integration adds the 1/12 px^2 of a unit box
  // (Sheppard's correction), exact here to ~exp(-2 pi^2 sigma^2).
  for (double s : {1.5, 2.0, 3.0})
    EXPECT_NEAR(truncated_moment_sigma(s, 2 * static_cast<int>(10 * s) + 1),
                std::sqrt(s * s + 1.0 / 12.0), 1e-9);
  // Monotonic in the window.
  EXPECT_LT(truncated_moment_sigma(2.0, 7), truncated_moment_sigma(2.0, 9));
  EXPECT_LT(truncated_moment_sigma(2.0, 9), truncated_moment_sigma(2.0, 15));
  // And it is what second_moments measures on a centred pixel-integrated star.
  for (double s : {1.2, 2.0, 3.0}) {
    Image<float> img = test::constant(kSize, kSize, 0.f);
    test::add_star(img, {double(kC), double(kC), 1e5, s});
    const Widths w = second_moments(img.cview(), {}, kC, kC, MomentsConfig{});
    EXPECT_NEAR(w.sigma_x, truncated_moment_sigma(s, 9), 1e-5) << s;
    EXPECT_NEAR(w.sigma_y, truncated_moment_sigma(s, 9), 1e-5) << s;
  }
}

TEST(MomentsTest, EdgeAndInvalidCases) {
  const Image<float> img = sampled_gaussian(kC, kC, 2.0, 2.0);
  const MomentsConfig cfg;                                   // 9 px: half 4
  Widths w = second_moments(img.cview(), {}, 3.4, kC, cfg);  // rounds to 3: off the frame
  EXPECT_TRUE(std::isnan(w.sigma_x) && std::isnan(w.sigma_y));
  EXPECT_TRUE(w.flags & star_flag::kEdge);
  w = second_moments(img.cview(), {}, kC, kSize - 4.6, cfg);  // rounds to kSize - 5: fits
  EXPECT_FALSE(w.flags & star_flag::kEdge);
  w = second_moments(img.cview(), {}, std::numeric_limits<double>::quiet_NaN(), kC, cfg);
  EXPECT_TRUE(w.flags & star_flag::kMomentsInvalid);
  EXPECT_TRUE(std::isnan(w.sigma_x));
  const Image<float> zero = test::constant(kSize, kSize, 0.f);
  w = second_moments(zero.cview(), {}, kC, kC, cfg);
  EXPECT_TRUE(w.flags & star_flag::kMomentsInvalid);
  EXPECT_TRUE(std::isnan(w.sigma_y));
  // A single bright pixel on the centroid has zero second moment: invalid, not 0.
  Image<float> dot = test::constant(kSize, kSize, 0.f);
  dot(kC, kC) = 100.f;
  w = second_moments(dot.cview(), {}, kC, kC, cfg);
  EXPECT_TRUE(w.flags & star_flag::kMomentsInvalid);
  // Centres far off the frame are edge cases, never a wrapped window inside it (2^32 + kC
  // rounded to int would be kC), in the batch too.
  for (double far : {4294967296.0 + kC, -4294967296.0 + kC, 1e300}) {
    w = second_moments(img.cview(), {}, far, kC, cfg);
    EXPECT_TRUE(w.flags & star_flag::kEdge) << far;
    EXPECT_TRUE(std::isnan(w.sigma_x));
    const double xs[] = {far, kC}, ys[] = {kC, far};
    Widths out[2];
    measure_moments(img.cview(), {}, xs, ys, 2, cfg, out);
    EXPECT_TRUE((out[0].flags & star_flag::kEdge) && (out[1].flags & star_flag::kEdge)) << far;
  }
}

TEST(MomentsTest, MaskedPixelsExcluded) {
  Image<float> img = sampled_gaussian(kC, kC, 2.0, 2.0);
  const MomentsConfig cfg;
  const Widths ref = second_moments(img.cview(), {}, kC, kC, cfg);
  Image<MaskBits> m(kSize, kSize, 0);
  img(kC + 3, kC + 1) = 5e4f;  // a cosmic ray in the window, masked
  m(kC + 3, kC + 1) = mask::kBadPixel;
  const Widths w = second_moments(img.cview(), m.cview(), kC, kC, cfg);
  // The masked pixel's own (small) share of the moment is missing; the garbage is not there.
  EXPECT_NEAR(w.sigma_x, ref.sigma_x, 0.05);
  EXPECT_NEAR(w.sigma_y, ref.sigma_y, 0.05);
  const Widths bad = second_moments(img.cview(), {}, kC, kC, cfg);
  EXPECT_GT(bad.sigma_x, ref.sigma_x + 0.5);
}

// measure_moments against second_moments star by star, bit for bit: stars in the interior,
// at and across the edges, non-finite centroids, masked and NaN pixels, empty sky.
TEST(MomentsTest, BatchEqualsOneByOneBitForBit) {
  constexpr int w = 120, h = 90;
  Image<float> img = test::constant(w, h, 0.f);
  std::mt19937 rng(8);
  std::uniform_real_distribution<double> ux(-2.0, w + 1.0), uy(-2.0, h + 1.0), uf(0.0, 1.0);
  std::vector<double> xs, ys;
  for (int i = 0; i < 120; ++i) {
    const double x = ux(rng), y = uy(rng);
    test::add_star(img, {x, y, 100.0 + 1e5 * uf(rng), 1.5 + uf(rng)});
    xs.push_back(x + 0.3 * (uf(rng) - 0.5));
    ys.push_back(y + 0.3 * (uf(rng) - 0.5));
  }
  test::add_noise(img, 3.0, rng);
  xs.push_back(std::numeric_limits<double>::quiet_NaN());
  ys.push_back(10.0);
  Image<MaskBits> msk(w, h, 0);
  for (int i = 0; i < 200; ++i) {
    const int x = static_cast<int>(uf(rng) * w), y = static_cast<int>(uf(rng) * h);
    if (i % 3 == 0)
      img(x, y) = std::numeric_limits<float>::quiet_NaN();
    else
      msk(x, y) = mask::kBadPixel;
  }
  int flagged = 0;
  for (bool with_mask : {true, false}) {
    const ImageView<const MaskBits> m = with_mask ? msk.cview() : ImageView<const MaskBits>{};
    std::vector<Widths> got(xs.size());
    measure_moments(img.cview(), m, xs.data(), ys.data(), xs.size(), MomentsConfig{}, got.data());
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const Widths want = second_moments(img.cview(), m, xs[i], ys[i], MomentsConfig{});
      ASSERT_EQ(std::memcmp(&got[i].sigma_x, &want.sigma_x, sizeof(double)), 0) << i;
      ASSERT_EQ(std::memcmp(&got[i].sigma_y, &want.sigma_y, sizeof(double)), 0) << i;
      ASSERT_EQ(got[i].flags, want.flags) << i;
      flagged += want.flags != 0;
    }
  }
  EXPECT_GT(flagged, 5);  // edge and invalid cases were among them
}

}  // namespace
}  // namespace psfphot
