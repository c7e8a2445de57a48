#include "psfphot/pipeline/blends.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include <spdlog/spdlog.h>

#include "model_index.hpp"
#include "psfphot/algo/deblend.hpp"
#include "psfphot/algo/smooth.hpp"
#include "psfphot/algo/stats.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot::pipeline {
namespace {

using detail::ModelIndex;

// Split test candidates: S/N range (fainter pairs cannot reach the chi^2 threshold;
// brighter stars are where a PSF mismatch, not a companion, widens the moments) and how much
// larger than the frame's median star the trace of the second moments (wx^2 + wy^2) must be.
constexpr double kSplitMinSnr = 10.0, kSplitMaxSnr = 300.0, kSplitWidthFactor = 1.15;
// Stars at least this bright are searched for a faint companion (try_companion): below, a
// companion that shifts them by a bound is itself below the detection limit.
constexpr double kCompanionMinSnr = 50.0;
// Stars closer than this many PSF sigmas are fitted jointly as a pair.
constexpr double kPairSepSigma = 2.5;

}  // namespace

std::vector<char> mark_extended(const FrameContext& c, const std::vector<PsfFit>& fits,
                                const std::vector<double>& sig) {
  const auto& pc = c.cfg.photometry;
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(fits.size());
  std::vector<char> extended(static_cast<std::size_t>(n), 0);
  if (!(pc.extended_sigma_ratio > 0)) return extended;
  // Only sources whose second moments are already 10% wider than the frame's typical star
  // get the free-width fit (most stars are stars).
  std::vector<double> widths;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const Star& s = c.stars[i];
    if (fits[i].converged && fits[i].flux_err > 0 && fits[i].flux / fits[i].flux_err >= 20 &&
        std::isfinite(s.width_x) && std::isfinite(s.width_y) && s.width_x > 0 && s.width_y > 0)
      widths.push_back(std::sqrt(s.width_x * s.width_y));
  }
  if (widths.empty()) return extended;
  const double typical = median_inplace(widths);
  const auto img = c.frame.pixels.cview();
  const auto msk = c.frame.mask.cview();
  const auto rms = c.background.rms_plane();
  const PixelGain gain = c.pixel_gain();
#pragma omp parallel for schedule(dynamic, 8)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const Star& s = c.stars[i];
    const PsfFit& f = fits[i];
    if (!f.converged || !(f.flux_err > 0) || f.flux / f.flux_err < 20 ||
        (f.flags & star_flag::kSaturated) || !(std::sqrt(s.width_x * s.width_y) > 1.1 * typical))
      continue;
    const PsfFit g = fit_psf_sigma(img, rms, msk, f.x, f.y, sig[i], gain, pc);
    extended[i] = g.converged && g.sigma > pc.extended_sigma_ratio * sig[i];
  }
  return extended;
}

