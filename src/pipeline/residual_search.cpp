// The residual search of the photometry step (pipeline/neighbours.hpp, find_in_residual):
// boxes around bright stars searched, with every fitted model subtracted, for stars hidden
// in their light.
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
// Only the columns the test reads (x0 - 1 .. x1 + 1) and the kernel's reach around them are
// smoothed: the smoothing is a zero-padded separable convolution, each output pixel the same
// sums in the same order of the input pixels within the kernel's radius (zeros beyond the
// image), so on a narrower view those columns get the same bits as on the whole image (where
// the view's edge is not the image's, no column read lies within the radius of it).
bool window_peaks(ImageView<const float> image, const FloatPlane& rms,
                  ImageView<const MaskBits> mask, const DetectionConfig& d, const PeakConfig& pk,
                  int rad, int x0, int x1, int y0, int y1, std::vector<float>& ring,
                  std::vector<Peak>& peaks) {
  peaks.clear();
  const int w = image.width(), h = image.height();
  x0 = std::max(x0, 1);
  y0 = std::max(y0, 1);
  x1 = std::min(x1, w - 2);
  y1 = std::min(y1, h - 2);
  if (x0 > x1 || y0 > y1) return true;
  int cx0 = std::max(0, x0 - 1 - rad), cx1 = std::min(w - 1, x1 + 1 + rad);
  // Widened to a multiple of 16 columns where the image allows (the smoothing's column pass
  // goes 16 pixels at a time, the rest one by one).
  const int want = std::min(w, (cx1 - cx0 + 16) / 16 * 16);
  cx1 = std::min(w - 1, cx0 + want - 1);
  cx0 = std::max(0, cx1 - want + 1);
  const int cw = cx1 - cx0 + 1;
  ring.resize(static_cast<std::size_t>(3) * cw);
  // Row y's smoothed columns cx0 .. cx1 (column x at x - cx0).
  auto line = [&](int y) { return ring.data() + static_cast<std::size_t>(y % 3) * cw; };
  const double kscale = pk.k_sigma * pk.rms_scale;
  const bool sigma_mode = pk.mode == ThresholdMode::kSigma;
  bool tie = false;
  std::vector<float> rms_part(sigma_mode ? static_cast<std::size_t>(x1 - x0 + 1) : 0);
  auto search = [&](int y) {
    const float *up = line(y - 1), *r = line(y), *dn = line(y + 1);
    // The window's part of the RMS row (s[x - x0]).
    const float* s = sigma_mode ? rms.row_part(y, x0, x1 - x0 + 1, rms_part.data()) : nullptr;
    for (int x = x0; x <= x1; ++x) {
      const int c = x - cx0;  // x's place in the smoothed rows
      const float v = r[c];
      const double t = s ? kscale * s[x - x0] : pk.absolute;
      if (!(v > t)) continue;
      if (!mask.empty() && (mask(x, y) & pk.exclude_bits)) continue;
      const float nb[8] = {up[c - 1], up[c],     up[c + 1], r[c - 1],
                           r[c + 1],  dn[c - 1], dn[c],     dn[c + 1]};
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
  SmoothRowStreamer st(image.subview(cx0, 0, cw, h),
                       mask.empty() ? mask : mask.subview(cx0, 0, cw, h), mask::kUnusable,
                       d.filter_sigma_px, d.lowered_kernel);
  st.run(y0 - 1, y1 + 2, [&](int y, const float* row) {
    std::copy(row, row + cw, line(y));
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
  const FloatPlane rmsv = c.background.rms_plane();
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
  // The smoothing kernel's radius (gaussian_smooth's taps).
  const int smooth_rad =
      d.filter_sigma_px > 0 ? static_cast<int>(gaussian_taps(d.filter_sigma_px).size() / 2) : 0;
  std::vector<std::vector<Found>> per_box(bright.size());
#pragma omp parallel
  {
    Profile1D px, py;
    std::vector<Peak> peaks;
    std::vector<float> ring;
    std::vector<double> fpx;
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
          for (int x = 0; x < bw; x += 16) __builtin_prefetch(rmsv.address(xa + x, ya + y));
        if (has_msk)
          for (int x = 0; x < bw; x += 64) __builtin_prefetch(&msk(xa + x, ya + y));
      }
      Image<float> res(bw, bh, kNoInit);  // every pixel copied in below
      for (int y = 0; y < bh; ++y) std::copy_n(&img(xa, ya + y), bw, &res(0, y));
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
      // The same pixels as msk.subview(xa, ya, bw, bh), from the copy. The RMS map is read
      // through a view of the frame's: a box copy of it (a computed map, a spline evaluated
      // per row) cost every box all its rows, while the window's test reads a third of them
      // and the rest is read only for the few boxes with a candidate; a plane gives the same
      // value for a pixel however it is asked for (core/float_plane.hpp).
      const ImageView<const MaskBits> bmsk =
          has_msk ? ImageView<const MaskBits>(box_msk.data(), bw, bh, bw, xa, ya)
                  : msk.subview(xa, ya, bw, bh);
      const FloatPlane brms = has_rms ? rmsv.subview(xa, ya, bw, bh) : FloatPlane();
      const PixelGain box_gain =
          gain.flat_response.empty()
              ? gain
              : PixelGain(gain.e_per_adu, gain.flat_response.subview(xa, ya, bw, bh));
      ImageView<const float> rv(res.data(), bw, bh, bw, xa, ya);
      if (d.filter_sigma_px > 0) {
        // Only peaks within `inner` of the star count: smooth and search just that window.
        const bool ok =
            window_peaks(rv, brms, bmsk, d, pk, smooth_rad, bx - inner - xa, bx + inner - xa,
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

}  // namespace psfphot::pipeline
