#include "psfphot/algo/peaks.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "peaks_support.hpp"
#include "psfphot/algo/background.hpp"
#include "psfphot/algo/smooth.hpp"
#include "support/synth.hpp"

namespace psfphot {
namespace {

bool sorted_yx(const std::vector<Peak>& p) {
  for (std::size_t i = 1; i < p.size(); ++i)
    if (std::make_pair(p[i - 1].y, p[i - 1].x) >= std::make_pair(p[i].y, p[i].x)) return false;
  return true;
}

// Integer-valued noise makes equal neighbours (plateaus of every shape) common, the case
// where a fast search most easily disagrees with the reference.
TEST(PeaksTest, FastEqualsNaiveOnRandomImages) {
  constexpr int w = 157, h = 121;
  for (unsigned seed : {1u, 2u, 3u, 4u, 5u, 6u}) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd(0.0, 3.0);
    std::uniform_int_distribution<int> ui(0, 99);
    Image<float> img(w, h), rms(w, h);
    Image<MaskBits> m(w, h, 0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        img(x, y) = static_cast<float>(std::round(nd(rng)));
        rms(x, y) = static_cast<float>(1.0 + 0.5 * std::sin(0.05 * x) * std::cos(0.07 * y));
        const int u = ui(rng);
        if (u < 3)
          m(x, y) = mask::kUserDetect;
        else if (u < 5)
          m(x, y) = mask::kBadPixel;
        else if (u < 8)
          m(x, y) = mask::kSaturated;  // not in kNoDetect: may be a peak
        else if (u < 9)
          img(x, y) = std::numeric_limits<float>::quiet_NaN();
      }
    // A few stars so that some peaks are well above any threshold.
    for (const auto& s : test::scatter_stars(8, w, h, 2, 10, 400, 1.5, rng)) test::add_star(img, s);
    PeakConfig sig;
    sig.k_sigma = 1.5;
    sig.rms_scale = 1.2;
    for (const PeakConfig& cfg :
         {sig, test::absolute_threshold(1.0), test::absolute_threshold(-100.0)}) {
      for (bool with_mask : {true, false}) {
        const ImageView<const MaskBits> mv = with_mask ? m.cview() : ImageView<const MaskBits>{};
        const auto fast = find_peaks(img.cview(), rms.cview(), mv, cfg);
        const auto naive = find_peaks_naive(img.cview(), rms.cview(), mv, cfg);
        EXPECT_TRUE(test::same_peaks(fast, naive)) << "seed " << seed << " mask " << with_mask
                                                   << ": " << fast.size() << " vs " << naive.size();
        EXPECT_TRUE(sorted_yx(fast));
        EXPECT_GT(fast.size(), 50u);  // the comparison is not vacuous
        for (const Peak& p : fast) {
          ASSERT_TRUE(p.x >= 1 && p.y >= 1 && p.x <= w - 2 && p.y <= h - 2);
          if (with_mask) {
            ASSERT_FALSE(m(p.x, p.y) & mask::kNoDetect);
          }
          ASSERT_EQ(p.value, img(p.x, p.y));
        }
      }
    }
  }
}

std::vector<Peak> peaks_of(const Image<float>& img) {
  return find_peaks(img.cview(), {}, {}, test::absolute_threshold(0.5));
}

TEST(PeaksTest, PlateausGiveExactlyOnePeak) {
  // Pairs in every direction: the first pixel in (y, x) order reports the plateau.
  struct Pair {
    int x1, y1, x2, y2;
  };
  for (Pair p : {Pair{5, 5, 6, 5}, Pair{5, 5, 5, 6}, Pair{5, 5, 6, 6}, Pair{6, 5, 5, 6}}) {
    Image<float> img(12, 12, 0.f);
    img(p.x1, p.y1) = img(p.x2, p.y2) = 7.f;
    img(p.x1, p.y1 - 1) = 3.f;  // some structure around
    const auto peaks = peaks_of(img);
    ASSERT_EQ(peaks.size(), 1u) << p.x2 << "," << p.y2;
    EXPECT_EQ(peaks[0].x, p.x1);
    EXPECT_EQ(peaks[0].y, p.y1);
    EXPECT_TRUE(test::same_peaks(
        peaks, find_peaks_naive(img.cview(), {}, {}, test::absolute_threshold(0.5))));
  }
  // L shapes, one opening each way; the reported pixel is the region's first in (y, x).
  const std::vector<std::vector<std::pair<int, int>>> shapes{
      {{5, 5}, {5, 6}, {5, 7}, {6, 7}, {7, 7}},  // L
      {{7, 5}, {7, 6}, {5, 7}, {6, 7}, {7, 7}},  // mirrored: first pixel is (7, 5)
      {{5, 5}, {6, 5}, {7, 5}, {5, 6}, {5, 7}},  // upside-down
      {{7, 4}, {6, 5}, {5, 6}, {5, 7}, {6, 7}},  // diagonal arm, 8-connected
  };
  for (const auto& sh : shapes) {
    Image<float> img(14, 14, 1.f);
    for (auto [x, y] : sh) img(x, y) = 9.f;
    const auto peaks = peaks_of(img);
    ASSERT_EQ(peaks.size(), 1u);
    const auto first = *std::min_element(sh.begin(), sh.end(), [](auto a, auto b) {
      return std::make_pair(a.second, a.first) < std::make_pair(b.second, b.first);
    });
    EXPECT_EQ(peaks[0].x, first.first);
    EXPECT_EQ(peaks[0].y, first.second);
    // A single higher pixel bordering the plateau (diagonally after its last pixel): the
    // plateau is no peak any more, that pixel is.
    const int hx = sh.back().first + 1, hy = sh.back().second + 1;
    img(hx, hy) = 10.f;
    const auto p2 = peaks_of(img);
    ASSERT_EQ(p2.size(), 1u);
    EXPECT_EQ(p2[0].x, hx);
    EXPECT_EQ(p2[0].y, hy);
  }
}

TEST(PeaksTest, BorderPixelsAreNeverPeaks) {
  // A ramp rising towards every edge: its maxima are all on the border.
  constexpr int w = 20, h = 16;
  Image<float> img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      img(x, y) = static_cast<float>(std::abs(x - 9.5) * std::abs(x - 9.5) + std::abs(y - 7.5));
  EXPECT_TRUE(peaks_of(img).empty());
  EXPECT_TRUE(find_peaks_naive(img.cview(), {}, {}, test::absolute_threshold(0.5)).empty());
  // A star whose centre lies outside the frame: brightest pixels on the border, no peak.
  for (double cx : {-0.4, -1.5, w - 0.6}) {
    Image<float> s(w, h, 0.f);
    test::add_star(s, {cx, 8.2, 1e4, 1.5});
    EXPECT_TRUE(peaks_of(s).empty()) << cx;
  }
  // Just inside (centre on column 1): found.
  Image<float> s(w, h, 0.f);
  test::add_star(s, {1.0, 8.0, 1e4, 1.5});
  const auto p = peaks_of(s);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].x, 1);
  // Images too small to have an interior.
  Image<float> tiny(2, 5, 1.f);
  EXPECT_TRUE(peaks_of(tiny).empty());
}

