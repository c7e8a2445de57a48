#pragma once
// The scorecard: match a measured catalogue to the truth of a simulated frame and report
// completeness, false detections, centroid and flux errors next to the Cramer-Rao bound,
// overall and per S/N bin. Definitions are those of ../shared/peers/README.md
// ("Definitions"); docs/score.md repeats them with the JSON schema of `psfphot score`.
//
// Definitions used here (all configurable through ScoreConfig, defaults = the peers'):
// - Matching: one-to-one. Every (truth, measured) pair closer than match_radius_px
//   (distance <= radius) is a candidate; candidates are taken greedily by increasing
//   distance, ties broken by truth index then measured index, each star used at most
//   once. Measured stars with non-finite x or y, or any bit of reject_flags set, take no
//   part (counted in n_measured_invalid / n_measured_rejected).
// - Clean truth star: pixel-centre distance to the frame edge >= clean_border_px
//   (border <= x <= width - 1 - border, same in y), no other truth star closer than
//   clean_neighbour_radius_px (distance < radius) with flux > clean_neighbour_flux_ratio
//   times this star's flux, and not saturated.
// - S/N: the truth table's snr column (F / sqrt(4 pi sigma^2 B)); bins are
//   [lo, hi) on truth S/N. Stars with S/N below the first edge or NaN are in no bin but
//   in "overall".
// - Error columns (centroid and flux) use CLEAN, MATCHED truth stars only, with finite
//   measured values (flux columns additionally need a finite measured flux); the bound
//   medians are taken over the same stars, so the ratios compare like with like.
//   Centroid RMS per axis = sqrt(mean over stars of (dx^2 + dy^2) / 2), dx = measured - truth.
//   Flux ratio = measured / truth flux; flux scatter = 1.4826 MAD(ratio) / median(ratio).
// - False detections: usable measured stars left unmatched, except those within
//   saturated_exclusion_radius_px of a saturated truth star (bleeds and broken cores of
//   saturated stars are not what the false-detection count is about; counted apart).
// - S/N at 50% completeness: truth stars in fine logarithmic S/N bins (snr50_bins_per_decade
//   per decade, edges at 10^(k / bins_per_decade); bins with fewer than snr50_min_stars
//   stars are ignored); completeness is placed at each bin's geometric centre; scanning
//   up in S/N, the first bin with completeness >= 0.5 and the bin before it are
//   interpolated linearly in log S/N. NaN when no bin reaches 0.5, or the first bin
//   already does (the crossing is below the faintest stars given).
// - Cramer-Rao bound: "full" is flat-consistent: per-pixel variance B + F p_i / (gain f),
//   f the truth star's flat_response, because in a flat-fielded frame a pixel's photon
//   variance is its calibrated value / (gain f) (docs/score.md). "literal" is the peers'
//   definition as written, B + F p_i / gain (= full when f = 1). The ratios are reported
//   against both; the ideal and efficiency columns use the full one.
//
// Pure functions (no I/O, no logging), deterministic, thread-safe.
#include <cstdint>
#include <limits>
#include <vector>

#include "psfphot/algo/cramer_rao.hpp"

