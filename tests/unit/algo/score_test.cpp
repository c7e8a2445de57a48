#include "psfphot/algo/score.hpp"

#include "psfphot/algo/cramer_rao.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace psfphot {
namespace {

constexpr double kSigma = 2.0, kSky = 100.0;

ScoreTruthStar star(double x, double y, double snr, bool saturated = false) {
  const double flux = snr * std::sqrt(4 * std::numbers::pi * kSigma * kSigma * kSky);
  return {x, y, flux, snr, saturated, kSigma, kSky};
}

// Isolated stars on a 50 px grid (all clean), S/N cycling through every bin.
std::vector<ScoreTruthStar> grid_field(int nx, int ny) {
  const double snrs[] = {7, 15, 30, 70, 200, 500, 3000};
  std::vector<ScoreTruthStar> t;
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i)
      t.push_back(star(30.0 + 50 * i + 0.1 * j, 30.0 + 50 * j + 0.07 * i, snrs[(i + j) % 7]));
  return t;
}

const ScoreFrame kFrame{1000, 800, 1.2};

std::vector<ScoreMeasuredStar> exact(const std::vector<ScoreTruthStar>& t) {
  std::vector<ScoreMeasuredStar> m;
  for (const auto& s : t) m.push_back({s.x, s.y, s.flux_adu, 0});
  return m;
}

TEST(Score, PerfectCatalogueScoresPerfectly) {
  const auto truth = grid_field(14, 10);
  const ScoreReport r = score_catalogue(truth, kFrame, exact(truth));
  EXPECT_EQ(r.n_true, 140);
  EXPECT_EQ(r.n_matched, 140);
  EXPECT_EQ(r.n_false, 0);
  EXPECT_EQ(r.overall.n_true_clean, 140);
  EXPECT_DOUBLE_EQ(r.overall.completeness, 1.0);
  EXPECT_DOUBLE_EQ(r.overall.completeness_clean, 1.0);
  EXPECT_DOUBLE_EQ(r.overall.centroid_rms_px, 0.0);
  EXPECT_DOUBLE_EQ(r.overall.flux_ratio_median, 1.0);
  EXPECT_DOUBLE_EQ(r.overall.flux_scatter, 0.0);
  ASSERT_EQ(r.bins.size(), 7u);
  for (const auto& b : r.bins) {
    EXPECT_EQ(b.n_true, 20);
    EXPECT_DOUBLE_EQ(b.completeness, 1.0);
  }
  EXPECT_TRUE(std::isnan(r.snr_at_50pct_completeness));  // never below 50%
}

TEST(Score, KnownOffsetsGiveExactRmsAndBias) {
  const auto truth = grid_field(10, 10);
  auto m = exact(truth);
  // Half the stars off by (+0.2, -0.4), the other half by (+0.6, -0.4).
  for (std::size_t i = 0; i < m.size(); ++i) {
    m[i].x += i % 2 ? 0.6 : 0.2;
    m[i].y -= 0.4;
  }
  const ScoreReport r = score_catalogue(truth, kFrame, m);
  EXPECT_EQ(r.n_matched, 100);
  EXPECT_NEAR(r.overall.centroid_rms_x_px, std::sqrt((0.04 + 0.36) / 2), 1e-12);
  EXPECT_NEAR(r.overall.centroid_rms_y_px, 0.4, 1e-12);
  EXPECT_NEAR(r.overall.centroid_rms_px, std::sqrt((0.2 + 0.16) / 2), 1e-12);
  EXPECT_NEAR(r.overall.centroid_bias_x_px, 0.4, 1e-12);  // median of 50 x 0.2, 50 x 0.6
  EXPECT_NEAR(r.overall.centroid_bias_y_px, -0.4, 1e-12);
  EXPECT_NEAR(r.overall.centroid_rms_over_bound,
              r.overall.centroid_rms_px / r.overall.centroid_bound_full_px, 1e-12);
}