TEST(PeaksTest, SyntheticStarsFound) {
  // 40 stars of peak ~ 1e4/(2 pi 2^2) ~ 400 ADU on unit noise: each star is one peak within
  // a pixel of its centre; false peaks above 5 sigma: 2.9e-7 per pixel, ~0.02 in the frame.
  constexpr int w = 300, h = 260;
  std::mt19937 rng(21);
  auto stars = test::scatter_stars(40, w, h, 6, 15, 1e4, 2.0, rng);
  Image<float> img = test::constant(w, h, 0.f);
  for (const auto& s : stars) test::add_star(img, s);
  test::add_noise(img, 1.0, rng);
  const Image<float> rms = test::constant(w, h, 1.f);
  PeakConfig cfg;  // 5 sigma, k-sigma mode
  const auto peaks = find_peaks(img.cview(), rms.cview(), {}, cfg);
  ASSERT_EQ(peaks.size(), stars.size());
  for (const auto& s : stars) {
    int hits = 0;
    for (const auto& p : peaks) hits += std::hypot(p.x - s.x, p.y - s.y) <= std::sqrt(2.0);
    EXPECT_EQ(hits, 1) << s.x << "," << s.y;
  }
}

TEST(PeaksTest, SigmaThresholdFollowsTheLocalRms) {
  // Unit noise, except a 128 x 128 corner with sigma 5 (e.g. a vignetted, high-sky corner).
  constexpr int w = 384, h = 384, c = 128;
  std::mt19937 rng(22);
  std::normal_distribution<double> nd(0.0, 1.0);
  Image<float> img(w, h), rms(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double s = (x < c && y < c) ? 5.0 : 1.0;
      img(x, y) = static_cast<float>(s * nd(rng));
      rms(x, y) = static_cast<float>(s);
    }
  auto count_corner = [&](const std::vector<Peak>& p) {
    return std::count_if(p.begin(), p.end(), [&](const Peak& q) { return q.x < c && q.y < c; });
  };
  PeakConfig k4;
  k4.k_sigma = 4.0;
  // At 4 local sigmas a pixel is above with probability 3.2e-5: ~0.5 expected in the
  // corner, ~4 in the rest; <= 5 and <= 15 fail with probability < 1e-4.
  const auto ps = find_peaks(img.cview(), rms.cview(), {}, k4);
  EXPECT_LE(count_corner(ps), 5);
  EXPECT_LE(static_cast<long>(ps.size()) - count_corner(ps), 15);
  // The same threshold taken as one global value (4 ADU) floods the noisy corner.
  const auto pa = find_peaks(img.cview(), {}, {}, test::absolute_threshold(4.0));
  EXPECT_GT(count_corner(pa), 300);
}