std::vector<EllipticalProfile> subtract_extended_light(FrameContext& c,
                                                       const std::vector<PsfFit>& fits,
                                                       const std::vector<double>& sig,
                                                       std::vector<char>& extended) {
  std::vector<EllipticalProfile> out;
  const auto& d = c.cfg.detection;
  const auto& pc = c.cfg.photometry;
  const PeakConfig& pk = d.peaks;
  const FloatPlane rms = c.background.rms_plane();
  const double noise_factor =
      d.filter_sigma_px > 0 ? smoothing_noise_factor(d.filter_sigma_px, d.lowered_kernel) : 1.0;
  const double sky_rms = c.background.global_rms > 0 ? c.background.global_rms : 1.0;
  const auto img = c.frame.pixels.view();
  const auto msk = c.frame.mask.cview();
  const int w = img.width(), h = img.height();
  const PixelGain gain = c.pixel_gain();
  // Brightest first: a star on a galaxy's disc looks wider than a star (the disc's gradient
  // is under it) and may have been marked extended with it; once the galaxy is subtracted it
  // is judged again, and kept as a star if it now fits as one.
  std::vector<std::size_t> order;
  for (std::size_t j = 0; j < fits.size(); ++j)
    if (extended[j] && std::isfinite(fits[j].x) && std::isfinite(fits[j].y)) order.push_back(j);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return fits[a].flux > fits[b].flux; });
  for (std::size_t j : order) {
    if (std::any_of(out.begin(), out.end(), [&](const EllipticalProfile& g) {
          return g.semi_major(fits[j].x, fits[j].y) < g.outer_a();
        })) {
      const PsfFit f = fit_psf_sigma(img, rms, msk, fits[j].x, fits[j].y, sig[j], gain, pc);
      if (f.converged && !(f.sigma > pc.extended_sigma_ratio * sig[j])) {
        extended[j] = 0;
        continue;
      }
    }
    const int ix = std::clamp(static_cast<int>(std::lround(fits[j].x)), 0, w - 1);
    const int iy = std::clamp(static_cast<int>(std::lround(fits[j].y)), 0, h - 1);
    const double local = rms.empty() ? sky_rms : rms(ix, iy);
    const double level = pk.mode == ThresholdMode::kSigma
                             ? pk.k_sigma * pk.rms_scale * noise_factor * local
                             : pk.absolute;
    // The profile out to 30 PSF sigmas; its ellipse from the inner 12 (the brighter part,
    // where the ellipse shows most: it costs ~30 passes over those pixels).
    const int max_a = static_cast<int>(std::ceil(30.0 * sig[j]));
    const int max_shape = static_cast<int>(std::ceil(12.0 * sig[j]));
    // Measured without the pixels of the other sources in the box: stars on the disc would
    // lift the annuli's medians by their wings (a fraction of the noise; algo test
    // StarsLeftOnTheDisc...). Left out where a star's fitted light exceeds a third of the
    // local RMS; their fits hold disc light too, so their models are not subtracted instead
    // (an over-subtracted star leaves a hole that pulls its annulus down).
    const int xa = std::max(0, ix - max_a - 1), xb = std::min(w - 1, ix + max_a + 1);
    const int ya = std::max(0, iy - max_a - 1), yb = std::min(h - 1, iy + max_a + 1);
    const int bw = xb - xa + 1, bh = yb - ya + 1;
    Image<MaskBits> box(bw, bh, MaskBits{0});
    if (!msk.empty())
      for (int y = 0; y < bh; ++y)
        for (int x = 0; x < bw; ++x) box(x, y) = (msk(xa + x, ya + y) & pc.exclude_bits) ? 1 : 0;
    for (std::size_t k = 0; k < fits.size(); ++k) {
      const PsfFit& f = fits[k];
      if (k == j || !(f.flux > 0) || !std::isfinite(f.x) || !std::isfinite(f.y)) continue;
      // Out to where the star's light per pixel falls to a third of the local RMS.
      const double peak = f.flux / (2.0 * std::numbers::pi * sig[k] * sig[k]);
      const double r = sig[k] * std::sqrt(2.0 * std::log(std::max(1.0, peak / (local / 3.0))));
      const double reach = std::max(1.5 * sig[k], r);
      if (f.x + reach < xa || f.x - reach > xb || f.y + reach < ya || f.y - reach > yb) continue;
      for (int y = std::max(ya, static_cast<int>(std::floor(f.y - reach)));
           y <= std::min(yb, static_cast<int>(std::ceil(f.y + reach))); ++y)
        for (int x = std::max(xa, static_cast<int>(std::floor(f.x - reach)));
             x <= std::min(xb, static_cast<int>(std::ceil(f.x + reach))); ++x)
          if (std::hypot(x - f.x, y - f.y) <= reach) box(x - xa, y - ya) = 1;
    }
    EllipticalProfile g =
        measure_elliptical_profile(img.subview(xa, ya, bw, bh), box.cview(), 1, fits[j].x - xa,
                                   fits[j].y - ya, level, max_a, max_shape);
    g.x += xa;
    g.y += ya;
    if (g.empty()) continue;
    spdlog::debug(
        "{}: galaxy at ({:.1f}, {:.1f}): axis ratio {:.2f}, angle {:.0f} deg, its light "
        "subtracted out to {:.0f} px",
        c.frame.path, g.x, g.y, g.axis_ratio, g.angle_rad * 180.0 / std::numbers::pi, g.outer_a());
    subtract_profile(img, g);
    out.push_back(std::move(g));
  }
  return out;
}

int split_blends(FrameContext& c, std::vector<PsfFit>& fits, std::vector<double>& x0,
                 std::vector<double>& y0, std::vector<double>& sig,
                 std::vector<std::uint32_t>& base, std::vector<char>& extended,
                 std::vector<char>& moved) {
  const auto& pc = c.cfg.photometry;
  SplitConfig sc;
  sc.min_dchi2 = pc.split_min_dchi2;
  if (!(sc.min_dchi2 > 0)) return 0;
  const auto img = c.frame.pixels.cview();
  const auto msk = c.frame.mask.cview();
  const auto rmsv = c.background.rms_plane();
  const PixelGain gain = c.pixel_gain();
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(fits.size());
  auto snr = [&](std::ptrdiff_t i) {
    return fits[i].flux_err > 0 ? fits[i].flux / fits[i].flux_err : 0.0;
  };
  // A pair d apart merged into one detection adds (d/2)^2 to the trace of its second-moment
  // matrix, wx^2 + wy^2, whatever the pair's orientation: only detections whose trace exceeds
  // the median star's by 15% are tried (the test is a 6-parameter fit; most stars are single).
  std::vector<double> widths;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const Star& s = c.stars[i];
    if (fits[i].converged && snr(i) >= 20 && std::isfinite(s.width_x) && std::isfinite(s.width_y))
      widths.push_back(s.width_x * s.width_x + s.width_y * s.width_y);
  }
  if (widths.empty()) return 0;
  const double typical = median_inplace(widths);
  const double sky_rms = c.background.global_rms > 0 ? c.background.global_rms : 1.0;
  const ModelIndex index(fits, sig, sky_rms, img.width(), img.height(), 0.0);
  // Close pairs (< kPairSepSigma sigma apart, each with no third star that close) are
  // refitted jointly first: one-at-a-time passes can settle on a wrong pair (each star
  // absorbing part of the other), e.g. when the residual search placed the companion while
  // its primary still sat at the pair's light centre.
  const std::vector<std::ptrdiff_t> partner = detail::close_pairs(
      index, fits, sig, kPairSepSigma,
      [&](std::ptrdiff_t i) { return !extended[i] && !(fits[i].flags & star_flag::kSaturated); });
  std::vector<std::ptrdiff_t> pairs;
  for (std::ptrdiff_t i = 0; i < n; ++i)
    if (partner[i] > i) pairs.push_back(i);
  std::vector<std::array<PsfFit, 2>> pair_fit(pairs.size());