// Every star off by exactly its own full bound in x and in y: the efficiency column is 1
// whatever the spread of S/N in the bin, and the ideal column is sqrt(mean b^2) / median b.
TEST(Score, ErrorsAtEachStarsOwnBoundGiveEfficiencyOne) {
  std::vector<ScoreTruthStar> truth;
  const double snrs[] = {300, 420, 560, 700, 990};  // one bin (300-1000), bounds differ 3x
  for (int i = 0; i < 5; ++i) truth.push_back(star(100.0 + 40 * i, 100.3, snrs[i]));
  auto m = exact(truth);
  std::vector<double> b;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const auto& t = truth[i];
    b.push_back(
        full_bound(t.flux_adu, t.x, t.y, t.psf_sigma_px, t.sky_var_adu2, kFrame.gain_e_per_adu)
            .axis_px());
    m[i].x += b.back();
    m[i].y -= b.back();
  }
  const ScoreReport r = score_catalogue(truth, kFrame, m);
  const ScoreBin& bin = r.bins[5];
  ASSERT_EQ(bin.n_errors, 5);
  EXPECT_NEAR(bin.centroid_rms_over_own_bound, 1.0, 1e-9);
  double mean_b2 = 0;
  for (double v : b) mean_b2 += v * v / 5;
  EXPECT_NEAR(bin.centroid_bound_full_px, b[2], 1e-12);  // median of 5 (bounds fall with S/N)
  EXPECT_NEAR(bin.centroid_ideal_over_bound, std::sqrt(mean_b2) / b[2], 1e-9);
  EXPECT_GT(bin.centroid_ideal_over_bound, 1.05);  // the spread alone costs > 5%
  // The bin's usual ratio equals the ideal one here: the errors are exactly the bounds.
  EXPECT_NEAR(bin.centroid_rms_over_bound, bin.centroid_ideal_over_bound, 1e-9);
}

TEST(Score, FluxRatioMedianAndRobustScatter) {
  std::vector<ScoreTruthStar> truth;
  for (int i = 0; i < 5; ++i) truth.push_back(star(100.0 + 40 * i, 100.0, 40.0));
  auto m = exact(truth);
  const double ratio[] = {0.9, 1.0, 1.1, 1.0, 1.2};
  for (int i = 0; i < 5; ++i) m[static_cast<std::size_t>(i)].flux_adu *= ratio[i];
  m[2].flux_adu = NAN;  // unmeasured flux: out of the flux columns, still in the centroids
  const ScoreReport r = score_catalogue(truth, kFrame, m);
  const ScoreBin& b = r.bins[2];  // 20-50
  EXPECT_EQ(b.n_errors, 5);
  EXPECT_EQ(b.n_flux, 4);
  // ratios {0.9, 1.0, 1.0, 1.2}: median 1.0, |dev| {0.1, 0, 0, 0.2} -> MAD 0.05.
  EXPECT_NEAR(b.flux_ratio_median, 1.0, 1e-12);
  EXPECT_NEAR(b.flux_scatter, 1.482602218505602 * 0.05, 1e-9);
  // Simple bound: 1/SNR and sqrt(2) sigma / SNR for every star of the bin.
  EXPECT_NEAR(b.flux_bound_simple, 1.0 / 40, 1e-12);
  EXPECT_NEAR(b.centroid_bound_simple_px, std::sqrt(2.0) * kSigma / 40, 1e-12);
  EXPECT_GT(b.flux_bound_full, b.flux_bound_simple);
  EXPECT_NEAR(b.flux_scatter_over_bound, b.flux_scatter / b.flux_bound_full, 1e-12);
}

TEST(Score, OneToOneMatchingTakesClosestPairsFirst) {
  // T0 at 0, T1 1.0 px right; M0 at +0.6 (0.6 from T0, 0.4 from T1), M1 at -0.8 (0.8 from
  // T0, 1.8 from T1). Greedy by distance: T1-M0 (0.4), then T0-M1 (0.8). Taking truth
  // stars in index order with their nearest free star would leave T1 unmatched.
  std::vector<ScoreTruthStar> truth = {star(100, 100, 50), star(101, 100, 50)};
  std::vector<ScoreMeasuredStar> m = {{100.6, 100, 1, 0}, {99.2, 100, 1, 0}};
  auto match = match_one_to_one(truth, m, 1.5);
  EXPECT_EQ(match, (std::vector<int>{1, 0}));
  // A duplicate detection of one star: one match, one false detection.
  truth = {star(100, 100, 50)};
  m = {{100.4, 100, 1, 0}, {100, 100.2, 1, 0}};
  const ScoreReport r = score_catalogue(truth, kFrame, m);
  EXPECT_EQ(r.truth_match, (std::vector<int>{1}));
  EXPECT_EQ(r.n_matched, 1);
  EXPECT_EQ(r.n_false, 1);
  // Exact tie: the lower measured index wins; distance == radius still matches.
  m = {{101, 100, 1, 0}, {99, 100, 1, 0}};
  EXPECT_EQ(match_one_to_one(truth, m, 1.0), (std::vector<int>{0}));
  m = {{101.5001, 100, 1, 0}};
  EXPECT_EQ(match_one_to_one(truth, m, 1.5), (std::vector<int>{-1}));
  EXPECT_THROW(match_one_to_one(truth, m, 0.0), std::invalid_argument);
}