TEST(PeaksTest, MergeClosePeaksKeepsTheHighest) {
  // Sorted by (y, x). A close pair (distance 2) and one far away.
  std::vector<Peak> in{{10, 10, 5.f}, {12, 10, 8.f}, {40, 40, 3.f}};
  auto out = merge_close_peaks(in, 3.0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].x, 12);
  EXPECT_EQ(out[1].x, 40);
  // Highest first in the other order too, and a tie keeps the first in (y, x).
  in = {{10, 10, 9.f}, {11, 11, 8.f}};
  out = merge_close_peaks(in, 3.0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].x, 10);
  in = {{10, 10, 4.f}, {10, 12, 4.f}};
  out = merge_close_peaks(in, 3.0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].y, 10);
  // "Closer than": exactly at the radius both stay; no merging at radius 0.
  in = {{10, 10, 4.f}, {13, 14, 5.f}};  // distance 5
  EXPECT_EQ(merge_close_peaks(in, 5.0).size(), 2u);
  EXPECT_EQ(merge_close_peaks(in, 5.01).size(), 1u);
  EXPECT_EQ(merge_close_peaks(in, 0.0).size(), 2u);
}

TEST(PeaksTest, MergeClosePeaksAgreesWithBruteForce) {
  // Greedy suppression in decreasing value: a peak survives when no surviving higher peak
  // lies within the radius. Checked against an O(n^2) loop on random peaks, including pairs
  // across the grid cells the implementation buckets by.
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> ux(0, 199), uy(0, 149);
  std::uniform_real_distribution<float> uv(0.f, 100.f);
  for (double radius : {1.5, 3.0, 7.3}) {
    std::vector<Peak> in;
    for (int i = 0; i < 600; ++i) in.push_back({ux(rng), uy(rng), uv(rng)});
    std::sort(in.begin(), in.end(), [](const Peak& a, const Peak& b) {
      return std::make_pair(a.y, a.x) < std::make_pair(b.y, b.x);
    });
    in.erase(std::unique(in.begin(), in.end(),
                         [](const Peak& a, const Peak& b) { return a.x == b.x && a.y == b.y; }),
             in.end());
    std::vector<std::size_t> order(in.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return in[a].value > in[b].value; });
    std::vector<char> keep(in.size(), 0);
    for (std::size_t i : order) {
      bool near = false;
      for (std::size_t j = 0; j < in.size(); ++j)
        if (keep[j] && std::hypot(in[i].x - in[j].x, in[i].y - in[j].y) < radius) near = true;
      keep[i] = !near;
    }
    std::vector<Peak> expect;
    for (std::size_t i = 0; i < in.size(); ++i)
      if (keep[i]) expect.push_back(in[i]);
    const auto out = merge_close_peaks(in, radius);
    EXPECT_TRUE(test::same_peaks(out, expect)) << radius;
    EXPECT_TRUE(sorted_yx(out));
    EXPECT_LT(out.size(), in.size());
  }
}

