#include "psfphot/pipeline/neighbours.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <tuple>

#include "model_index.hpp"
#include "psfphot/algo/centroid.hpp"
#include "psfphot/algo/deblend.hpp"
#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/algo/hotpix.hpp"
#include "psfphot/algo/peaks.hpp"
#include "psfphot/algo/smooth.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot::pipeline {

using detail::ModelIndex;

namespace {

// need[i]: some model that moved in the last pass reaches star i's stamp, by the test
// ModelIndex::reaching makes (the same expression, so the same answer); stars without are
// not refitted. When few stars moved (the late passes move a few dozen of thousands), asking
// from each moved model is much cheaper than querying the index around every star.
template <typename Centre, typename Half>
std::vector<char> stars_near_moved(const ModelIndex& index, const std::vector<char>& moved,
                                   const std::vector<double>& x0, Centre centre, Half half_of) {
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(moved.size());
  std::vector<std::ptrdiff_t> from;
  for (std::ptrdiff_t j = 0; j < n; ++j)
    if (moved[j] && index.usable[j]) from.push_back(j);
  if (from.size() * 8 > static_cast<std::size_t>(n)) return std::vector<char>(moved.size(), 1);
  // The stars' search centres in a grid of the index's cells (one array, cell c holding
  // members[start[c] .. start[c + 1])).
  const int gw = index.gw, gh = index.gh;
  const std::size_t ncell = static_cast<std::size_t>(gw) * gh;
  std::vector<std::ptrdiff_t> start(ncell + 1, 0), members;
  std::vector<std::size_t> where(static_cast<std::size_t>(n), ncell);
  double max_half = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    if (!std::isfinite(x0[i])) continue;
    const Position p = centre(i);
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    max_half = std::max(max_half, half_of(i));
    where[i] = static_cast<std::size_t>(ModelIndex::cell(p.y, gh)) * gw + ModelIndex::cell(p.x, gw);
    ++start[where[i] + 1];
  }
  for (std::size_t c = 0; c < ncell; ++c) start[c + 1] += start[c];
  members.resize(static_cast<std::size_t>(start[ncell]));
  {
    std::vector<std::ptrdiff_t> fill(start.begin(), start.end() - 1);
    for (std::ptrdiff_t i = 0; i < n; ++i)
      if (where[i] < ncell) members[static_cast<std::size_t>(fill[where[i]]++)] = i;
  }
  std::vector<char> need(moved.size(), 0);
  for (std::ptrdiff_t j : from) {
    const double fx = index.fits[j].x, fy = index.fits[j].y, R = max_half + index.reach[j];
    for (int gy = ModelIndex::cell(fy - R, gh); gy <= ModelIndex::cell(fy + R, gh); ++gy)
      for (int gx = ModelIndex::cell(fx - R, gw); gx <= ModelIndex::cell(fx + R, gw); ++gx)
        for (std::ptrdiff_t k = start[static_cast<std::size_t>(gy) * gw + gx];
             k < start[static_cast<std::size_t>(gy) * gw + gx + 1]; ++k) {
          const std::ptrdiff_t i = members[static_cast<std::size_t>(k)];
          const Position p = centre(i);
          if (i != j && detail::closer_than(fx - p.x, fy - p.y, half_of(i) + index.reach[j]))
            need[i] = 1;
        }
  }
  return need;
}

// Stars closer than this many PSF sigmas, with no third star that close, are refitted as a
// pair in the neighbour passes (refit_with_neighbours). One at a time, such a pair's refits
// alternate: on the 4096^2 scorecard frame (seed 11) the ~35 stars still moving at the tenth
// pass were all in pairs 1.9-3.1 sigma apart.
constexpr double kPassPairSepSigma = 3.0;

}  // namespace

// One neighbour pass. Star j's model reaches star i's stamp when their distance is below
// i's stamp half-size (times sqrt 2, the corner) plus the radius where j's model drops
// to 1% of the sky RMS.
std::vector<PsfFit> refit_with_neighbours(
    const FrameContext& c, ImageView<const float> img, const FloatPlane& rms,
    ImageView<const MaskBits> msk, const std::vector<double>& x0, const std::vector<double>& y0,
    const std::vector<double>& sig, const std::vector<PsfFit>& prev, std::vector<char>& moved) {
  const auto& pc = c.cfg.photometry;
  const PixelGain gain = c.pixel_gain();
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(prev.size());
  const double sky_rms = c.background.global_rms > 0 ? c.background.global_rms : 1.0;
  const ModelIndex index(prev, sig, sky_rms, img.width(), img.height(), 0.0);
  std::vector<NeighbourModel> model(n);
  for (std::ptrdiff_t j = 0; j < n; ++j)
    if (index.usable[j]) model[j] = {prev[j].x, prev[j].y, prev[j].flux, sig[j]};
  std::vector<PsfFit> out(prev);
  std::vector<char> now(n, 0);
  // Where star i's stamp is searched for neighbours, and how far (its half-diagonal).
  auto centre = [&](std::ptrdiff_t i) {
    return prev[i].converged ? Position{prev[i].x, prev[i].y} : Position{x0[i], y0[i]};
  };
  auto half_of = [&](std::ptrdiff_t i) {
    return std::max(3.0, std::ceil(pc.stamp_radius_sigma * sig[i])) * 1.4143;
  };
  const std::vector<char> need = stars_near_moved(index, moved, x0, centre, half_of);
  // Pairs of usable (converged, positive flux) unsaturated fits. A fit that clipped outlier
  // pixels (a cosmic ray, a hot pixel in its wings) stays alone: the joint fit does not
  // clip, and its second star would take the outliers' light (seed 13 of the scorecard: a
  // false star 6 px from an S/N 1900 star).
  const std::vector<std::ptrdiff_t> partner =
      detail::close_pairs(index, prev, sig, kPassPairSepSigma, [&](std::ptrdiff_t i) {
        return !(prev[i].flags & (star_flag::kSaturated | star_flag::kClippedPixel));
      });
  // The candidates as a list: in the late passes a few dozen stars, often in one stretch of the
  // star order, which chunks of the whole range would give to one thread. A close pair is one
  // candidate, under its first star.
  std::vector<std::ptrdiff_t> todo;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::ptrdiff_t j = partner[static_cast<std::size_t>(i)];
    if (j >= 0 ? j > i && (need[i] || need[j]) : std::isfinite(x0[i]) && need[i]) todo.push_back(i);
  }
  const std::ptrdiff_t nt = static_cast<std::ptrdiff_t>(todo.size());
  auto changed = [&](std::ptrdiff_t i) {
    const PsfFit &a = prev[i], &b = out[i];
    return a.converged != b.converged ||
           (b.converged && (std::abs(a.x - b.x) > 1e-3 || std::abs(a.y - b.y) > 1e-3 ||
                            std::abs(a.flux - b.flux) > 1e-4 * std::abs(b.flux)));
  };