// The grid index must find exactly what brute force finds, in a field dense enough that
// most stars have several candidates.
TEST(Score, GridMatchingEqualsBruteForceGreedy) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 60.0), d(-1.6, 1.6);
  std::vector<ScoreTruthStar> truth;
  std::vector<ScoreMeasuredStar> m;
  for (int i = 0; i < 1500; ++i) truth.push_back(star(u(rng), u(rng), 30));
  for (int i = 0; i < 1500; ++i) {
    const auto& t = truth[static_cast<std::size_t>(i)];
    m.push_back({t.x + d(rng), t.y + d(rng), 1, 0});
  }
  const double radius = 1.5;
  std::vector<std::tuple<double, int, int>> pairs;
  for (int t = 0; t < 1500; ++t)
    for (int k = 0; k < 1500; ++k) {
      const double dx = m[k].x - truth[t].x, dy = m[k].y - truth[t].y;
      if (dx * dx + dy * dy <= radius * radius) pairs.emplace_back(dx * dx + dy * dy, t, k);
    }
  std::sort(pairs.begin(), pairs.end());
  std::vector<int> expect(1500, -1);
  std::vector<bool> used(1500, false);
  for (auto [dd, t, k] : pairs)
    if (expect[t] < 0 && !used[k]) expect[t] = k, used[k] = true;
  EXPECT_GT(pairs.size(), 3000u);  // genuinely ambiguous
  EXPECT_EQ(match_one_to_one(truth, m, radius), expect);
}

TEST(Score, FalseDetectionsInvalidAndRejectedRows) {
  std::vector<ScoreTruthStar> truth = {star(100, 100, 50), star(300, 300, 5000, true)};
  std::vector<ScoreMeasuredStar> m = {
      {100, 100, 1, 0x1},   // match (flagged, bit not rejected)
      {500, 500, 1, 0},     // false
      {700, 20, 1, 0},      // false
      {300, 300, 1, 0},     // matches the saturated star
      {301.2, 300, 1, 0},   // broken core of the saturated star: excluded
      {NAN, 10, 1, 0},      // invalid
      {200, 200, 1, 0x4}};  // rejected by flags
  ScoreConfig cfg;
  cfg.reject_flags = 0x4;
  const ScoreReport r = score_catalogue(truth, kFrame, m, cfg);
  EXPECT_EQ(r.n_measured, 7);
  EXPECT_EQ(r.n_matched, 2);
  EXPECT_EQ(r.n_false, 2);
  EXPECT_EQ(r.n_false_excluded_near_saturated, 1);
  EXPECT_EQ(r.n_measured_invalid, 1);
  EXPECT_EQ(r.n_measured_rejected, 1);
  cfg.reject_flags = 0;  // the flagged row now counts as a false detection
  EXPECT_EQ(score_catalogue(truth, kFrame, m, cfg).n_false, 3);
  EXPECT_EQ(r.overall.n_matched_flagged, 1);
}

TEST(Score, CleanClassificationAtBorderNeighbourAndSaturation) {
  const ScoreFrame f{200, 100, 1.0};
  std::vector<ScoreTruthStar> t = {
      star(10.0, 20, 100),        // 0: exactly 10 px from the first pixel centre: clean
      star(9.99, 70, 100),        // 1: too close to the border
      star(189.0, 20, 100),       // 2: width - 1 - 10: clean
      star(189.01, 70, 100),      // 3: too close
      star(50, 89.0, 100),        // 4: height - 1 - 10: clean
      star(50, 9.0, 100),         // 5: too close to y = 0
      star(100, 50, 100),         // 6: neighbour 7 is 9.9 px away but only 9% as bright
      star(109.9, 50, 9.0),       // 7: neighbour 6, 11x brighter, 9.9 px away
      star(130, 30, 99),          // 8: neighbour 9 (10x brighter) exactly 10.0 px away
      star(140, 30, 1000),        // 9: neighbour 8 is 9.9% as bright
      star(150, 70, 100, true)};  // 10: saturated
  const auto clean = classify_clean(t, f, ScoreConfig{});
  const std::vector<bool> expect = {true, false, true, false, true, false,
                                    true, false, true, true,  false};
  EXPECT_EQ(clean, expect);
  // The error columns see clean stars only: a huge offset on a non-clean star is ignored.
  auto m = exact(t);
  m[1].x += 1.0;
  const ScoreReport r = score_catalogue(t, f, m);
  EXPECT_EQ(r.overall.n_errors, 6);
  EXPECT_DOUBLE_EQ(r.overall.centroid_rms_px, 0.0);
  EXPECT_EQ(r.overall.n_matched, 11);
}