TEST(PeaksTest, MergePeaksInRegionsKeepsOnePerSaturatedRegion) {
  constexpr int w = 60, h = 50;
  Image<MaskBits> m(w, h, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      if (std::hypot(x - 15, y - 15) <= 4) m(x, y) = mask::kSaturated;
      if (std::hypot(x - 40, y - 30) <= 3) m(x, y) = mask::kSaturated | mask::kBadPixel;
    }
  // Rim peaks of region A (values 5, 9, 7), of region B (3, 4), one free peak, and one 3 px
  // beyond A's edge (outside the default reach of 2).
  std::vector<Peak> in{{15, 10, 5.f}, {20, 14, 9.f}, {12, 19, 7.f}, {40, 26, 3.f},
                       {44, 30, 4.f}, {5, 40, 1.f},  {15, 22, 50.f}};
  std::sort(in.begin(), in.end(), [](const Peak& a, const Peak& b) {
    return std::make_pair(a.y, a.x) < std::make_pair(b.y, b.x);
  });
  const auto out = merge_peaks_in_regions(in, m.cview(), mask::kSaturated);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(sorted_yx(out));
  auto has = [&](int x, int y) {
    return std::any_of(out.begin(), out.end(), [&](const Peak& p) { return p.x == x && p.y == y; });
  };
  EXPECT_TRUE(has(20, 14));  // highest of A
  EXPECT_TRUE(has(44, 30));  // highest of B
  EXPECT_TRUE(has(5, 40));
  EXPECT_TRUE(has(15, 22));  // 3 px from A's edge
  // With a larger reach that peak joins A and, being the highest, is the one kept.
  const auto out5 = merge_peaks_in_regions(in, m.cview(), mask::kSaturated, 5);
  EXPECT_EQ(out5.size(), 3u);
  // Bits not present: nothing merged; empty mask: input returned.
  EXPECT_EQ(merge_peaks_in_regions(in, m.cview(), mask::kUserDetect).size(), in.size());
  EXPECT_EQ(merge_peaks_in_regions(in, {}, mask::kSaturated).size(), in.size());
}

// The streamed search must find exactly what find_peaks finds on the kept smoothed image:
// noise with stars, masked pixels, both kernels, both threshold modes, sizes around the
// 128-row blocks, and flat-topped regions (exact plateaus of the smoothed image, the case
// resolved on the full image) that cross block boundaries; 1 and 2 threads.
TEST(PeaksTest, StreamedSmoothedSearchEqualsSearchOnTheSmoothedImage) {
  std::mt19937 rng(21);
  const int sizes[][2] = {{3, 3}, {5, 200}, {211, 129}, {96, 300}};
  const int saved = omp_get_max_threads();
  std::size_t n_plateau_cases = 0;
  for (const auto& sz : sizes) {
    const int w = sz[0], h = sz[1];
    Image<float> img = test::constant(w, h, 0.f);
    test::add_noise(img, 3.0, rng);
    for (int i = 0; i < w * h / 400; ++i)
      test::add_star(img, {double(rng() % w), double(rng() % h), 300.0 + rng() % 3000, 1.8});
    for (bool flat_top : {false, true}) {
      Image<float> im = img.clone();
      if (flat_top && w > 40 && h > 150)
        for (int y = 100; y < 150; ++y)
          for (int x = 10; x < 30; ++x) im(x, y) = 500.f;  // no noise: an exact plateau
      Image<MaskBits> m(w, h, 0);
      for (int i = 0; i < w * h / 60; ++i)
        m((i * 89) % w, (i * 37) % h) = i % 2 ? mask::kBadPixel : mask::kUserDetect;
      if (flat_top && w > 40 && h > 150)
        for (int y = 95; y < 155; ++y)
          for (int x = 5; x < 35; ++x) m(x, y) = 0;
      Image<float> rms = test::constant(w, h, 3.0f);
      for (int y = 0; y < h; ++y) rms(w / 2, y) = 30.0f;
      for (bool lowered : {false, true})
        for (int mode = 0; mode < 2; ++mode) {
          PeakConfig pc = mode ? test::absolute_threshold(40.0) : PeakConfig{};
          pc.rms_scale = smoothing_noise_factor(1.5, lowered);
          const Image<float> sm =
              gaussian_smooth(im.cview(), m.cview(), mask::kUnusable, 1.5, lowered);
          const auto ref = find_peaks(sm.cview(), rms.cview(), m.cview(), pc);
          for (int threads : {1, 2}) {
            omp_set_num_threads(threads);
            const auto got = find_peaks_smoothed(im.cview(), rms.cview(), m.cview(),
                                                 mask::kUnusable, 1.5, lowered, pc);
            EXPECT_TRUE(test::same_peaks(got, ref))
                << w << "x" << h << " flat " << flat_top << " lowered " << lowered << " mode "
                << mode << " threads " << threads << ": " << got.size() << " vs " << ref.size();
          }
          if (flat_top && !lowered && w > 40 && h > 150) {
            ++n_plateau_cases;
            // The plateau's first pixel in (y, x) order is reported, once.
            std::size_t on_plateau = 0;
            for (const Peak& p : ref)
              if (p.x >= 10 && p.x < 30 && p.y >= 100 && p.y < 150) ++on_plateau;
            EXPECT_EQ(on_plateau, 1u);
          }
        }
    }
  }
  omp_set_num_threads(saved);
  EXPECT_GT(n_plateau_cases, 0u);
}

