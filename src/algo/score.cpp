#include "psfphot/algo/score.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "psfphot/algo/stats.hpp"

namespace psfphot {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Points bucketed in square cells, sorted by cell key: a neighbour query visits the 3x3
// cells around the query point, so it finds every point within `cell` of it.
class GridIndex {
 public:
  template <typename Points>
  GridIndex(const Points& pts, const std::vector<bool>& usable, double cell) : cell_(cell) {
    for (std::size_t i = 0; i < pts.size(); ++i) {
      if (!usable.empty() && !usable[i]) continue;
      if (!std::isfinite(pts[i].x) || !std::isfinite(pts[i].y)) continue;
      entries_.emplace_back(key(coord(pts[i].x), coord(pts[i].y)), static_cast<int>(i));
    }
    std::sort(entries_.begin(), entries_.end());
  }

  // Calls f(index) for every stored point in the 3x3 cells around (x, y), in index order
  // within a cell.
  template <typename F>
  void for_each_near(double x, double y, F&& f) const {
    const std::int64_t cx = coord(x), cy = coord(y);
    for (std::int64_t dx = -1; dx <= 1; ++dx) {
      for (std::int64_t dy = -1; dy <= 1; ++dy) {
        const std::int64_t k = key(cx + dx, cy + dy);
        auto it = std::lower_bound(entries_.begin(), entries_.end(), std::make_pair(k, -1));
        for (; it != entries_.end() && it->first == k; ++it) f(it->second);
      }
    }
  }