#pragma omp parallel
  {
    std::vector<NeighbourModel> near;
    std::vector<std::ptrdiff_t> idx;
#pragma omp for schedule(dynamic, 8)
    for (std::ptrdiff_t p = 0; p < static_cast<std::ptrdiff_t>(pairs.size()); ++p) {
      const std::ptrdiff_t i = pairs[p], j = partner[i];
      const double mx = 0.5 * (fits[i].x + fits[j].x), my = 0.5 * (fits[i].y + fits[j].y);
      const double half =
          (std::max(3.0, std::ceil((pc.stamp_radius_sigma + kPairSepSigma) * sig[i]))) * 1.4143;
      index.reaching(mx, my, half, i, j, idx);
      near.clear();
      for (std::ptrdiff_t q : idx) near.push_back({fits[q].x, fits[q].y, fits[q].flux, sig[q]});
      pair_fit[p] = refit_pair(img, rmsv, msk, fits[i], fits[j], sig[i], gain, pc, near);
    }
  }
  std::vector<char> paired(static_cast<std::size_t>(n), 0);
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    const std::ptrdiff_t i = pairs[p], j = partner[i];
    paired[i] = paired[j] = 1;
    if (!pair_fit[p][0].converged) continue;
    for (int m = 0; m < 2; ++m) {
      const std::ptrdiff_t q = m == 0 ? i : j;
      fits[q] = pair_fit[p][m];
      x0[q] = fits[q].x;
      y0[q] = fits[q].y;
      moved[q] = 1;
    }
  }

  std::vector<SplitResult> res(static_cast<std::size_t>(n));
#pragma omp parallel
  {
    std::vector<NeighbourModel> near;
    std::vector<std::ptrdiff_t> idx;
#pragma omp for schedule(dynamic, 16)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const Star& s = c.stars[i];
      const PsfFit& f = fits[i];
      if (!f.converged || extended[i] || paired[i] || (base[i] & star_flag::kFoundInResidual) ||
          (f.flags & star_flag::kSaturated))
        continue;
      const bool split_candidate =
          snr(i) >= kSplitMinSnr && snr(i) <= kSplitMaxSnr &&
          s.width_x * s.width_x + s.width_y * s.width_y > kSplitWidthFactor * typical;
      // Stars bright enough for a faint companion to matter, which the split test did not
      // split, get the companion search.
      const bool companion_candidate = snr(i) >= kCompanionMinSnr;
      if (!split_candidate && !companion_candidate) continue;
      const double half =
          (std::max(3.0, std::ceil((pc.stamp_radius_sigma + 1.0) * sig[i]))) * 1.4143;
      index.reaching(f.x, f.y, half, i, -1, idx);
      near.clear();
      for (std::ptrdiff_t j : idx) near.push_back({fits[j].x, fits[j].y, fits[j].flux, sig[j]});
      if (split_candidate) res[i] = try_split(img, rmsv, msk, f.x, f.y, sig[i], gain, pc, sc, near);
      if (!res[i].split && companion_candidate)
        res[i] = try_companion(img, rmsv, msk, f, sig[i], gain, pc, sc, near);
    }
  }
  // Apply in star order: star i becomes the brighter component, the other is appended.
  int n_split = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    if (!res[i].split) continue;
    ++n_split;
    const SplitResult& r = res[i];
    fits[i] = r.a;
    x0[i] = r.a.x;
    y0[i] = r.a.y;
    moved[i] = 1;
    Star b = c.stars[i];
    b.star_id = static_cast<std::int32_t>(c.stars.size());
    b.centroid_x = r.b.x;
    b.centroid_y = r.b.y;
    b.peak_x = static_cast<std::int32_t>(std::lround(r.b.x));
    b.peak_y = static_cast<std::int32_t>(std::lround(r.b.y));
    // The blend's second moments describe neither star: the new one has none.
    b.width_x = b.width_y = std::nan("");
    b.flags |= star_flag::kFoundInResidual | star_flag::kMomentsInvalid;
    fits.push_back(r.b);
    x0.push_back(r.b.x);
    y0.push_back(r.b.y);
    sig.push_back(sig[i]);
    base.push_back(base[i] | star_flag::kFoundInResidual | star_flag::kMomentsInvalid);
    extended.push_back(0);
    moved.push_back(1);
    c.stars.push_back(b);
  }
  return n_split;
}

}  // namespace psfphot::pipeline
