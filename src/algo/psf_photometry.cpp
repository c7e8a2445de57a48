#include "psfphot/algo/psf_photometry.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "psf_stamp.hpp"
#include "psfphot/algo/centroid.hpp"
#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/core/simd.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using detail::cut_stamp_into;
using detail::normal_equations_xy;
using detail::profiles;
using detail::Stamp;
using detail::subtract_neighbours;

// The profiles of the last model position asked for on one stamp. A fit's first iteration is at
// the position its start amplitude was measured at, and the outlier clipping after a fit (and
// the refit's start amplitude) at the position its covariance was computed at: their erf calls
// are not made again (a third of a fit's erf calls; the values are the same numbers). The
// pixel-integrated profiles of a new position are moved there from the last ones' edge values
// (integrated_profile_tracked: no erf or exp calls for a fit's later iterations).
struct ProfileCache {
  Profile1D px, py;
  ProfileEdges ex, ey;
  double x = kNaN, y = kNaN, sigma = kNaN;  // NaN: empty (never equal)
  bool derivs = false;
  bool width_derivs = true;  // false: no d_s (integrated profiles; a fit of F, x, y only)
  // Working space of the sums (amplitude_sums, normal_equations_xy): overwritten by each.
  std::vector<double> scratch;
  // Empty again, as a new cache, for another stamp; the vectors keep their storage.
  void reset() {
    x = y = sigma = kNaN;
    derivs = false;
    ex.n = ey.n = -1;
    ex.has_g = ey.has_g = false;
  }
  void at(const Stamp& s, double xx, double yy, double sg, bool integrate, bool want_derivs) {
    const bool same = xx == x && yy == y && sg == sigma;
    if (same && (derivs || !want_derivs)) return;
    if (integrate) {
      integrated_profile_tracked(xx, sg, s.x0, s.nx, want_derivs, px, ex, width_derivs);
      integrated_profile_tracked(yy, sg, s.y0, s.ny, want_derivs, py, ey, width_derivs);
    } else {
      profiles(s, xx, yy, sg, integrate, want_derivs, px, py);
    }
    x = xx;
    y = yy;
    sigma = sg;
    derivs = want_derivs;
  }
};

// Fixed-position amplitude: f = sum(w d p) / sum(w p^2), w from sky (+ star) variance.
PsfFit amplitude(const Stamp& s, double x, double y, double sigma, const PhotometryConfig& cfg,
                 ProfileCache& pc) {
  PsfFit f;
  f.x = x;
  f.y = y;
  f.sigma = sigma;
  f.x_err = f.y_err = kNaN;
  pc.at(s, x, y, sigma, cfg.integrate_pixels, false);
  const Profile1D &px = pc.px, &py = pc.py;
  double flux = 0;
  // Two passes with star noise: the weights (weighted) and the reported variance (both
  // modes: unweighted, the star's Poisson noise still enters flux_err) need a flux estimate.
  const int passes = s.any_gain ? 2 : 1;
  double num = 0, den = 0, var_num = 0;
  for (int pass = 0; pass < passes; ++pass) {
    // Only the last pass's variance sum is reported (the first pass's was thrown away).
    detail::amplitude_sums(s, px, py, pass > 0 ? flux : 0.0, cfg.weighted, pc.scratch, num, den,
                           var_num, pass + 1 == passes);
    flux = den > 0 ? num / den : kNaN;
  }
  f.flux = flux;
  f.flux_err = den > 0 ? std::sqrt(var_num) / den : kNaN;
  if (!(den > 0)) f.flags |= star_flag::kFitFailed;
  return f;
}