TEST(Score, SnrBinsHalfOpenAndHeadline) {
  std::vector<ScoreTruthStar> t;
  const double snrs[] = {4.99, 5.0, 9.999, 10.0, 19.99, 20.0, 999.0, 1000.0, 1e5, NAN};
  for (int i = 0; i < 10; ++i) t.push_back(star(30.0 + 40 * i, 50, snrs[i]));
  const ScoreReport r = score_catalogue(t, kFrame, exact(t));
  const std::vector<long> expect = {2, 2, 1, 0, 0, 1, 2};
  ASSERT_EQ(r.bins.size(), expect.size());
  for (std::size_t k = 0; k < expect.size(); ++k) EXPECT_EQ(r.bins[k].n_true, expect[k]) << k;
  EXPECT_EQ(r.overall.n_true, 10);
  EXPECT_EQ(r.headline.n_true, 4);  // S/N >= 20
  EXPECT_DOUBLE_EQ(r.bins[0].snr_min, 5.0);
  EXPECT_TRUE(std::isinf(r.bins.back().snr_max));
}

TEST(Score, SnrAtHalfCompletenessInterpolatesInLogSnr) {
  ScoreConfig cfg;  // 8 bins per decade, >= 10 stars per bin
  std::vector<double> snr;
  std::vector<bool> det;
  for (int k = 6; k <= 14; ++k) {
    const int n_det = k <= 8 ? 4 : k == 9 ? 16 : 20;  // completeness 0.2, 0.8, 1
    for (int i = 0; i < 20; ++i) {
      snr.push_back(std::pow(10.0, (k + 0.5) / 8));
      det.push_back(i < n_det);
    }
  }
  // Crossing half-way between the centres of bins 8 and 9: log10(S/N) = 9 / 8.
  EXPECT_NEAR(snr_at_half_completeness(snr, det, cfg), std::pow(10.0, 9.0 / 8), 1e-9);
  // Sparse bins (< 10 stars) are ignored: 5 detected stars far below would otherwise be
  // the first bin above 50% and make the answer NaN.
  for (int i = 0; i < 5; ++i) {
    snr.push_back(std::pow(10.0, 3.5 / 8));
    det.push_back(true);
  }
  EXPECT_NEAR(snr_at_half_completeness(snr, det, cfg), std::pow(10.0, 9.0 / 8), 1e-9);
  cfg.snr50_min_stars = 5;
  EXPECT_TRUE(std::isnan(snr_at_half_completeness(snr, det, cfg)));
  cfg.snr50_min_stars = 10;
  // Nothing detected, or everything: no crossing.
  EXPECT_TRUE(std::isnan(snr_at_half_completeness(snr, std::vector<bool>(snr.size()), cfg)));
  EXPECT_TRUE(std::isnan(snr_at_half_completeness(snr, std::vector<bool>(snr.size(), true), cfg)));
}

