#include "psfphot/pipeline/blends.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "model_index.hpp"
#include "psfphot/algo/deblend.hpp"
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
