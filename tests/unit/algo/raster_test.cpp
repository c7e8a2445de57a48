// Display stretches, drawing and the quicklook pictures, checked pixel by pixel.
#include "psfphot/algo/raster.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "psfphot/algo/quicklook.hpp"

namespace psfphot {
namespace {

bool grey(const Rgb& c) {
  return c.r == c.g && c.g == c.b;
}

Image<float> noise(int w, int h, double mean, double sigma, unsigned seed) {
  Image<float> img(w, h);
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(mean, sigma);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img(x, y) = static_cast<float>(n(rng));
  return img;
}

TEST(Zscale, BracketsTheSkyAndIgnoresHotPixels) {
  Image<float> img = noise(300, 200, 1000, 10, 1);
  for (int i = 0; i < 20; ++i) img(i * 13, i * 7) = 60000.0f;  // hot pixels / stars
  img(5, 5) = std::nanf("");
  const StretchLimits z = zscale_limits(img.cview());
  // Gaussian sky, contrast 0.25: z2 - z1 ~ 10 sigma, clipped to the sampled range.
  EXPECT_LT(z.lo, 1000 - 2 * 10);
  EXPECT_GT(z.hi, 1000 + 2 * 10);
  EXPECT_LT(z.hi, 1000 + 8 * 10);
  EXPECT_GT(z.lo, 1000 - 8 * 10);
  const Image<float> flat(10, 10, 5.0f);
  const StretchLimits f = zscale_limits(flat.cview());
  EXPECT_GT(f.hi, f.lo);
}

TEST(Stretch, GreyLevelsAndNan) {
  Image<float> img(4, 1);
  img(0, 0) = 0;
  img(1, 0) = 50;
  img(2, 0) = 200;
  img(3, 0) = std::nanf("");
  const RgbImage lin = render_grey(img.cview(), {0, 100}, Stretch::kLinear);
  EXPECT_EQ(lin(0, 0), (Rgb{0, 0, 0}));
  EXPECT_EQ(lin(1, 0), (Rgb{128, 128, 128}));
  EXPECT_EQ(lin(2, 0), (Rgb{255, 255, 255}));
  EXPECT_EQ(lin(3, 0), (Rgb{0, 0, 96}));
  const RgbImage as = render_grey(img.cview(), {0, 100}, Stretch::kAsinh, 0.1);
  EXPECT_GT(as(1, 0).r, 190);  // asinh lifts the faint half: asinh(5) / asinh(10) = 0.77
  EXPECT_EQ(as(2, 0).r, 255);
}

TEST(Draw, CircleRingOnlyAtItsRadius) {
  RgbImage img(41, 41, colour::kBlack);
  draw_circle(img, 20, 20, 10, colour::kGreen);
  for (int a = 0; a < 360; a += 15) {
    const double t = a * M_PI / 180;
    const int x = static_cast<int>(std::lround(20 + 10 * std::cos(t)));
    const int y = static_cast<int>(std::lround(20 + 10 * std::sin(t)));
    EXPECT_EQ(img(x, y), colour::kGreen) << a;
  }
  EXPECT_EQ(img(20, 20), colour::kBlack);
  EXPECT_EQ(img(20 + 7, 20), colour::kBlack);
  EXPECT_EQ(img(20 + 12, 20), colour::kBlack);
  draw_circle(img, -100, -100, 5, colour::kRed);  // clipped, no crash
}

TEST(Draw, CrossRectLineTextAndMaskOutline) {
  RgbImage img(30, 30, colour::kBlack);
  draw_cross(img, 10.4, 10.6, 3, colour::kYellow, 1);
  EXPECT_EQ(img(10, 11), colour::kBlack);  // gap at the centre
  EXPECT_EQ(img(13, 11), colour::kYellow);
  EXPECT_EQ(img(10, 8), colour::kYellow);
  EXPECT_EQ(img(14, 11), colour::kBlack);
  draw_rect(img, 20, 20, 25, 24, colour::kMagenta);
  EXPECT_EQ(img(20, 22), colour::kMagenta);
  EXPECT_EQ(img(25, 24), colour::kMagenta);
  EXPECT_EQ(img(22, 22), colour::kBlack);
  draw_line(img, 0, 29, 29, 0, colour::kWhite);
  EXPECT_EQ(img(15, 14), colour::kWhite);
  RgbImage t(40, 10, colour::kBlack);
  const int w = draw_text(t, 1, 1, "A1", colour::kWhite);
  EXPECT_EQ(w, text_width("A1"));
  EXPECT_EQ(w, 7);
  EXPECT_EQ(t(2, 1), colour::kWhite);  // top of the A
  EXPECT_EQ(t(1, 1), colour::kBlack);
  Image<MaskBits> m(10, 10, 0);
  for (int y = 3; y <= 6; ++y)
    for (int x = 3; x <= 6; ++x) m(x, y) = mask::kSaturated;
  RgbImage o(10, 10, colour::kBlack);
  outline_mask(o, m.cview(), mask::kSaturated, colour::kCyan);
  EXPECT_EQ(o(3, 4), colour::kCyan);
  EXPECT_EQ(o(6, 6), colour::kCyan);
  EXPECT_EQ(o(4, 4), colour::kBlack);  // inside
  EXPECT_EQ(o(2, 4), colour::kBlack);  // outside
}

TEST(Plot, PointsLandWhereTheAxesSay) {
  const std::vector<double> x{0, 1, 2, 3}, y{1.0, 3.0, NAN, 2.0};
  PlotLayout L;
  const RgbImage p = plot_series(x, y, 300, 150, "SKY", colour::kBlue, &L);
  EXPECT_EQ(p.width(), 300);
  EXPECT_EQ(L.y0, 1.0);
  EXPECT_EQ(L.y1, 3.0);
  EXPECT_EQ(p(L.left, L.bottom), colour::kBlue);  // (0, 1): bottom left
  const int x1 = L.left + static_cast<int>(std::lround((L.right - L.left) / 3.0));
  EXPECT_EQ(p(x1, L.top), colour::kBlue);                            // (1, 3): top
  EXPECT_EQ(p(L.left - 1, (L.top + L.bottom) / 2), colour::kBlack);  // y axis
  EXPECT_THROW(plot_series({1}, {1, 2}, 300, 150, "X"), std::invalid_argument);
}

TEST(Quicklook, CirclesOnStarsFlaggedInRedFlippedLikeDs9) {
  Image<float> img = noise(120, 80, 100, 5, 2);
  std::vector<Star> stars;
  const double xs[] = {30.3, 80.0, 60.6}, ys[] = {20.2, 60.0, 10.5};
  for (int i = 0; i < 3; ++i) {
    Star s =
        make_star(0, i, static_cast<int>(std::lround(xs[i])), static_cast<int>(std::lround(ys[i])));
    s.centroid_x = xs[i];
    s.centroid_y = ys[i];
    s.flags = i == 1 ? star_flag::kCrowded : 0;
    stars.push_back(s);
  }
  Image<MaskBits> m(120, 80, 0);
  for (int y = 70; y < 80; ++y)
    for (int x = 0; x < 10; ++x) m(x, y) = mask::kSaturated;
  FramePictureConfig cfg;
  cfg.circle_radius_px = 6;
  const RgbImage p = frame_picture(img.cview(), m.cview(), stars, 1.5, cfg);
  ASSERT_EQ(p.width(), 120);
  ASSERT_EQ(p.height(), 80);
  for (int i = 0; i < 3; ++i) {
    const Rgb want = i == 1 ? colour::kRed : colour::kGreen;
    for (int a = 0; a < 360; a += 30) {
      const double t = a * M_PI / 180;
      const int x = static_cast<int>(std::lround(xs[i] + 6 * std::cos(t)));
      const int y = static_cast<int>(std::lround(ys[i] + 6 * std::sin(t)));
      // A 1-px ring around a non-integer centre: within one pixel of the ideal point.
      bool hit = false;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          hit = hit || p(x + dx, frame_to_picture_y(y + dy, 80)) == want;
      EXPECT_TRUE(hit) << i << " " << a;
    }
    const int cx = static_cast<int>(std::lround(xs[i])), cy = static_cast<int>(std::lround(ys[i]));
    EXPECT_TRUE(grey(p(cx, frame_to_picture_y(cy, 80))));
  }
  EXPECT_EQ(p(5, frame_to_picture_y(70, 80)), colour::kCyan);  // mask outline (bottom edge)
  EXPECT_TRUE(grey(p(5, frame_to_picture_y(74, 80))));         // inside the mask
  EXPECT_TRUE(grey(p(100, frame_to_picture_y(30, 80))));       // sky
}

TEST(Quicklook, CutoutsSpreadOverBrightnessAndMarkPeakAndCentroid) {
  std::vector<Star> stars;
  for (int i = 0; i < 40; ++i) {
    Star s = make_star(0, i, 20 + i, 30);
    s.centroid_x = 20 + i + 0.3;
    s.centroid_y = 30.2;
    s.psf_flux = 100.0 * (i + 1);
    s.snr = 10;
    stars.push_back(s);
  }
  stars[5].centroid_x = NAN;  // not a candidate
  const auto pick = pick_cutout_stars(stars, 25);
  ASSERT_EQ(pick.size(), 25u);
  EXPECT_EQ(pick.front(), 39u);  // brightest
  EXPECT_EQ(pick.back(), 0u);    // faintest
  for (auto k : pick) EXPECT_NE(k, 5u);
  Image<float> img = noise(100, 60, 100, 5, 3);
  Image<float> bg(100, 60, 100.0f);
  CutoutConfig cfg;
  const RgbImage g = cutout_grid(img.cview(), bg.cview(), stars, cfg);
  const int side = 2 * cfg.half_px + 1, tile_w = side * cfg.zoom, tile_h = tile_w + cfg.label_px;
  EXPECT_EQ(g.width(), 5 * (tile_w + 4) + 4);
  EXPECT_EQ(g.height(), 5 * (tile_h + 4) + 4);
  // First tile: peak pixel at the stamp centre, outlined in magenta; cross-hair yellow.
  const int c0 = 4 + cfg.half_px * cfg.zoom;
  EXPECT_EQ(g(c0, c0), colour::kMagenta);
  const Star& s = stars[pick[0]];
  const int z = cfg.zoom, x0 = s.peak_x - cfg.half_px, y0 = s.peak_y - cfg.half_px;
  const int tx = static_cast<int>(std::lround((s.centroid_x - x0 + 0.5) * z - 0.5));
  const int ty = static_cast<int>(std::lround((y0 + side - 1 - s.centroid_y + 0.5) * z - 0.5));
  EXPECT_EQ(g(4 + tx + 10, 4 + ty), colour::kYellow);  // horizontal arm
  EXPECT_EQ(g(4 + tx, 4 + ty - 10), colour::kYellow);  // vertical arm
}

TEST(Quicklook, NightPlotsOnePanelPerSeries) {
  const RgbImage n =
      night_plots({0, 1, 2, 3}, {{"A", {1, 2, 3, 4}}, {"B", {4, 3, 2, 1}}}, 2, 400, 120);
  EXPECT_EQ(n.width(), 400);
  EXPECT_EQ(n.height(), 240);
  int red = 0;
  for (int y = 0; y < n.height(); ++y)
    for (int x = 0; x < n.width(); ++x) red += n(x, y) == colour::kRed;
  EXPECT_GT(red, 2 * 60);  // the highlight line in both panels
}

}  // namespace
}  // namespace psfphot
