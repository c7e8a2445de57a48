// The companion search of algo/deblend.hpp (try_companion): a matched filter over a bright
// star's residual for a faint point source beside it, then the joint fit of the pair.
#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "joint_fit.hpp"
#include "psf_stamp.hpp"
#include "psfphot/algo/deblend.hpp"
#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/core/simd.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot {
namespace {

using detail::Component;
using detail::component_fit;
using detail::fit_joint;
using detail::JointFit;
using detail::Stamp;

// try_companion's working arrays, one set per thread: it runs for every star above S/N 50
// (~800 on a 4096^2 frame), nearly all of which end at the matched filter, and these were a
// dozen allocations each. Every element read is written first for each star.
struct CompanionWork {
  Stamp s;
  Profile1D px, py, g;
  std::vector<double> rp, ivp, g2, trow, hn, hd, fpx;
  std::vector<int> cand;
};

// out[c] = sum_o w[o] in[c + o] over o < win, for c < n: one row of a separable filter.
PSFPHOT_VECTOR_CLONES void taps_row(int n, int win, const double* __restrict w,
                                    const double* __restrict in, double* __restrict out) {
  for (int c = 0; c < n; ++c) out[c] = 0.0;
  for (int o = 0; o < win; ++o) {
    const double wo = w[o];
    for (int c = 0; c < n; ++c) out[c] += wo * in[c + o];
  }
}

// One stamp row of try_companion's residual against the star's model and its inverse
// variance, 0 and 0 where the pixel is not in use: the scalar loop's expressions (the model
// as (F E_x) E_y, var = sky + max(model, 0) / gain, gain > 0 or +inf as cut_stamp leaves it),
// computed for every pixel and then chosen, so that GCC vectorises the division.
PSFPHOT_VECTOR_CLONES void residual_row(int nx, const double* __restrict fpx, double ey,
                                        const double* __restrict on, const double* __restrict data,
                                        const double* __restrict sky, const double* __restrict gain,
                                        double* __restrict rp, double* __restrict ivp) {
  for (int i = 0; i < nx; ++i) {
    const double model = fpx[i] * ey;
    const double var = sky[i] + std::max(model, 0.0) / gain[i];
    const double r = data[i] - model, iv = 1.0 / var;
    rp[i] = on[i] != 0.0 ? r : 0.0;
    ivp[i] = on[i] != 0.0 ? iv : 0.0;
  }
}

// Whether no candidate of try_companion's matched filter can have an S/N whose square reaches
// `min_dchi2` (so the search ends with no companion, as the filter itself would decide), from
// its sums computed separably: per window row sum_x g_x (r iv) first, then sum_y g_y of those
// (and the same with g^2 and iv), ~4 (2 reach + 1) products per candidate instead of the
// filter's 3 (2 reach + 1)^2. Both compute num = sum g_x g_y r iv and den = sum g_x^2 g_y^2 iv
// over the same numbers in another order, so they differ only by rounding: each is within
// ~200 u (u the unit roundoff; ~170 terms and a few products per term) of the exact real sum
// sum g_x g_y |r| iv <= max(g)^2 sum |r| iv (over the stamp: `abs_riv`) for num, and of den
// itself (its terms are >= 0). The bound below allows 1e-9 of those (~10^4 times the worst
// rounding), so when it says no candidate can reach the threshold, the filter's own sums cannot
// either; when it cannot say (or anything is not finite, or a window has next to no weight)
// the filter runs as before. The candidates' windows and padded arrays are the filter's (rp,
// ivp: pw wide, reach zeros around the stamp).
bool companion_cannot_reach(const std::vector<int>& cand, int nx, int pw, int reach,
                            const Profile1D& g, double abs_riv, double min_dchi2,
                            CompanionWork& w) {
  if (cand.empty()) return true;
  // The bound assumes every inverse variance is >= 0 (sky variance > 0, photon term >= 0):
  // a negative one could make abs_riv, and so the tolerance, negative. Then the filter runs.
  if (!std::isfinite(abs_riv) || !(abs_riv >= 0)) return false;
  const int win = 2 * reach + 1;
  int i_lo = nx, i_hi = -1, j_lo = 1 << 30, j_hi = -1;
  for (int k : cand) {
    i_lo = std::min(i_lo, k % nx);
    i_hi = std::max(i_hi, k % nx);
    j_lo = std::min(j_lo, k / nx);
    j_hi = std::max(j_hi, k / nx);
  }
  // Row sums for the padded rows j_lo .. j_hi + 2 reach and window starts i_lo .. i_hi.
  const int cw = i_hi - i_lo + 1, rows = j_hi - j_lo + win;
  const std::size_t nh = static_cast<std::size_t>(cw) * rows;
  w.hn.resize(nh);
  w.hd.resize(nh);
  w.g2.resize(static_cast<std::size_t>(win));
  w.trow.resize(static_cast<std::size_t>(cw + win));  // a row of r iv
  double gmax = 0;
  for (int o = 0; o < win; ++o) {
    w.g2[o] = g.value[o] * g.value[o];
    gmax = std::max(gmax, g.value[o]);
  }
  for (int y = 0; y < rows; ++y) {
    const std::size_t row = static_cast<std::size_t>(j_lo + y) * pw + i_lo;
    for (int c = 0; c < cw + win - 1; ++c) w.trow[c] = w.rp[row + c] * w.ivp[row + c];
    taps_row(cw, win, g.value.data(), w.trow.data(),
             w.hn.data() + static_cast<std::size_t>(y) * cw);
    taps_row(cw, win, w.g2.data(), w.ivp.data() + row,
             w.hd.data() + static_cast<std::size_t>(y) * cw);
  }
  const double tol = 1e-9 * gmax * gmax * abs_riv + 1e-300;
  const double thr = min_dchi2 * (1 - 1e-6);
  for (int k : cand) {
    const int c = k % nx - i_lo, y0 = k / nx - j_lo;
    double n = 0, d = 0;
    for (int o = 0; o < win; ++o) {
      const std::size_t q = static_cast<std::size_t>(y0 + o) * cw + c;
      n += g.value[o] * w.hn[q];
      d += w.g2[o] * w.hd[q];
    }
    const double num_hi = n + tol;
    if (num_hi <= 0) continue;  // S/N <= 0: never the best
    const double den_lo = d * (1 - 1e-9);
    if (!(den_lo > 1e-200)) return false;
    const double ub = num_hi / std::sqrt(den_lo);
    if (!(ub * ub < thr)) return false;
  }
  return true;
}

// True when a pixel within one PSF sigma (at least 1 px, so that an undersampled PSF still
// has pixels there) of (cx, cy) lies more than cfg.clip_sigma of its noise (sky plus the
// model's photon noise) from the model of the components `c`, as clip_outliers judges a
// single star's pixels.
template <std::size_t K>
bool outlier_near(const Stamp& s, const std::array<Component, K>& c, double cx, double cy,
                  double sigma, const PhotometryConfig& cfg) {
  const double r2 = std::max(sigma, 1.0) * std::max(sigma, 1.0);
  std::array<Profile1D, K> px, py;
  for (std::size_t m = 0; m < K; ++m)
    detail::profiles(s, c[m].x, c[m].y, sigma, cfg.integrate_pixels, false, px[m], py[m]);
  for (int j = 0; j < s.ny; ++j)
    for (int i = 0; i < s.nx; ++i) {
      const std::size_t q = static_cast<std::size_t>(j) * s.nx + i;
      const double dx = s.x0 + i - cx, dy = s.y0 + j - cy;
      if (!s.use[q] || dx * dx + dy * dy > r2) continue;
      double model = 0;
      for (std::size_t m = 0; m < K; ++m) model += c[m].F * px[m].value[i] * py[m].value[j];
      double var = s.sky_var[q];
      if (s.gain[q] > 0) var += std::max(model, 0.0) / s.gain[q];
      if (std::abs(s.data[q] - model) > cfg.clip_sigma * std::sqrt(var)) return true;
    }
  return false;
}

}  // namespace