// The search through a SplineMap RMS (which skips blocks where no pixel can pass) finds the
// same peaks as through its plane (every pixel tested): random fields with stars, masks, a
// varying RMS map, thresholds where many pixels sit near k * rms, both kernels, 1 and 2
// threads.
TEST(PeaksTest, SplineMapSearchEqualsPlaneSearch) {
  std::mt19937 rng(23);
  const int saved = omp_get_max_threads();
  std::size_t total = 0;
  for (const auto& sz : {std::array<int, 2>{211, 129}, std::array<int, 2>{300, 260},
                         std::array<int, 2>{97, 64}, std::array<int, 2>{5, 40}}) {
    const int w = sz[0], h = sz[1];
    const int gw = std::max(1, w / 32), gh = std::max(1, h / 32);
    Image<float> grid(gw, gh);
    std::uniform_real_distribution<double> ug(1.5, 6.0);
    for (int j = 0; j < gh; ++j)
      for (int i = 0; i < gw; ++i) grid(i, j) = static_cast<float>(ug(rng));
    std::vector<double> cx(gw), cy(gh);
    for (int i = 0; i < gw; ++i) cx[i] = (i + 0.5) * w / gw - 0.5;
    for (int j = 0; j < gh; ++j) cy[j] = (j + 0.5) * h / gh - 0.5;
    const SplineMap map(make_mesh_spline(grid.cview(), cx, cy), w, h);
    Image<float> img = test::constant(w, h, 0.f);
    test::add_noise(img, 3.0, rng);
    for (int i = 0; i < w * h / 300; ++i)
      test::add_star(img, {double(rng() % w), double(rng() % h), 30.0 + rng() % 3000, 1.5});
    Image<MaskBits> m(w, h, 0);
    for (int i = 0; i < w * h / 80; ++i)
      m((i * 89) % w, (i * 37) % h) = i % 2 ? mask::kBadPixel : mask::kUserDetect;
    for (double k : {0.5, 2.0, 3.0, 5.0, 8.5})
      for (bool lowered : {false, true})
        for (int threads : {1, 2}) {
          omp_set_num_threads(threads);
          PeakConfig pc;
          pc.k_sigma = k;
          pc.rms_scale = smoothing_noise_factor(1.2, lowered);
          const auto ref = find_peaks_smoothed(img.cview(), map.plane(), m.cview(), mask::kUnusable,
                                               1.2, lowered, pc);
          const auto got =
              find_peaks_smoothed(img.cview(), map, m.cview(), mask::kUnusable, 1.2, lowered, pc);
          EXPECT_TRUE(test::same_peaks(got, ref))
              << w << "x" << h << " k " << k << " lowered " << lowered << ": " << got.size()
              << " vs " << ref.size();
          total += ref.size();
        }
  }
  omp_set_num_threads(saved);
  EXPECT_GT(total, 1000u);
}

