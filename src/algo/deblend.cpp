// The two-star split test and the close-pair refit of algo/deblend.hpp (try_split,
// refit_pair); the companion search is in companion.cpp, their shared joint fit in
// joint_fit.hpp.
#include "psfphot/algo/deblend.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "joint_fit.hpp"
#include "psf_stamp.hpp"
#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot {
namespace {

using detail::Component;
using detail::component_fit;
using detail::fit_joint;
using detail::JointFit;
using detail::Stamp;

}  // namespace

SplitResult try_split(ImageView<const float> image, const FloatPlane& rms,
                      ImageView<const MaskBits> mask, double x, double y, double sigma_px,
                      const PixelGain& gain, const PhotometryConfig& cfg, const SplitConfig& sc,
                      std::span<const NeighbourModel> neighbours) {
  SplitResult res;
  if (!(sc.min_dchi2 > 0) || !std::isfinite(x) || !std::isfinite(y) || !(sigma_px > 0)) return res;
  // One sigma more than a single star's stamp: the components sit up to ~1.5 sigma out.
  PhotometryConfig wide = cfg;
  wide.stamp_radius_sigma = cfg.stamp_radius_sigma + 1.0;
  // The stamp in per-thread storage, as measure_psf_flux and try_companion keep theirs (every
  // field is set again by the cut).
  thread_local Stamp split_stamp;
  Stamp& s = split_stamp;
  detail::cut_stamp_into(s, image, rms, mask, gain, x, y, sigma_px, wide);
  if (s.flags & star_flag::kSaturated) return res;
  detail::subtract_neighbours(s, neighbours, cfg);

  // The single star, refitted on this stamp so both chi^2 are over the same pixels.
  thread_local Profile1D px, py;  // per thread; written whole by each profiles() call
  detail::profiles(s, x, y, sigma_px, cfg.integrate_pixels, false, px, py);
  double num = 0, den = 0;
  for (int j = 0; j < s.ny; ++j)
    for (int i = 0; i < s.nx; ++i) {
      const std::size_t q = static_cast<std::size_t>(j) * s.nx + i;
      if (!s.use[q]) continue;
      const double p = px.value[i] * py.value[j];
      num += s.data[q] * p;
      den += p * p;
    }
  if (!(den > 0) || !(num > 0)) return res;
  std::array<Component, 1> one{{{num / den, x, y}}};
  auto never = [](const auto&, int) { return false; };
  const JointFit<1> f1 = fit_joint<1>(s, one, sigma_px, cfg, x, y, 2.0, never);
  if (!f1.converged) return res;

  // The axis of the pair: a pair fitted as one leaves positive residual lobes along it,
  // i.e. a residual quadrupole Q = sum r (dx^2 - dy^2), U = sum r 2 dx dy at angle
  // atan2(U, Q) / 2.
  detail::profiles(s, one[0].x, one[0].y, sigma_px, cfg.integrate_pixels, false, px, py);
  double Q = 0, U = 0;
  const double r2max = 9.0 * sigma_px * sigma_px;
  for (int j = 0; j < s.ny; ++j)
    for (int i = 0; i < s.nx; ++i) {
      const std::size_t q = static_cast<std::size_t>(j) * s.nx + i;
      if (!s.use[q]) continue;
      const double dx = s.x0 + i - one[0].x, dy = s.y0 + j - one[0].y;
      if (dx * dx + dy * dy > r2max) continue;
      const double r = s.data[q] - one[0].F * px.value[i] * py.value[j];
      Q += r * (dx * dx - dy * dy);
      U += r * 2.0 * dx * dy;
    }
  const double theta = 0.5 * std::atan2(U, Q);
  const double h = 0.75 * sigma_px, cx = h * std::cos(theta), cy = h * std::sin(theta);
  std::array<Component, 2> two{{{0.5 * one[0].F, one[0].x + cx, one[0].y + cy},
                                {0.5 * one[0].F, one[0].x - cx, one[0].y - cy}}};
  // On a single star the two components collapse onto each other or one fades away; after
  // a few iterations such a fit cannot end in an accepted split (the thresholds below with a
  // margin of 2), so it stops there instead of running out its iterations.
  auto hopeless = [&](const std::array<Component, 2>& c, int it) {
    if (it < 4) return false;
    const double sep = std::hypot(c[0].x - c[1].x, c[0].y - c[1].y);
    const double ratio = std::min(c[0].F, c[1].F) / std::max(c[0].F, c[1].F);
    return sep < 0.5 * sc.min_sep_sigma * sigma_px || ratio < 0.5 * sc.min_flux_ratio;
  };
  const JointFit<2> f2 =
      fit_joint<2>(s, two, sigma_px, cfg, one[0].x, one[0].y, 3.0 * sigma_px, hopeless);
  if (!f2.converged) return res;
  res.dchi2 = f1.chi2 - f2.chi2;
  const double sep = std::hypot(two[0].x - two[1].x, two[0].y - two[1].y);
  const double ratio = std::min(two[0].F, two[1].F) / std::max(two[0].F, two[1].F);
  if (res.dchi2 < sc.min_dchi2 || sep < sc.min_sep_sigma * sigma_px || ratio < sc.min_flux_ratio)
    return res;
  const int ia = two[0].F >= two[1].F ? 0 : 1;
  res.split = true;
  res.a = component_fit(two[ia], f2, ia, sigma_px, s.flags);
  res.b = component_fit(two[1 - ia], f2, 1 - ia, sigma_px, s.flags);
  return res;
}

std::array<PsfFit, 2> refit_pair(ImageView<const float> image, const FloatPlane& rms,
                                 ImageView<const MaskBits> mask, const PsfFit& a, const PsfFit& b,
                                 double sigma_px, const PixelGain& gain,
                                 const PhotometryConfig& cfg,
                                 std::span<const NeighbourModel> neighbours) {
  std::array<PsfFit, 2> out{a, b};
  out[0].converged = out[1].converged = false;
  const double mx = 0.5 * (a.x + b.x), my = 0.5 * (a.y + b.y);
  if (!std::isfinite(mx) || !std::isfinite(my) || !(a.flux > 0) || !(b.flux > 0)) return out;
  // The stamp around the pair's middle reaches stamp_radius_sigma beyond either star.
  PhotometryConfig wide = cfg;
  wide.stamp_radius_sigma =
      cfg.stamp_radius_sigma + 0.5 * std::hypot(a.x - b.x, a.y - b.y) / sigma_px;
  thread_local Stamp pair_stamp;  // per thread, as try_split's
  Stamp& s = pair_stamp;
  detail::cut_stamp_into(s, image, rms, mask, gain, mx, my, sigma_px, wide);
  if (s.flags & star_flag::kSaturated) return out;
  detail::subtract_neighbours(s, neighbours, cfg);
  std::array<Component, 2> two{{{a.flux, a.x, a.y}, {b.flux, b.x, b.y}}};
  const JointFit<2> f = fit_joint<2>(s, two, sigma_px, cfg, mx, my, 3.0 * sigma_px,
                                     [](const auto&, int) { return false; });
  if (!f.converged) return out;
  out[0] = component_fit(two[0], f, 0, sigma_px, s.flags);
  out[1] = component_fit(two[1], f, 1, sigma_px, s.flags);
  return out;
}

}  // namespace psfphot