namespace detail {

void companion_candidates(const double* r, std::ptrdiff_t stride, int nx, int ny, int x0, int y0,
                          double cx, double cy, double rmin, double rmax, std::vector<int>& out) {
  const double lo_out = rmin * rmin * (1 - 1e-9), lo_in = rmin * rmin * (1 + 1e-9);
  const double hi_in = rmax * rmax * (1 - 1e-9), hi_out = rmax * rmax * (1 + 1e-9);
  // Every pixel's index written and the count advanced only for a candidate: the residual's
  // sign is a coin toss per pixel, and branching on it (as this loop did) mispredicted on
  // about every other pixel, most of try_companion's time. The same tests, in scan order.
  out.resize(static_cast<std::size_t>(nx) * ny);
  int* const o = out.data();
  std::size_t nc = 0;
  for (int j = 0; j < ny; ++j) {
    const double dy = y0 + j - cy;
    const double* const rrow = r + j * stride;
    for (int i = 0; i < nx; ++i) {
      const double dx = x0 + i - cx;
      const double d2 = dx * dx + dy * dy;
      bool in = !(d2 < lo_out || d2 > hi_out);
      if (in && !(d2 > lo_in && d2 < hi_in)) {  // the thin shells: hypot decides
        const double d = std::hypot(dx, dy);
        in = !(d < rmin || d > rmax);
      }
      o[nc] = j * nx + i;
      nc += static_cast<std::size_t>(in & !(rrow[i] <= 0));
    }
  }
  out.resize(nc);
}

}  // namespace detail