// A pixel one float above its threshold k * rms (in double, as the search computes it) is a
// peak; one at or just below it is not, wherever it sits in its 16-pixel block and mesh
// interval, and where its interval's RMS is smallest (unsmoothed search, so the searched
// values are the planted ones).
TEST(PeaksTest, SplineMapSearchFindsAPixelJustAboveTheThreshold) {
  const int w = 260, h = 40;
  Image<float> grid(5, 2);
  const float gv[10] = {3.f, 7.f, 2.f, 9.f, 4.f, 5.f, 2.5f, 8.f, 3.f, 6.f};
  for (int j = 0; j < 2; ++j)
    for (int i = 0; i < 5; ++i) grid(i, j) = gv[i + 5 * j];
  std::vector<double> cx(5), cy(2);
  for (int i = 0; i < 5; ++i) cx[i] = (i + 0.5) * w / 5.0 - 0.5;
  for (int j = 0; j < 2; ++j) cy[j] = (j + 0.5) * h / 2.0 - 0.5;
  const SplineMap map(make_mesh_spline(grid.cview(), cx, cy), w, h);
  PeakConfig pc;
  pc.k_sigma = 5.0;
  pc.rms_scale = 1.0;
  std::size_t found = 0, planted = 0;
  std::vector<float> rrow(w);
  SplineMap::Row prow;
  for (int y = 2; y < h - 2; y += 3) {
    // Pixels every 13, and each interval's smallest RMS (where its bound is closest).
    std::vector<int> xs;
    for (int x0 = 1 + y % 7; x0 < w - 1; x0 += 13) xs.push_back(x0);
    map.row(y, 0, w, rrow.data());
    map.prepare_row(y, prow);
    for (std::size_t k = 0; k < prow.begin.size(); ++k) {
      const int a = std::max(1, prow.begin[k]), b = std::min(w - 1, prow.end[k]);
      if (a < b) xs.push_back(static_cast<int>(std::min_element(&rrow[a], &rrow[b]) - &rrow[0]));
    }
    for (int x0 : xs) {
      for (int above : {1, 0, -1}) {
        Image<float> img = test::constant(w, h, 0.f);
        const double t = pc.k_sigma * pc.rms_scale * map.at(x0, y);
        float v = static_cast<float>(t);
        if (above > 0)
          while (!(static_cast<double>(v) > t)) v = std::nextafter(v, 1e30f);
        else
          while (static_cast<double>(v) > t) v = std::nextafter(v, -1e30f);
        if (above < 0) v = std::nextafter(v, -1e30f);
        img(x0, y) = v;
        const auto ref = find_peaks_smoothed(img.cview(), map.plane(), ImageView<const MaskBits>{},
                                             0, 0.0, false, pc);
        const auto got =
            find_peaks_smoothed(img.cview(), map, ImageView<const MaskBits>{}, 0, 0.0, false, pc);
        ASSERT_TRUE(test::same_peaks(got, ref)) << x0 << "," << y << " above " << above;
        // Where the spline's extrapolation dips to t <= 0 near the edges (the case without a
        // bound: nothing skipped), the zero pixels around pass too and outrank a negative
        // planted value; only the equality with the plane's search is checked there.
        if (!(t > 0)) continue;
        const bool hit = got.size() == 1 && got[0].x == x0 && got[0].y == y;
        EXPECT_EQ(hit, above > 0) << x0 << "," << y << " t " << t;
        found += hit;
        planted += above > 0;
      }
    }
  }
  EXPECT_EQ(found, planted);
  EXPECT_GT(planted, 100u);
}

TEST(PeaksTest, OneAndTwoThreadsGiveIdenticalPeaks) {
  constexpr int w = 512, h = 400;
  std::mt19937 rng(24);
  Image<float> img = test::constant(w, h, 0.f);
  for (const auto& s : test::scatter_stars(200, w, h, 3, 4, 3000, 1.6, rng)) test::add_star(img, s);
  test::add_noise(img, 2.0, rng);
  const Image<float> rms = test::constant(w, h, 2.f);
  PeakConfig cfg;
  cfg.k_sigma = 2.0;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto a = find_peaks(img.cview(), rms.cview(), {}, cfg);
  omp_set_num_threads(2);
  const auto b = find_peaks(img.cview(), rms.cview(), {}, cfg);
  omp_set_num_threads(saved);
  EXPECT_TRUE(test::same_peaks(a, b));
  EXPECT_GT(a.size(), 200u);
}

}  // namespace
}  // namespace psfphot