// Gauss-Newton on (F, x, y[, sigma]) with model-based inverse-variance weights.
PsfFit gauss_newton_once(const Stamp& s, double x0, double y0, double sigma0,
                         const PhotometryConfig& cfg, bool fit_sigma, ProfileCache& pc) {
  const int np = fit_sigma ? 4 : 3;
  PsfFit start = amplitude(s, x0, y0, sigma0, cfg, pc);
  double F = start.flux, x = x0, y = y0, sg = sigma0;
  PsfFit out = start;
  if (!std::isfinite(F) || F <= 0) {
    out.flags |= star_flag::kFitFailed;
    return out;
  }
  const Profile1D &px = pc.px, &py = pc.py;
  std::vector<double>& fx = pc.scratch;
  Eigen::Matrix4d A;
  Eigen::Vector4d b;
  bool converged = false;
  int it = 0;
  for (; it < cfg.max_iter; ++it) {
    pc.at(s, x, y, sg, cfg.integrate_pixels, true);
    // The width fit's sums through the same vectorised kernels as the (F, x, y) fit's (the
    // Eigen loop per pixel was most of the PSF-width step).
    if (fit_sigma) {
      detail::normal_equations_xys(s, px, py, F, cfg.weighted, false, fx, A, b);
    } else {
      normal_equations_xy(s, px, py, F, cfg.weighted, false, fx, A, b);
    }
    Eigen::LDLT<Eigen::Matrix4d> ldlt(A);
    if (ldlt.info() != Eigen::Success || !ldlt.isPositive()) break;
    Eigen::Vector4d d = ldlt.solve(b);
    // Damp large position steps: far from the optimum the quadratic model misleads.
    const double step = std::hypot(d(1), d(2));
    const double scale = step > 0.5 ? 0.5 / step : 1.0;
    F += d(0) * scale;
    x += d(1) * scale;
    y += d(2) * scale;
    if (fit_sigma) sg = std::clamp(sg + d(3) * scale, 0.3, 20.0);
    if (!std::isfinite(F) || std::abs(x - x0) > 2.0 || std::abs(y - y0) > 2.0) break;
    if (step * scale < cfg.tolerance_px && (!fit_sigma || std::abs(d(3)) < cfg.tolerance_px)) {
      converged = true;
      ++it;
      break;
    }
  }
  if (!converged) {
    out.flags |= star_flag::kFitFailed;
    out.iterations = it;
    return out;
  }
  // Covariance at the solution: inverse of the Fisher matrix J^T W J.
  pc.at(s, x, y, sg, cfg.integrate_pixels, true);
  if (fit_sigma) {
    detail::normal_equations_xys(s, px, py, F, true, true, fx, A, b);
  } else {
    normal_equations_xy(s, px, py, F, true, true, fx, A, b);
  }
  Eigen::Matrix4d cov = A.inverse();
  out.flux = F;
  out.x = x;
  out.y = y;
  out.sigma = sg;
  out.flux_err = std::sqrt(std::max(cov(0, 0), 0.0));
  out.x_err = std::sqrt(std::max(cov(1, 1), 0.0));
  out.y_err = std::sqrt(std::max(cov(2, 2), 0.0));
  out.sigma_err = fit_sigma ? std::sqrt(std::max(cov(3, 3), 0.0)) : kNaN;
  out.converged = true;
  out.iterations = it;
  (void)np;
  return out;
}

// clip_outliers' test over a stamp row, without its sqrt (which GCC does not vectorise while
// it may set errno): per pixel 0 where the test |d - m| > clip sqrt(var) certainly fails (or
// the pixel is not used), 1 where it certainly holds, 2 where the squares are too close to
// tell, for the exact test. m and var are the test's own expressions. In exact arithmetic the
// test is (d - m)^2 > clip^2 var; the computed squares are within a few units of roundoff
// (~1e-16) of those and the computed test's sqrt and product within as much of clip sqrt(var),
// so outside a relative margin of 1e-12 the squares decide as the test would (NaN: 2).
PSFPHOT_VECTOR_CLONES void clip_row(int nx, const double* __restrict ex, double ey, double F,
                                    double clip2, const double* __restrict on,
                                    const double* __restrict data, const double* __restrict sky,
                                    const double* __restrict gain, double* __restrict code) {
  for (int i = 0; i < nx; ++i) {
    const double m = F * ex[i] * ey;
    double var = sky[i];
    var += std::max(m, 0.0) / gain[i];
    const double r = data[i] - m;
    const double r2 = r * r, lim = clip2 * var;
    const double below = r2 < lim * (1 - 1e-12) ? 1.0 : 0.0;
    const double above = r2 > lim * (1 + 1e-12) ? 1.0 : 0.0;
    code[i] = (2.0 - 2.0 * below - above) * on[i];  // (a form GCC vectorises)
  }
}

