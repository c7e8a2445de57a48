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
namespace {

using detail::ModelIndex;

struct Found {
  int x = 0, y = 0;  // peak, frame px
  std::size_t box = 0;
  Star star;
  PsfFit fit;
  double sigma = 0;
};

// find_peaks(gaussian_smooth(image, mask, kUnusable, sigma, lowered), rms, mask, pk)
// restricted to the pixels x0..x1, y0..y1 (the caller drops the others): only the rows around
// the window are smoothed (SmoothRowStreamer gives each row the bits of gaussian_smooth's)
// and only the window searched, with find_peaks' test. A candidate with an equal neighbour
// needs find_peaks' plateau rule over the whole image: then this returns false, and the
// caller searches the whole image instead.
bool window_peaks(ImageView<const float> image, ImageView<const float> rms,
                  ImageView<const MaskBits> mask, const DetectionConfig& d, const PeakConfig& pk,
                  int x0, int x1, int y0, int y1, std::vector<float>& ring,
                  std::vector<Peak>& peaks) {
  peaks.clear();
  const int w = image.width(), h = image.height();
  x0 = std::max(x0, 1);
  y0 = std::max(y0, 1);
  x1 = std::min(x1, w - 2);
  y1 = std::min(y1, h - 2);
  if (x0 > x1 || y0 > y1) return true;
  ring.resize(static_cast<std::size_t>(3) * w);
  auto line = [&](int y) { return ring.data() + static_cast<std::size_t>(y % 3) * w; };
  const double kscale = pk.k_sigma * pk.rms_scale;
  const bool sigma_mode = pk.mode == ThresholdMode::kSigma;
  bool tie = false;
  auto search = [&](int y) {
    const float *up = line(y - 1), *r = line(y), *dn = line(y + 1);
    const float* s = sigma_mode ? rms.row(y) : nullptr;
    for (int x = x0; x <= x1; ++x) {
      const float v = r[x];
      const double t = s ? kscale * s[x] : pk.absolute;
      if (!(v > t)) continue;
      if (!mask.empty() && (mask(x, y) & pk.exclude_bits)) continue;
      const float nb[8] = {up[x - 1], up[x],     up[x + 1], r[x - 1],
                           r[x + 1],  dn[x - 1], dn[x],     dn[x + 1]};
      bool higher = false, equal = false;
      for (float n : nb) {
        higher |= n > v;
        equal |= n == v;
      }
      if (higher) continue;
      tie |= equal;
      peaks.push_back({x, y, v});
    }
  };
  SmoothRowStreamer st(image, mask, mask::kUnusable, d.filter_sigma_px, d.lowered_kernel);
  st.run(y0 - 1, y1 + 2, [&](int y, const float* row) {
    std::copy(row, row + w, line(y));
    if (y - 1 >= y0) search(y - 1);
  });
  return !tie;
}

}  // namespace