// The full bound uses the effective gain gain * flat_response for the star's photon term.
// With no background (B = 0) the Fisher matrix is J^T V^-1 J with V_i = F p_i / (g f): it
// scales with f exactly, so at f = 0.5 every bound is sqrt(2) larger than at f = 1. The
// literal bound (raw gain) does not see f.
TEST(Score, FlatResponseHalfMakesThePhotonLimitedBoundSqrt2Larger) {
  ScoreTruthStar a{200.3, 150.2, 1e6, 1e4, false, kSigma, 0.0};
  ScoreTruthStar b = a;
  b.x = 600.3;
  b.flat_response = 0.5;
  const std::vector<ScoreTruthStar> truth{a, b};
  const ScoreReport r = score_catalogue(truth, kFrame, exact(truth));
  const StarBound &f1 = r.truth_bound_full[0], &f05 = r.truth_bound_full[1];
  ASSERT_TRUE(std::isfinite(f1.x_px) && std::isfinite(f05.x_px));
  EXPECT_NEAR(f05.flux_frac / f1.flux_frac, std::numbers::sqrt2, 1e-9);
  EXPECT_NEAR(f05.x_px / f1.x_px, std::numbers::sqrt2, 1e-9);
  EXPECT_NEAR(f05.y_px / f1.y_px, std::numbers::sqrt2, 1e-9);
  // Literal bound: the raw gain for both, so the same bound (same sub-pixel phase).
  EXPECT_NEAR(r.truth_bound_literal[1].x_px, f1.x_px, 1e-12);
  EXPECT_NEAR(r.truth_bound_literal[1].flux_frac, f1.flux_frac, 1e-12);
  // Photon-limited scaling: bound = 1 / sqrt(F gain_eff) times a shape factor, so the
  // flux bound at f = 1 is close to 1 / sqrt(F g) (a bit above: x, y are fitted jointly,
  // but the flux decouples from a centred position to first order).
  EXPECT_NEAR(f1.flux_frac * std::sqrt(1e6 * kFrame.gain_e_per_adu), 1.0, 0.01);
  // With a background the ratio lies between 1 (B dominates) and sqrt(2).
  ScoreTruthStar c = a, d = b;
  c.sky_var_adu2 = d.sky_var_adu2 = kSky;
  c.flux_adu = d.flux_adu = 2e4;  // S/N ~ 280: photon and sky terms comparable
  const std::vector<ScoreTruthStar> t2{c, d};
  const ScoreReport r2 = score_catalogue(t2, kFrame, exact(t2));
  const double ratio = r2.truth_bound_full[1].x_px / r2.truth_bound_full[0].x_px;
  EXPECT_GT(ratio, 1.02);
  EXPECT_LT(ratio, std::numbers::sqrt2 - 0.02);
}

// A truth star without a flat response (the default 1, as a truth table without the
// column reads) has the full bound equal to the literal one, and so do the bins' ratios.
TEST(Score, MissingFlatResponseGivesTheLiteralBound) {
  auto truth = grid_field(8, 6);
  auto m = exact(truth);
  for (std::size_t i = 0; i < m.size(); ++i) m[i].x += 0.01 * static_cast<double>(i % 5);
  const ScoreReport r = score_catalogue(truth, kFrame, m);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    EXPECT_EQ(r.truth_bound_full[i].x_px, r.truth_bound_literal[i].x_px);
    EXPECT_EQ(r.truth_bound_full[i].flux_frac, r.truth_bound_literal[i].flux_frac);
  }
  for (const ScoreBin& b : r.bins) {
    if (b.n_errors == 0) continue;
    EXPECT_EQ(b.centroid_bound_full_px, b.centroid_bound_literal_px);
    EXPECT_EQ(b.centroid_rms_over_bound, b.centroid_rms_over_bound_literal);
    EXPECT_EQ(b.flux_scatter_over_bound, b.flux_scatter_over_bound_literal);
  }
  // Vignetted everywhere (f = 0.6): the full bounds and their medians grow, the literal
  // ones stay, so the ratio against the full bound falls.
  for (auto& t : truth) t.flat_response = 0.6;
  const ScoreReport v = score_catalogue(truth, kFrame, m);
  const ScoreBin &b0 = r.bins[6], &b1 = v.bins[6];  // S/N >= 1000: photon noise matters
  ASSERT_GT(b1.n_errors, 0);
  EXPECT_EQ(b1.centroid_bound_literal_px, b0.centroid_bound_literal_px);
  EXPECT_GT(b1.centroid_bound_full_px, 1.05 * b0.centroid_bound_full_px);
  EXPECT_LT(b1.centroid_rms_over_bound, b1.centroid_rms_over_bound_literal);
}

TEST(Score, InvalidFlatResponseThrows) {
  auto t = grid_field(2, 2);
  t[1].flat_response = 0;
  EXPECT_THROW(score_catalogue(t, kFrame, exact(t)), std::invalid_argument);
  t[1].flat_response = std::nan("");
  EXPECT_THROW(score_catalogue(t, kFrame, exact(t)), std::invalid_argument);
}

TEST(Score, InvalidConfigThrows) {
  const auto t = grid_field(2, 2);
  ScoreConfig cfg;
  cfg.match_radius_px = 0;
  EXPECT_THROW(score_catalogue(t, kFrame, exact(t), cfg), std::invalid_argument);
  cfg = {};
  cfg.snr_bin_edges = {5, 5};
  EXPECT_THROW(score_catalogue(t, kFrame, exact(t), cfg), std::invalid_argument);
  EXPECT_THROW(score_catalogue(t, ScoreFrame{0, 10, 1}, exact(t)), std::invalid_argument);
  EXPECT_THROW(score_catalogue(t, ScoreFrame{10, 10, 0}, exact(t)), std::invalid_argument);
}

}  // namespace
}  // namespace psfphot