// Drops stamp pixels whose residual against the model F p(x, y; sigma) exceeds
// clip_sigma times the pixel's expected noise, only beyond `min_r_px` of (x, y); returns
// how many were dropped.
int clip_outliers(Stamp& s, double F, double x, double y, double sigma, double min_r_px,
                  const PhotometryConfig& cfg, ProfileCache& pc) {
  pc.at(s, x, y, sigma, cfg.integrate_pixels, false);
  const Profile1D &px = pc.px, &py = pc.py;
  int dropped = 0;
  // clip_row's squares keep their 1e-12 margin only while clip_sigma^2 is a normal double
  // (clip_sigma >= ~1.5e-154, which the config's range [0, 1000] does not exclude) and
  // finite: outside that the loop below decides, as it always did (review of the merge).
  const double clip2 = cfg.clip_sigma * cfg.clip_sigma;
  if (!(min_r_px > 0) && cfg.clip_sigma > 0 && clip2 >= DBL_MIN && std::isfinite(clip2)) {
    // The loop below without the radius test, a row at a time through clip_row (whose squares
    // need clip_sigma > 0, as gauss_newton has it).
    std::vector<double>& code = pc.scratch;
    code.resize(static_cast<std::size_t>(s.nx));
    for (int j = 0; j < s.ny; ++j) {
      const std::size_t row = static_cast<std::size_t>(j) * s.nx;
      clip_row(s.nx, px.value.data(), py.value[j], F, clip2, s.on.data() + row, s.data.data() + row,
               s.sky_var.data() + row, s.gain.data() + row, code.data());
      for (int i = 0; i < s.nx; ++i) {
        if (code[i] == 0.0) continue;
        const std::size_t k = row + i;
        if (code[i] != 1.0) {  // too close for the squares: the test itself
          const double m = F * px.value[i] * py.value[j];
          double var = s.sky_var[k];
          var += std::max(m, 0.0) / s.gain[k];
          if (!(std::abs(s.data[k] - m) > cfg.clip_sigma * std::sqrt(var))) continue;
        }
        s.use[k] = 0;
        s.on[k] = 0.0;
        ++dropped;
      }
    }
    return dropped;
  }
  for (int j = 0; j < s.ny; ++j)
    for (int i = 0; i < s.nx; ++i) {
      const std::size_t k = static_cast<std::size_t>(j) * s.nx + i;
      if (!s.use[k]) continue;
      if (min_r_px > 0 && std::hypot(s.x0 + i - x, s.y0 + j - y) <= min_r_px) continue;
      const double m = F * px.value[i] * py.value[j];
      double var = s.sky_var[k];
      var += std::max(m, 0.0) / s.gain[k];
      if (std::abs(s.data[k] - m) > cfg.clip_sigma * std::sqrt(var)) {
        s.use[k] = 0;
        s.on[k] = 0.0;
        ++dropped;
      }
    }
  return dropped;
}

// Pixels whose residual exceeds clip_sigma times its expected noise (an unstable hot
// pixel, a cosmic-ray hit, an undetected neighbour's core) are dropped and the fit
// repeated: one bad pixel must not pull a bright star's position by many sigmas.
PsfFit gauss_newton(Stamp& s, double x0, double y0, double sigma0, const PhotometryConfig& cfg,
                    bool fit_sigma, ProfileCache& pc) {
  PsfFit f = gauss_newton_once(s, x0, y0, sigma0, cfg, fit_sigma, pc);
  if (!(cfg.clip_sigma > 0)) return f;
  if (!f.converged) {
    // A bright outlier in the wings (a hot pixel 5 px from an S/N 300 star) can drag the
    // fit around without letting it settle, so the clipping below, which needs a
    // converged model, never runs. Judge the wings against the model at the start
    // instead: beyond 1.5 sigma a start off by a few tenths of a pixel leaves residuals
    // of a few sigma at most, well under clip_sigma, so only true outliers go.
    const PsfFit a = amplitude(s, x0, y0, sigma0, cfg, pc);
    if (std::isfinite(a.flux) && a.flux > 0 &&
        clip_outliers(s, a.flux, x0, y0, sigma0, 1.5 * sigma0, cfg, pc) > 0) {
      PsfFit g = gauss_newton_once(s, x0, y0, sigma0, cfg, fit_sigma, pc);
      if (!g.converged) return f;
      g.flags |= star_flag::kClippedPixel;
      f = g;
    }
  }
  for (int round = 0; round < 2 && f.converged; ++round) {
    if (!clip_outliers(s, f.flux, f.x, f.y, f.sigma, 0.0, cfg, pc)) break;
    PsfFit g = gauss_newton_once(s, f.x, f.y, f.sigma, cfg, fit_sigma, pc);
    if (!g.converged) break;
    g.flags |= f.flags | star_flag::kClippedPixel;
    f = g;
  }
  return f;
}