SplitResult try_companion(ImageView<const float> image, const FloatPlane& rms,
                          ImageView<const MaskBits> mask, const PsfFit& star, double sigma_px,
                          const PixelGain& gain, const PhotometryConfig& cfg, const SplitConfig& sc,
                          std::span<const NeighbourModel> neighbours) {
  SplitResult res;
  if (!(sc.min_dchi2 > 0) || !star.converged || !std::isfinite(star.x) || !std::isfinite(star.y) ||
      !(star.flux > 0) || !(sigma_px > 0))
    return res;
  // A fit that clipped pixels dropped either an outlier (a cosmic ray, a hot pixel) or the
  // core of a companion it could not describe (7 of the 8 companions of S/N 20-220 missed
  // beside S/N >= 50 stars on twelve simulated 4096^2 frames: the clipped core then looks
  // like an outlier to the single fit, and the pair's light centre like one star). The
  // search runs on the unclipped stamp (outliers far from both star and candidate dropped
  // again, below); a companion is accepted only if the pair leaves no pixel beyond
  // clip_sigma within one sigma of it: a PSF cannot absorb a cosmic ray's or a hot pixel's
  // spike, so a companion placed on one fails. The cost: a true companion with a hot pixel
  // within ~2 sigma, or (with a PSF the model does not match) within ~2 sigma of a very
  // bright star whose mismatch residual reaches into that disc, is not accepted either; such
  // stars were never searched before.
  const bool clipped = (star.flags & star_flag::kClippedPixel) != 0;
  PhotometryConfig wide = cfg;
  wide.stamp_radius_sigma = cfg.stamp_radius_sigma + 1.0;
  thread_local CompanionWork work;
  Stamp& s = work.s;
  detail::cut_stamp_into(s, image, rms, mask, gain, star.x, star.y, sigma_px, wide);
  if (s.flags & star_flag::kSaturated) return res;
  detail::subtract_neighbours(s, neighbours, cfg);

  // Matched filter over the residual: the S/N of a point source centred on each pixel
  // between min_sep_sigma and 3 sigma from the star; the best spot seeds the companion.
  const double rmin = sc.min_sep_sigma * sigma_px, rmax = 3.0 * sigma_px;
  // A star centred on a pixel has the same profile wherever it is: g[k], k = -reach..reach,
  // computed once (not per candidate pixel).
  const int reach = static_cast<int>(std::ceil(3.0 * sigma_px));
  // The residual of the star's fit (rp) and each pixel's inverse variance under it (ivp), 0
  // where the pixel is not used, written straight into the filter's arrays: the stamp padded
  // with reach zeros on every side (pw wide; stamp pixel (i, j) at (i + reach, j + reach)).
  // Only the pad is zeroed apart from the stamp's own pixels, all of which are written.
  const int pw = s.nx + 2 * reach, ph = s.ny + 2 * reach;
  std::vector<double>&rp = work.rp, &ivp = work.ivp;
  rp.resize(static_cast<std::size_t>(pw) * ph);
  ivp.resize(rp.size());
  const auto zero = [&](std::size_t from, std::size_t count) {
    std::fill_n(rp.begin() + static_cast<std::ptrdiff_t>(from), count, 0.0);
    std::fill_n(ivp.begin() + static_cast<std::ptrdiff_t>(from), count, 0.0);
  };
  zero(0, static_cast<std::size_t>(reach) * pw);
  zero(static_cast<std::size_t>(reach + s.ny) * pw, static_cast<std::size_t>(reach) * pw);
  const auto at = [&](int i, int j) {
    return static_cast<std::size_t>(j + reach) * pw + static_cast<std::size_t>(i + reach);
  };
  Profile1D &px = work.px, &py = work.py;
  detail::profiles(s, star.x, star.y, sigma_px, cfg.integrate_pixels, false, px, py);
  double abs_riv = 0;  // sum |r| iv over the stamp, for the screen's rounding bound (below)
  std::vector<double>& fpx = work.fpx;
  fpx.resize(static_cast<std::size_t>(s.nx));
  for (int i = 0; i < s.nx; ++i) fpx[i] = star.flux * px.value[i];
  for (int j = 0; j < s.ny; ++j) {
    zero(at(-reach, j), static_cast<std::size_t>(reach));
    zero(at(s.nx, j), static_cast<std::size_t>(reach));
    const std::size_t q = static_cast<std::size_t>(j) * s.nx, qp = at(0, j);
    residual_row(s.nx, fpx.data(), py.value[j], s.on.data() + q, s.data.data() + q,
                 s.sky_var.data() + q, s.gain.data() + q, rp.data() + qp, ivp.data() + qp);
    // In pixel order, as before (an unused pixel adds |0| 0, an exact +0).
    for (int i = 0; i < s.nx; ++i) abs_riv += std::abs(rp[qp + i]) * ivp[qp + i];
  }
  Profile1D& g = work.g;
  if (cfg.integrate_pixels)
    integrated_profile(0.0, sigma_px, -reach, 2 * reach + 1, false, g);
  else
    sampled_profile(0.0, sigma_px, -reach, 2 * reach + 1, false, g);
  double best = 0, best_a = 0;
  int bi = -1, bj = -1;
  // The candidates in scan order. Distances: the squared distance settles all but a thin shell
  // around rmin and rmax (its relative error is ~1e-16, the margins 1e-9), where hypot decides
  // as before.
  std::vector<int>& cand = work.cand;
  detail::companion_candidates(rp.data() + at(0, 0), pw, s.nx, s.ny, s.x0, s.y0, star.x, star.y,
                               rmin, rmax, cand);
  // Each candidate's sums over its (2 reach + 1)^2 window, four candidates at a time (four
  // independent chains of additions instead of one), on r and iv padded with reach zeros: a
  // window's pixels off the stamp add exact zeros, so each candidate's sums are the same terms
  // in the same order as summed over the stamp's part of the window alone.
  // Nearly every star ends here (no companion can reach min_dchi2): told so by the separable
  // sums, it is spared the filter's (2 reach + 1)^2 products per candidate.
  if (companion_cannot_reach(cand, s.nx, pw, reach, g, abs_riv, sc.min_dchi2, work)) return res;
  const int nc = static_cast<int>(cand.size());
  const int w = 2 * reach + 1;
  for (int c0 = 0; c0 < nc; c0 += 4) {
    std::size_t base[4];
    for (int l = 0; l < 4; ++l) {
      const int k = cand[static_cast<std::size_t>(std::min(c0 + l, nc - 1))];
      // The window's first pixel, padded coordinates: (i - reach, j - reach) + reach.
      base[l] = static_cast<std::size_t>(k / s.nx) * pw + static_cast<std::size_t>(k % s.nx);
    }
    double num[4] = {0, 0, 0, 0}, den[4] = {0, 0, 0, 0};
    for (int oy = 0; oy < w; ++oy) {
      const double gy = g.value[static_cast<std::size_t>(oy)];
      const std::size_t row = static_cast<std::size_t>(oy) * pw;
      for (int ox = 0; ox < w; ++ox) {
        const double p = g.value[static_cast<std::size_t>(ox)] * gy;
        const double pp = p * p;
        for (int l = 0; l < 4; ++l) {
          const std::size_t q = base[l] + row + ox;
          num[l] += rp[q] * p * ivp[q];
          den[l] += pp * ivp[q];
        }
      }
    }
    for (int l = 0; l < 4 && c0 + l < nc; ++l) {
      if (!(den[l] > 0)) continue;
      const double snr = num[l] / std::sqrt(den[l]);
      if (snr > best) {
        const int k = cand[static_cast<std::size_t>(c0 + l)];
        best = snr;
        best_a = num[l] / den[l];
        bi = k % s.nx;
        bj = k / s.nx;
      }
    }
  }
  // A companion that could not reach the chi^2 gain (its S/N^2) is not worth the fit.
  if (bi < 0 || best * best < sc.min_dchi2) return res;
  // On a clipped fit's stamp, outliers more than 2 sigma from both the star and the candidate
  // (a hot pixel elsewhere in the stamp) are dropped as the single fit dropped them: left in,
  // they would count in both chi^2 and the excess rule below would veto a true companion
  // for them (a 1000 ADU hot pixel 7.5 px away did, in review).
  if (clipped && cfg.clip_sigma > 0) {
    const double far2 = 4.0 * sigma_px * sigma_px, k2 = cfg.clip_sigma * cfg.clip_sigma;
    const double cx = s.x0 + bi, cy = s.y0 + bj;
    for (int j = 0; j < s.ny; ++j)
      for (int i = 0; i < s.nx; ++i) {
        const std::size_t q = static_cast<std::size_t>(j) * s.nx + i, qp = at(i, j);
        if (!s.use[q] || !(rp[qp] * rp[qp] * ivp[qp] > k2)) continue;
        const double xs = s.x0 + i - star.x, ys = s.y0 + j - star.y;
        const double xc = s.x0 + i - cx, yc = s.y0 + j - cy;
        if (xs * xs + ys * ys <= far2 || xc * xc + yc * yc <= far2) continue;
        s.use[q] = 0;
        s.on[q] = 0.0;
      }
  }

  std::array<Component, 1> one{{{star.flux, star.x, star.y}}};
  auto never = [](const auto&, int) { return false; };
  const JointFit<1> f1 = fit_joint<1>(s, one, sigma_px, cfg, star.x, star.y, 2.0, never);
  if (!f1.converged) return res;
  std::array<Component, 2> two{
      {{std::max(one[0].F - best_a, 0.5 * one[0].F), one[0].x, one[0].y},
       {best_a, static_cast<double>(s.x0 + bi), static_cast<double>(s.y0 + bj)}}};
  auto fades = [&](const std::array<Component, 2>& c, int it) {
    return it >= 4 && std::hypot(c[0].x - c[1].x, c[0].y - c[1].y) < 0.5 * rmin;
  };
  const JointFit<2> f2 =
      fit_joint<2>(s, two, sigma_px, cfg, one[0].x, one[0].y, rmax + sigma_px, fades);
  if (!f2.converged) return res;
  res.dchi2 = f1.chi2 - f2.chi2;
  // A PSF that is not quite the model leaves a chi^2 excess that a second star absorbs in
  // part: a companion must explain at least half of the single fit's excess over its
  // degrees of freedom (a true one explains all of it, up to noise).
  std::size_t n_used = 0;
  for (char u : s.use) n_used += u != 0;
  const double excess = f1.chi2 - (static_cast<double>(n_used) - 3.0);
  const double sep = std::hypot(two[0].x - two[1].x, two[0].y - two[1].y);
  if (res.dchi2 < sc.min_dchi2 || sep < rmin || sep > rmax || excess > 2.0 * res.dchi2) return res;
  // two[1] is the component seeded at the candidate, where a spike would sit (a Gaussian
  // fitted to a spike can come out brighter than the star: "the fainter" could miss it).
  if (clipped && cfg.clip_sigma > 0 && outlier_near(s, two, two[1].x, two[1].y, sigma_px, cfg))
    return res;
  const int ia = two[0].F >= two[1].F ? 0 : 1;
  res.split = true;
  res.a = component_fit(two[ia], f2, ia, sigma_px, s.flags);
  res.b = component_fit(two[1 - ia], f2, 1 - ia, sigma_px, s.flags);
  return res;
}

}  // namespace psfphot