void find_in_residual(FrameContext& c, std::vector<PsfFit>& fits, std::vector<double>& x0,
                      std::vector<double>& y0, std::vector<double>& sig,
                      std::vector<std::uint32_t>& base, std::vector<char>& extended) {
  const auto& pc = c.cfg.photometry;
  const auto& d = c.cfg.detection;
  const auto img = c.frame.pixels.cview();
  const auto msk = c.frame.mask.cview();
  const auto rmsv = c.background.rms.cview();
  const PixelGain gain = c.pixel_gain();
  const int w = img.width(), h = img.height();
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(fits.size());
  const double sky_rms = c.background.global_rms > 0 ? c.background.global_rms : 1.0;
  const ModelIndex index(fits, sig, sky_rms, w, h, 1.0);
  const auto& usable = index.usable;
  std::vector<std::ptrdiff_t> bright;
  for (std::ptrdiff_t j = 0; j < n; ++j)
    if (usable[j] && !extended[j] && fits[j].flux_err > 0 &&
        fits[j].flux / fits[j].flux_err >= 20.0 && !(fits[j].flags & star_flag::kSaturated))
      bright.push_back(j);

  PeakConfig pk = d.peaks;
  if (d.filter_sigma_px > 0)
    pk.rms_scale *= smoothing_noise_factor(d.filter_sigma_px, d.lowered_kernel);
  const double k = pk.mode == ThresholdMode::kSigma ? pk.k_sigma : 0.0;
  const int margin = static_cast<int>(std::ceil(3.0 * std::max(0.0, d.filter_sigma_px))) + 1;
  std::vector<std::vector<Found>> per_box(bright.size());
#pragma omp parallel
  {
    Profile1D px, py;
    std::vector<Peak> peaks;
    std::vector<float> ring;
    std::vector<double> fpx;
    std::vector<float> box_rms;
    std::vector<MaskBits> box_msk;
#pragma omp for schedule(dynamic, 8)
    for (std::ptrdiff_t bi = 0; bi < static_cast<std::ptrdiff_t>(bright.size()); ++bi) {
      const std::ptrdiff_t b = bright[bi];
      const double sb = sig[b];
      const int inner = static_cast<int>(std::ceil(3.5 * sb)) + 1;
      const int stamp = static_cast<int>(std::ceil(pc.stamp_radius_sigma * sb)) + 2;
      const int half = inner + std::max(margin, stamp);
      const int bx = static_cast<int>(std::lround(fits[b].x));
      const int by = static_cast<int>(std::lround(fits[b].y));
      const int xa = std::max(0, bx - half), ya = std::max(0, by - half);
      const int xb = std::min(w - 1, bx + half), yb = std::min(h - 1, by + half);
      if (xa > xb || ya > yb) continue;
      const int bw = xb - xa + 1, bh = yb - ya + 1;
      // The box's rows lie a frame row apart: ask for all of them before copying, so that
      // their cache misses overlap instead of coming one after another. The RMS and mask rows
      // too: the smoothing and the peak test read every pixel of the window from them, and
      // read from the frame, each row's first pixel was a miss.
      const bool has_rms = !rmsv.empty(), has_msk = !msk.empty();
      for (int y = 0; y < bh; ++y) {
        for (int x = 0; x < bw; x += 16) __builtin_prefetch(&img(xa + x, ya + y));
        if (has_rms)
          for (int x = 0; x < bw; x += 16) __builtin_prefetch(&rmsv(xa + x, ya + y));
        if (has_msk)
          for (int x = 0; x < bw; x += 64) __builtin_prefetch(&msk(xa + x, ya + y));
      }
      Image<float> res(bw, bh);
      for (int y = 0; y < bh; ++y) std::copy_n(&img(xa, ya + y), bw, &res(0, y));
      if (has_rms) {
        box_rms.resize(static_cast<std::size_t>(bw) * bh);
        for (int y = 0; y < bh; ++y)
          std::copy_n(&rmsv(xa, ya + y), bw, box_rms.data() + static_cast<std::size_t>(y) * bw);
      }
      if (has_msk) {
        box_msk.resize(static_cast<std::size_t>(bw) * bh);
        for (int y = 0; y < bh; ++y)
          std::copy_n(&msk(xa, ya + y), bw, box_msk.data() + static_cast<std::size_t>(y) * bw);
      }
      // Every model reaching the box, in star order (deterministic floats).
      std::vector<std::ptrdiff_t> touch;
      index.for_each_near(0.5 * (xa + xb), 0.5 * (ya + yb), 0.5 * std::max(bw, bh) * 1.4143,
                          [&](std::ptrdiff_t j) {
                            const double r = index.reach[j];
                            if (fits[j].x + r >= xa && fits[j].x - r <= xb && fits[j].y + r >= ya &&
                                fits[j].y - r <= yb)
                              touch.push_back(j);
                          });
      std::sort(touch.begin(), touch.end());
      for (std::ptrdiff_t j : touch) {
        if (pc.integrate_pixels) {
          integrated_profile(fits[j].x, sig[j], xa, bw, false, px);
          integrated_profile(fits[j].y, sig[j], ya, bh, false, py);
        } else {
          sampled_profile(fits[j].x, sig[j], xa, bw, false, px);
          sampled_profile(fits[j].y, sig[j], ya, bh, false, py);
        }
        // flux E_x E_y as (flux E_x) E_y, the column factor computed once per column.
        fpx.resize(static_cast<std::size_t>(bw));
        for (int x = 0; x < bw; ++x) fpx[x] = fits[j].flux * px.value[x];
        for (int y = 0; y < bh; ++y) {
          float* const r = &res(0, y);
          const double ey = py.value[y];
          for (int x = 0; x < bw; ++x) r[x] -= static_cast<float>(fpx[x] * ey);
        }
      }
      // The same pixels as msk.subview(xa, ya, bw, bh) and rmsv.subview(...), from the copies.
      const ImageView<const MaskBits> bmsk =
          has_msk ? ImageView<const MaskBits>(box_msk.data(), bw, bh, bw, xa, ya)
                  : msk.subview(xa, ya, bw, bh);
      const ImageView<const float> brms =
          has_rms ? ImageView<const float>(box_rms.data(), bw, bh, bw, xa, ya)
                  : rmsv.subview(xa, ya, bw, bh);
      const PixelGain box_gain =
          gain.flat_response.empty()
              ? gain
              : PixelGain(gain.e_per_adu, gain.flat_response.subview(xa, ya, bw, bh));
      ImageView<const float> rv(res.data(), bw, bh, bw, xa, ya);
      if (d.filter_sigma_px > 0) {
        // Only peaks within `inner` of the star count: smooth and search just that window.
        const bool ok = window_peaks(rv, brms, bmsk, d, pk, bx - inner - xa, bx + inner - xa,
                                     by - inner - ya, by + inner - ya, ring, peaks);
        if (!ok) {
          Image<float> sm =
              gaussian_smooth(rv, bmsk, mask::kUnusable, d.filter_sigma_px, d.lowered_kernel);
          peaks = find_peaks(sm.cview(), brms, bmsk, pk);
        }
      } else {
        peaks = find_peaks(rv, brms, bmsk, pk);
      }
      for (const Peak& p : peaks) {
        const int fx = xa + p.x, fy = ya + p.y;
        if (std::abs(fx - bx) > inner || std::abs(fy - by) > inner) continue;
        const double light = std::max(0.0, double(img(fx, fy)) - res(p.x, p.y));
        const double r = rmsv(fx, fy);
        const double g = gain.at(fx, fy);
        // The residual's noise: the sky's and the subtracted stars' photon noise.
        const double noise = std::sqrt(r * r + (g > 0 ? light / g : 0.0));
        if (!passes_hot_pixel_test(rv, p.x, p.y, c.cfg.hotpix, noise)) continue;
        if (k > 0 && p.value < k * pk.rms_scale * noise) continue;
        const int q = static_cast<int>(std::ceil(2.0 * sb));
        bool bad = false;
        for (int y = std::max(0, fy - q); y <= std::min(h - 1, fy + q) && !bad; ++y)
          for (int x = std::max(0, fx - q); x <= std::min(w - 1, fx + q); ++x)
            if (msk(x, y) & (mask::kSaturated | mask::kUnusable)) {
              bad = true;
              break;
            }
        if (bad) continue;
        Found f;
        f.x = fx;
        f.y = fy;
        f.box = static_cast<std::size_t>(bi);
        Star& s = f.star;
        s = make_star(c.frame.id, 0, fx, fy);
        s.peak_value = res(p.x, p.y);
        s.background = c.background.level_at(fx, fy);
        s.background_rms = r;
        CentroidConfig cc = c.cfg.centroid;
        cc.window_sigma_px = c.psf_sigma_px;
        const Centroid ct = measure_centroid(rv, bmsk, p.x, p.y, cc);
        const bool ok = std::isfinite(ct.x) && std::isfinite(ct.y);
        s.centroid_x = ok ? ct.x + xa : fx;
        s.centroid_y = ok ? ct.y + ya : fy;
        f.sigma = c.psf_model.sigma_at(s.centroid_x, s.centroid_y);
        f.fit = measure_psf_flux(rv, brms, bmsk, s.centroid_x - xa, s.centroid_y - ya, f.sigma,
                                 box_gain, pc);
        f.fit.x += xa;
        f.fit.y += ya;
        per_box[bi].push_back(f);
      }
    }
  }
  // Merge in a fixed order: by peak position, the first box that found it wins.
  std::vector<Found> all;
  for (auto& v : per_box)
    for (auto& f : v) all.push_back(std::move(f));
  std::stable_sort(all.begin(), all.end(), [](const Found& a, const Found& b) {
    return std::tie(a.y, a.x, a.box) < std::tie(b.y, b.x, b.box);
  });
  std::vector<Position> taken;
  for (const PsfFit& f : fits)
    if (std::isfinite(f.x)) taken.push_back({f.x, f.y});
  for (Found& f : all) {
    const Star& s = f.star;
    bool near = false;
    // |dx| or |dy| >= 2 makes the distance >= 2 (hypot is never below the larger): the
    // hypot call only for the few positions that close (it was ~5% of the search).
    for (const Position& q : taken)
      if (std::abs(q.x - s.centroid_x) < 2.0 && std::abs(q.y - s.centroid_y) < 2.0 &&
          std::hypot(q.x - s.centroid_x, q.y - s.centroid_y) < 2.0) {
        near = true;
        break;
      }
    if (near) continue;
    f.star.star_id = static_cast<std::int32_t>(c.stars.size());
    f.star.flags |= star_flag::kFoundInResidual;
    fits.push_back(f.fit);
    x0.push_back(s.centroid_x);
    y0.push_back(s.centroid_y);
    sig.push_back(f.sigma);
    base.push_back(f.star.flags);
    extended.push_back(0);
    c.stars.push_back(f.star);
    taken.push_back({s.centroid_x, s.centroid_y});
  }
}

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
          if (i != j && std::hypot(fx - p.x, fy - p.y) < half_of(i) + index.reach[j]) need[i] = 1;
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
    const FrameContext& c, ImageView<const float> img, ImageView<const float> rms,
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