// What measure_psf_flux works in, one per thread: the stamp, its pixel selection before
// clipping and the profile cache were ~20 allocations per fit (the stamp's vectors, the
// profiles' and edges' vectors, the sums' scratch), made and freed for each of the ~6000 fits
// of a 4096^2 frame. Every field is set again before it is read (cut_stamp_into,
// ProfileCache::reset), so a fit's numbers do not depend on the fits before it.
struct FitWorkspace {
  Stamp s;
  detail::StampVector<char> use0;
  ProfileCache pc;
};

}  // namespace

PsfFit measure_psf_flux(ImageView<const float> image, const FloatPlane& rms,
                        ImageView<const MaskBits> mask, double x0, double y0, double sigma_px,
                        const PixelGain& gain, const PhotometryConfig& cfg,
                        std::span<const NeighbourModel> neighbours) {
  if (!std::isfinite(x0) || !std::isfinite(y0) || !(sigma_px > 0)) {
    PsfFit f;
    f.flux = f.flux_err = f.x = f.y = f.x_err = f.y_err = kNaN;
    f.flags = star_flag::kFitFailed;
    return f;
  }
  thread_local FitWorkspace ws;
  Stamp& s = ws.s;
  cut_stamp_into(s, image, rms, mask, gain, x0, y0, sigma_px, cfg);
  if (s.flags & star_flag::kSaturated) {
    // Only the wings measure a saturated star: the stamp reaches stamp_radius_sigma beyond
    // the clipped core, not from the centre (a 2.5e7 ADU star's core is ~5 px in radius,
    // which a 3.5 sigma = 7 px stamp would leave a 2 px ring of usable pixels around).
    const RegionCentre rc =
        masked_region_centre(mask, static_cast<int>(std::lround(x0)),
                             static_cast<int>(std::lround(y0)), mask::kSaturated);
    if (rc.n_pixels > 0) {
      PhotometryConfig wide = cfg;
      const double reach = std::hypot(rc.x - x0, rc.y - y0) + rc.radius_px;
      wide.stamp_radius_sigma = cfg.stamp_radius_sigma + reach / sigma_px;
      cut_stamp_into(s, image, rms, mask, gain, x0, y0, sigma_px, wide);
    }
  }
  subtract_neighbours(s, neighbours, cfg);
  ws.use0 = s.use;
  const detail::StampVector<char>& use0 = ws.use0;
  ProfileCache& pc = ws.pc;  // for this stamp (its final cut)
  pc.reset();
  pc.width_derivs = false;
  PsfFit f;
  if (cfg.method == PhotometryMethod::kLab) {
    f = amplitude(s, x0, y0, sigma_px, cfg, pc);
  } else {
    f = gauss_newton(s, x0, y0, sigma_px, cfg, false, pc);
    if (!f.converged) {
      // Keep the measurement at the centroid, flagged.
      s.use = use0;
      for (std::size_t k = 0; k < use0.size(); ++k) s.on[k] = use0[k] ? 1.0 : 0.0;
      PsfFit a = amplitude(s, x0, y0, sigma_px, cfg, pc);
      a.flags |= f.flags | star_flag::kFitFailed;
      f = a;
    }
  }
  f.flags |= s.flags;
  if (std::isfinite(f.flux) && f.flux <= 0) f.flags |= star_flag::kNegativeFlux;
  return f;
}

PsfFit fit_psf_sigma(ImageView<const float> image, const FloatPlane& rms,
                     ImageView<const MaskBits> mask, double x0, double y0, double sigma0,
                     const PixelGain& gain, const PhotometryConfig& cfg) {
  // A generous stamp: the width is constrained by the wings.
  PhotometryConfig c = cfg;
  c.stamp_radius_sigma = std::max(cfg.stamp_radius_sigma, 4.0);
  // The stamp and profiles in per-thread storage, as measure_psf_flux keeps them (a fresh
  // stamp and cache were a dozen allocations per fit); every field set again before it is read.
  thread_local FitWorkspace ws;
  Stamp& s = ws.s;
  cut_stamp_into(s, image, rms, mask, gain, x0, y0, sigma0, c);
  ProfileCache& pc = ws.pc;
  pc.reset();
  pc.width_derivs = true;
  PsfFit f = gauss_newton(s, x0, y0, sigma0, c, true, pc);
  f.flags |= s.flags;
  return f;
}

}  // namespace psfphot