 private:
  std::int64_t coord(double v) const {
    // Clamped so absurd coordinates cannot overflow the key; they land in far cells.
    return static_cast<std::int64_t>(std::clamp(std::floor(v / cell_), -5e8, 5e8));
  }
  static std::int64_t key(std::int64_t cx, std::int64_t cy) {
    // |c| <= 5e8 + 1 < 2^29, so c + 2^30 fits in 31 bits and the key in 63.
    return (cx + (std::int64_t{1} << 30)) * (std::int64_t{1} << 32) +
           (cy + (std::int64_t{1} << 30));
  }
  double cell_;
  std::vector<std::pair<std::int64_t, int>> entries_;
};

double median_finite(std::vector<double> v) {
  std::erase_if(v, [](double x) { return !std::isfinite(x); });
  return median_inplace(v);
}

double ratio_or_nan(long num, long den) {
  return den > 0 ? static_cast<double>(num) / static_cast<double>(den) : kNaN;
}

struct Context {
  const std::vector<ScoreTruthStar>& truth;
  const std::vector<ScoreMeasuredStar>& measured;
  const std::vector<int>& match;
  const std::vector<bool>& clean;
  const std::vector<StarBound>& simple;
  const std::vector<StarBound>& full;
  const std::vector<StarBound>& literal;
};

template <typename InBin>
ScoreBin make_bin(double lo, double hi, const Context& c, InBin in_bin) {
  ScoreBin b;
  b.snr_min = lo;
  b.snr_max = hi;
  std::vector<double> dxs, dys, cb_simple, cb_full, cb_lit, ratios, fb_simple, fb_full, fb_lit;
  double sum_dx2 = 0, sum_dy2 = 0;  // in truth-index order: deterministic
  double sum_b2 = 0, sum_z2 = 0;    // own-bound sums (centroid_ideal / _over_own_bound)
  for (std::size_t i = 0; i < c.truth.size(); ++i) {
    if (!in_bin(c.truth[i])) continue;
    ++b.n_true;
    if (c.clean[i]) ++b.n_true_clean;
    if (c.match[i] < 0) continue;
    const ScoreMeasuredStar& m = c.measured[static_cast<std::size_t>(c.match[i])];
    ++b.n_matched;
    if (m.flags != 0) ++b.n_matched_flagged;
    if (!c.clean[i]) continue;
    ++b.n_matched_clean;
    const double dx = m.x - c.truth[i].x, dy = m.y - c.truth[i].y;
    ++b.n_errors;
    dxs.push_back(dx);
    dys.push_back(dy);
    sum_dx2 += dx * dx;
    sum_dy2 += dy * dy;
    cb_simple.push_back(c.simple[i].axis_px());
    cb_full.push_back(c.full[i].axis_px());
    cb_lit.push_back(c.literal[i].axis_px());
    const double b_i = c.full[i].axis_px();
    sum_b2 += b_i * b_i;
    sum_z2 += (dx * dx + dy * dy) / (2 * b_i * b_i);
    if (std::isfinite(m.flux_adu) && c.truth[i].flux_adu > 0) {
      ++b.n_flux;
      ratios.push_back(m.flux_adu / c.truth[i].flux_adu);
      fb_simple.push_back(c.simple[i].flux_frac);
      fb_full.push_back(c.full[i].flux_frac);
      fb_lit.push_back(c.literal[i].flux_frac);
    }
  }
  b.completeness = ratio_or_nan(b.n_matched, b.n_true);
  b.completeness_clean = ratio_or_nan(b.n_matched_clean, b.n_true_clean);
  const double n = static_cast<double>(b.n_errors);
  b.centroid_bias_x_px = median_finite(dxs);
  b.centroid_bias_y_px = median_finite(dys);
  b.centroid_rms_x_px = b.n_errors ? std::sqrt(sum_dx2 / n) : kNaN;
  b.centroid_rms_y_px = b.n_errors ? std::sqrt(sum_dy2 / n) : kNaN;
  b.centroid_rms_px = b.n_errors ? std::sqrt((sum_dx2 + sum_dy2) / (2 * n)) : kNaN;
  b.centroid_bound_simple_px = median_finite(cb_simple);
  b.centroid_bound_full_px = median_finite(cb_full);
  b.centroid_rms_over_bound = b.centroid_rms_px / b.centroid_bound_full_px;
  b.centroid_bound_literal_px = median_finite(cb_lit);
  b.centroid_rms_over_bound_literal = b.centroid_rms_px / b.centroid_bound_literal_px;
  b.centroid_ideal_over_bound =
      b.n_errors ? std::sqrt(sum_b2 / n) / b.centroid_bound_full_px : kNaN;
  b.centroid_rms_over_own_bound = b.n_errors ? std::sqrt(sum_z2 / n) : kNaN;
  b.flux_ratio_median = median_finite(ratios);
  std::vector<double> scratch = ratios;
  b.flux_scatter = mad_std_inplace(scratch) / b.flux_ratio_median;
  b.flux_bound_simple = median_finite(fb_simple);
  b.flux_bound_full = median_finite(fb_full);
  b.flux_scatter_over_bound = b.flux_scatter / b.flux_bound_full;
  b.flux_bound_literal = median_finite(fb_lit);
  b.flux_scatter_over_bound_literal = b.flux_scatter / b.flux_bound_literal;
  return b;
}

void validate(const std::vector<ScoreTruthStar>& truth, const ScoreFrame& frame,
              const ScoreConfig& cfg) {
  for (std::size_t i = 0; i < truth.size(); ++i)
    if (!(truth[i].flat_response > 0) || !std::isfinite(truth[i].flat_response))
      throw std::invalid_argument("score: truth star " + std::to_string(i) +
                                  ": flat_response must be a finite number > 0");
  if (!(cfg.match_radius_px > 0)) throw std::invalid_argument("score: match radius must be > 0 px");
  if (!(frame.width > 0 && frame.height > 0))
    throw std::invalid_argument("score: frame width and height must be > 0");
  if (!(frame.gain_e_per_adu > 0) || !std::isfinite(frame.gain_e_per_adu))
    throw std::invalid_argument("score: gain must be a finite number > 0 e-/ADU");
  if (cfg.snr_bin_edges.size() < 2)
    throw std::invalid_argument("score: at least two S/N bin edges are needed");
  for (std::size_t i = 1; i < cfg.snr_bin_edges.size(); ++i)
    if (!(cfg.snr_bin_edges[i] > cfg.snr_bin_edges[i - 1]))
      throw std::invalid_argument("score: S/N bin edges must increase");
  if (cfg.snr50_bins_per_decade < 1)
    throw std::invalid_argument("score: snr50_bins_per_decade must be >= 1");
}

}  // namespace