#pragma omp parallel
  {
    std::vector<NeighbourModel> near;
    std::vector<std::ptrdiff_t> idx;
    // Star i refitted alone from (x0, y0) with its neighbours' models subtracted, when one of
    // them moved since its last fit; or, given its pair partner's model from the joint fit
    // (`partner_fit` of star `pj`), always, with that model in place of the partner's.
    auto refit_single = [&](std::ptrdiff_t i, std::ptrdiff_t pj = -1,
                            const PsfFit* partner_fit = nullptr) {
      const auto [xi, yi] = centre(i);
      index.reaching(xi, yi, half_of(i), i, pj, idx);
      // Nothing to subtract, or no neighbour moved since this star's last fit: it stands.
      if (!partner_fit &&
          (idx.empty() ||
           std::none_of(idx.begin(), idx.end(), [&](std::ptrdiff_t j) { return moved[j] != 0; })))
        return;
      near.clear();
      bool placed = partner_fit == nullptr;
      for (std::ptrdiff_t j : idx) {
        if (!placed && pj < j) {  // in star order, as the index lists it
          near.push_back({partner_fit->x, partner_fit->y, partner_fit->flux, sig[pj]});
          placed = true;
        }
        near.push_back(model[j]);
      }
      if (!placed) near.push_back({partner_fit->x, partner_fit->y, partner_fit->flux, sig[pj]});
      out[i] = measure_psf_flux(img, rms, msk, x0[i], y0[i], sig[i], gain, pc, near);
      now[i] = changed(i);
    };
#pragma omp for schedule(dynamic, 4)
    for (std::ptrdiff_t t = 0; t < nt; ++t) {
      const std::ptrdiff_t i = todo[static_cast<std::size_t>(t)];
      const std::ptrdiff_t j = partner[static_cast<std::size_t>(i)];
      if (t + 2 < nt) {  // a later candidate's stamp, as in the initial fits
        const std::ptrdiff_t q = todo[static_cast<std::size_t>(t + 2)];
        detail::prefetch_stamp_rows(img, rms, msk, gain, x0[q], y0[q], sig[q], pc);
      }
      if (j < 0) {
        refit_single(i);
        continue;
      }
      // A close pair: fitted jointly from the previous pass's fits (the fixed point that
      // one-at-a-time refits approach by alternating, the pair's own coupling slowing them
      // down), when any model reaching the pair's stamp, its own included, moved, then each
      // star alone against the other's joint model; alone against the previous pass's models,
      // as other stars, if the joint fit fails or takes a star more than 2 px from its start.
      // The models reaching the pair's stamp (refit_pair's: stamp_radius_sigma beyond either
      // star, so within (stamp_radius_sigma + kPassPairSepSigma / 2) sigma of the middle; the
      // half-diagonal of a box of half-size (stamp_radius_sigma + kPassPairSepSigma) sigma
      // covers it).
      const double mx = 0.5 * (prev[i].x + prev[j].x), my = 0.5 * (prev[i].y + prev[j].y);
      const double half =
          std::max(3.0, std::ceil((pc.stamp_radius_sigma + kPassPairSepSigma) * sig[i])) * 1.4143;
      index.reaching(mx, my, half, i, j, idx);
      if (!moved[i] && !moved[j] &&
          std::none_of(idx.begin(), idx.end(), [&](std::ptrdiff_t k) { return moved[k] != 0; }))
        continue;
      near.clear();
      for (std::ptrdiff_t k : idx) near.push_back(model[k]);
      const std::array<PsfFit, 2> pf =
          refit_pair(img, rms, msk, prev[i], prev[j], sig[i], gain, pc, near);
      // Accepted where the single fits would be: each star within 2 px of its start.
      auto near_start = [&](const PsfFit& f, std::ptrdiff_t k) {
        return std::abs(f.x - x0[k]) <= 2.0 && std::abs(f.y - y0[k]) <= 2.0;
      };
      if (pf[0].converged && pf[1].converged && near_start(pf[0], i) && near_start(pf[1], j)) {
        // What a star reports stays its own fit (errors from its own Fisher matrix, outlier
        // clipping, flags), as without pairs: each is refitted alone with its partner's model
        // from the joint fit subtracted, which puts it at the pair's fixed point at once.
        refit_single(i, j, &pf[1]);
        refit_single(j, i, &pf[0]);
      } else {
        refit_single(i);
        refit_single(j);
      }
    }
  }
  moved = std::move(now);
  return out;
}

}  // namespace psfphot::pipeline