namespace psfphot {

struct ScoreTruthStar {
  double x = 0, y = 0;      // px, 0-based, pixel centres at integers
  double flux_adu = 0;      // total flux over the plane, calibrated-frame ADU
  double snr = 0;           // F / sqrt(4 pi sigma^2 B)
  bool saturated = false;   // any pixel of the star saturated
  double psf_sigma_px = 0;  // Gaussian sigma of the PSF at the star
  double sky_var_adu2 = 0;  // per-pixel background variance B, ADU^2
  // Flat response f at the star (normalised to max 1; 1 = unvignetted, or unknown). The
  // full bound's photon term uses the effective gain gain * f (see "Cramer-Rao bound").
  double flat_response = 1;
};

struct ScoreMeasuredStar {
  double x = 0, y = 0;  // px, 0-based
  double flux_adu = std::numeric_limits<double>::quiet_NaN();
  std::uint32_t flags = 0;  // star_flag bits (0 when the catalogue has none)
};

struct ScoreFrame {
  int width = 0, height = 0;    // px
  double gain_e_per_adu = 1.0;  // for the Poisson term of the full bound
};

struct ScoreConfig {
  double match_radius_px = 1.5;
  double clean_border_px = 10.0;
  double clean_neighbour_radius_px = 10.0;
  double clean_neighbour_flux_ratio = 0.1;
  // Bin edges on truth S/N; the last bin is open ([1000, inf)).
  std::vector<double> snr_bin_edges = {5,   10,  20,   50,
                                       100, 300, 1000, std::numeric_limits<double>::infinity()};
  double headline_min_snr = 20.0;  // the "headline" row (peers' table): truth S/N >= this
  double saturated_exclusion_radius_px = 1.5;
  std::uint32_t reject_flags = 0;   // measured stars with any of these bits are dropped
  double stamp_radius_sigma = 5.0;  // full bound's stamp half-width, PSF sigmas
  int snr50_bins_per_decade = 8;
  int snr50_min_stars = 10;
};

// One row of the scorecard. Counts are of truth stars unless named otherwise; NaN where
// undefined (no stars).
struct ScoreBin {
  double snr_min = 0, snr_max = std::numeric_limits<double>::infinity();
  long n_true = 0, n_true_clean = 0;
  long n_matched = 0, n_matched_clean = 0;
  long n_matched_flagged = 0;  // matched measured stars with any flag bit set
  double completeness = 0, completeness_clean = 0;
  long n_errors = 0;  // clean matched stars in the error columns
  double centroid_bias_x_px = 0, centroid_bias_y_px = 0;  // median dx, dy
  double centroid_rms_x_px = 0, centroid_rms_y_px = 0;    // sqrt(mean dx^2), sqrt(mean dy^2)
  double centroid_rms_px = 0;                             // per axis, both axes pooled
  double centroid_bound_simple_px = 0, centroid_bound_full_px = 0;  // medians, per axis
  double centroid_rms_over_bound = 0;                               // rms / full bound
  double centroid_bound_literal_px = 0;        // median literal bound (gain without the flat)
  double centroid_rms_over_bound_literal = 0;  // rms / literal bound
  // What an estimator that reaches every star's own full bound would score as
  // centroid_rms_over_bound: sqrt(mean(bound_i^2)) / median(bound_i). Above 1 because a bin's
  // RMS is dominated by its fainter stars while the bound is a median.
  double centroid_ideal_over_bound = 0;
  // Efficiency: sqrt(mean((dx_i^2 + dy_i^2) / (2 bound_i^2))), each star's error over its own
  // full bound (1 = at the bound; independent of how the stars spread within the bin).
  double centroid_rms_over_own_bound = 0;
  long n_flux = 0;  // stars in the flux columns (n_errors with a finite measured flux)
  double flux_ratio_median = 0;
  double flux_scatter = 0;                            // 1.4826 MAD(ratio) / median(ratio)
  double flux_bound_simple = 0, flux_bound_full = 0;  // medians of sigma_F / F
  double flux_scatter_over_bound = 0;                 // scatter / full bound
  double flux_bound_literal = 0;                      // median literal sigma_F / F
  double flux_scatter_over_bound_literal = 0;         // scatter / literal bound
};

struct ScoreReport {
  long n_true = 0;
  long n_measured = 0;           // rows given
  long n_measured_invalid = 0;   // non-finite x or y
  long n_measured_rejected = 0;  // dropped by reject_flags
  long n_matched = 0;
  long n_false = 0;                            // false detections (see the definitions)
  long n_false_excluded_near_saturated = 0;    // unmatched, near a saturated truth star
  double snr_at_50pct_completeness = 0;        // all truth stars
  double snr_at_50pct_completeness_clean = 0;  // clean truth stars
  ScoreBin overall;                            // every truth star
  ScoreBin headline;                           // truth S/N >= headline_min_snr
  std::vector<ScoreBin> bins;
  // Per truth star: index of the matched measured star or -1; clean or not; bounds.
  std::vector<int> truth_match;
  std::vector<bool> truth_clean;
  std::vector<StarBound> truth_bound_simple, truth_bound_full, truth_bound_literal;
};

// One-to-one matching (definition above). Returns, per truth star, the index of its
// measured star or -1. Entries of `usable` false take no part (empty = all usable).
// Grid-bucketed: O((n_truth + n_measured) log n) for a sparse field.
// Throws std::invalid_argument unless radius_px > 0.
std::vector<int> match_one_to_one(const std::vector<ScoreTruthStar>& truth,
                                  const std::vector<ScoreMeasuredStar>& measured, double radius_px,
                                  const std::vector<bool>& usable = {});

// "Clean" per truth star (definition above).
std::vector<bool> classify_clean(const std::vector<ScoreTruthStar>& truth, const ScoreFrame& frame,
                                 const ScoreConfig& cfg);

// S/N at 50% completeness from per-star S/N and detected flags (definition above).
double snr_at_half_completeness(const std::vector<double>& snr, const std::vector<bool>& detected,
                                const ScoreConfig& cfg);

// The whole scorecard. Throws std::invalid_argument for a bad config (radius <= 0,
// bin edges not increasing, fewer than 2 edges), a frame with width/height <= 0 or
// gain <= 0, or a truth star whose flat_response is not a finite number > 0.
ScoreReport score_catalogue(const std::vector<ScoreTruthStar>& truth, const ScoreFrame& frame,
                            const std::vector<ScoreMeasuredStar>& measured,
                            const ScoreConfig& cfg = {});

}  // namespace psfphot