std::vector<int> match_one_to_one(const std::vector<ScoreTruthStar>& truth,
                                  const std::vector<ScoreMeasuredStar>& measured, double radius_px,
                                  const std::vector<bool>& usable) {
  if (!(radius_px > 0)) throw std::invalid_argument("match_one_to_one: radius must be > 0 px");
  const GridIndex grid(measured, usable, radius_px);
  const double r2 = radius_px * radius_px;
  std::vector<std::tuple<double, int, int>> pairs;  // (d^2, truth, measured)
  for (std::size_t t = 0; t < truth.size(); ++t) {
    const double tx = truth[t].x, ty = truth[t].y;
    if (!std::isfinite(tx) || !std::isfinite(ty)) continue;
    grid.for_each_near(tx, ty, [&](int m) {
      const double dx = measured[static_cast<std::size_t>(m)].x - tx;
      const double dy = measured[static_cast<std::size_t>(m)].y - ty;
      const double d2 = dx * dx + dy * dy;
      if (d2 <= r2) pairs.emplace_back(d2, static_cast<int>(t), m);
    });
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<int> truth_to_meas(truth.size(), -1);
  std::vector<bool> taken(measured.size(), false);
  for (const auto& [d2, t, m] : pairs) {
    if (truth_to_meas[static_cast<std::size_t>(t)] >= 0 || taken[static_cast<std::size_t>(m)])
      continue;
    truth_to_meas[static_cast<std::size_t>(t)] = m;
    taken[static_cast<std::size_t>(m)] = true;
  }
  return truth_to_meas;
}

std::vector<bool> classify_clean(const std::vector<ScoreTruthStar>& truth, const ScoreFrame& frame,
                                 const ScoreConfig& cfg) {
  std::vector<bool> clean(truth.size(), false);
  const double border = cfg.clean_border_px;
  const double rn = cfg.clean_neighbour_radius_px;
  const double rn2 = rn * rn;
  const GridIndex grid(truth, {}, rn > 0 ? rn : 1.0);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const ScoreTruthStar& s = truth[i];
    if (s.saturated || !std::isfinite(s.x) || !std::isfinite(s.y)) continue;
    if (s.x < border || s.y < border || s.x > frame.width - 1 - border ||
        s.y > frame.height - 1 - border)
      continue;
    bool crowded = false;
    if (rn > 0) {
      grid.for_each_near(s.x, s.y, [&](int j) {
        if (static_cast<std::size_t>(j) == i) return;
        const ScoreTruthStar& o = truth[static_cast<std::size_t>(j)];
        const double dx = o.x - s.x, dy = o.y - s.y;
        if (dx * dx + dy * dy < rn2 && o.flux_adu > cfg.clean_neighbour_flux_ratio * s.flux_adu)
          crowded = true;
      });
    }
    clean[i] = !crowded;
  }
  return clean;
}

double snr_at_half_completeness(const std::vector<double>& snr, const std::vector<bool>& detected,
                                const ScoreConfig& cfg) {
  const double bpd = cfg.snr50_bins_per_decade;
  std::map<long, std::pair<long, long>> bins;  // log bin -> (n, n detected)
  for (std::size_t i = 0; i < snr.size(); ++i) {
    if (!(snr[i] > 0) || !std::isfinite(snr[i])) continue;
    auto& b = bins[static_cast<long>(std::floor(std::log10(snr[i]) * bpd))];
    ++b.first;
    if (detected[i]) ++b.second;
  }
  bool have_prev = false;
  double prev_log = 0, prev_c = 0;
  for (const auto& [k, counts] : bins) {
    if (counts.first < cfg.snr50_min_stars) continue;
    const double c = static_cast<double>(counts.second) / static_cast<double>(counts.first);
    const double log_centre = (static_cast<double>(k) + 0.5) / bpd;
    if (c >= 0.5) {
      if (!have_prev) return kNaN;
      return std::pow(10.0, prev_log + (0.5 - prev_c) / (c - prev_c) * (log_centre - prev_log));
    }
    have_prev = true;
    prev_log = log_centre;
    prev_c = c;
  }
  return kNaN;
}

ScoreReport score_catalogue(const std::vector<ScoreTruthStar>& truth, const ScoreFrame& frame,
                            const std::vector<ScoreMeasuredStar>& measured,
                            const ScoreConfig& cfg) {
  validate(truth, frame, cfg);
  ScoreReport r;
  r.n_true = static_cast<long>(truth.size());
  r.n_measured = static_cast<long>(measured.size());
  std::vector<bool> usable(measured.size(), true);
  for (std::size_t i = 0; i < measured.size(); ++i) {
    if (!std::isfinite(measured[i].x) || !std::isfinite(measured[i].y)) {
      usable[i] = false;
      ++r.n_measured_invalid;
    } else if (measured[i].flags & cfg.reject_flags) {
      usable[i] = false;
      ++r.n_measured_rejected;
    }
  }
  r.truth_match = match_one_to_one(truth, measured, cfg.match_radius_px, usable);
  r.truth_clean = classify_clean(truth, frame, cfg);
  r.truth_bound_simple.resize(truth.size());
  r.truth_bound_full.resize(truth.size());
  r.truth_bound_literal.resize(truth.size());
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const ScoreTruthStar& s = truth[i];
    r.truth_bound_simple[i] = simple_bound(s.snr, s.psf_sigma_px);
    // A calibrated pixel of response f holds value * gain * f electrons: the star's photon
    // variance there is F p_i / (gain f) in calibrated ADU^2 (docs/score.md).
    r.truth_bound_full[i] =
        full_bound(s.flux_adu, s.x, s.y, s.psf_sigma_px, s.sky_var_adu2,
                   frame.gain_e_per_adu * s.flat_response, cfg.stamp_radius_sigma);
    r.truth_bound_literal[i] =
        s.flat_response == 1.0 ? r.truth_bound_full[i]
                               : full_bound(s.flux_adu, s.x, s.y, s.psf_sigma_px, s.sky_var_adu2,
                                            frame.gain_e_per_adu, cfg.stamp_radius_sigma);
  }

  std::vector<bool> matched_meas(measured.size(), false);
  for (int m : r.truth_match) {
    if (m < 0) continue;
    matched_meas[static_cast<std::size_t>(m)] = true;
    ++r.n_matched;
  }
  std::vector<bool> saturated(truth.size());
  for (std::size_t i = 0; i < truth.size(); ++i) saturated[i] = truth[i].saturated;
  const double rs = cfg.saturated_exclusion_radius_px;
  const GridIndex sat_grid(truth, saturated, rs > 0 ? rs : 1.0);
  for (std::size_t m = 0; m < measured.size(); ++m) {
    if (!usable[m] || matched_meas[m]) continue;
    bool near_sat = false;
    if (rs > 0) {
      sat_grid.for_each_near(measured[m].x, measured[m].y, [&](int t) {
        const double dx = truth[static_cast<std::size_t>(t)].x - measured[m].x;
        const double dy = truth[static_cast<std::size_t>(t)].y - measured[m].y;
        if (dx * dx + dy * dy <= rs * rs) near_sat = true;
      });
    }
    ++(near_sat ? r.n_false_excluded_near_saturated : r.n_false);
  }

  std::vector<double> snr(truth.size());
  std::vector<bool> detected(truth.size()), detected_clean;
  std::vector<double> snr_clean;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    snr[i] = truth[i].snr;
    detected[i] = r.truth_match[i] >= 0;
    if (r.truth_clean[i]) {
      snr_clean.push_back(snr[i]);
      detected_clean.push_back(detected[i]);
    }
  }
  r.snr_at_50pct_completeness = snr_at_half_completeness(snr, detected, cfg);
  r.snr_at_50pct_completeness_clean = snr_at_half_completeness(snr_clean, detected_clean, cfg);

  const Context ctx{truth,
                    measured,
                    r.truth_match,
                    r.truth_clean,
                    r.truth_bound_simple,
                    r.truth_bound_full,
                    r.truth_bound_literal};
  const double inf = std::numeric_limits<double>::infinity();
  r.overall = make_bin(-inf, inf, ctx, [](const ScoreTruthStar&) { return true; });
  const double hmin = cfg.headline_min_snr;
  r.headline = make_bin(hmin, inf, ctx, [hmin](const ScoreTruthStar& s) { return s.snr >= hmin; });
  for (std::size_t k = 0; k + 1 < cfg.snr_bin_edges.size(); ++k) {
    const double lo = cfg.snr_bin_edges[k], hi = cfg.snr_bin_edges[k + 1];
    r.bins.push_back(make_bin(
        lo, hi, ctx, [lo, hi](const ScoreTruthStar& s) { return s.snr >= lo && s.snr < hi; }));
  }
  return r;
}

}  // namespace psfphot
