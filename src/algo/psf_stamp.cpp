// The fitting stamp shared by the PSF photometry (psf_photometry.cpp) and the two-star split
// test (deblend.cpp): cutting it, subtracting neighbours, the profiles and the normal
// equations of the (F, x, y) fit.
#include <algorithm>
#include <cmath>
#include <limits>

#include "psf_stamp.hpp"
#include "psfphot/core/simd.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot::detail {

Stamp cut_stamp(ImageView<const float> image, ImageView<const float> rms,
                ImageView<const MaskBits> mask, const PixelGain& gain, double x, double y,
                double sigma, const PhotometryConfig& cfg) {
  Stamp s;
  const int half = std::max(3, static_cast<int>(std::ceil(cfg.stamp_radius_sigma * sigma)));
  const int cx = static_cast<int>(std::lround(x)), cy = static_cast<int>(std::lround(y));
  int xa = cx - half, xb = cx + half, ya = cy - half, yb = cy + half;
  if (xa < 0 || ya < 0 || xb >= image.width() || yb >= image.height()) s.flags |= star_flag::kEdge;
  xa = std::max(xa, 0);
  ya = std::max(ya, 0);
  xb = std::min(xb, image.width() - 1);
  yb = std::min(yb, image.height() - 1);
  s.x0 = xa;
  s.y0 = ya;
  s.nx = std::max(0, xb - xa + 1);
  s.ny = std::max(0, yb - ya + 1);
  const std::size_t n = static_cast<std::size_t>(s.nx) * s.ny;
  s.data.resize(n);
  s.sky_var.resize(n);
  s.gain.resize(n);
  s.use.resize(n);
  s.any_gain = gain.any();
  // The stamp's rows lie a frame row apart in four frame-sized images, so nearly every row's
  // first read missed the caches, one miss after another: ask for all of them first, so the
  // misses overlap.
  if (s.nx > 0)
    for (int j = 0; j < s.ny; ++j) {
      const int py = ya + j;
      for (int px : {xa, xb}) {
        __builtin_prefetch(&image(px, py));
        if (!rms.empty()) __builtin_prefetch(&rms(px, py));
        if (!mask.empty()) __builtin_prefetch(&mask(px, py));
        if (!gain.flat_response.empty()) __builtin_prefetch(&gain.flat_response(px, py));
      }
    }
  for (int j = 0; j < s.ny; ++j)
    for (int i = 0; i < s.nx; ++i) {
      const std::size_t k = static_cast<std::size_t>(j) * s.nx + i;
      const int px = xa + i, py = ya + j;
      const float v = image(px, py);
      const MaskBits mb = mask.empty() ? 0 : mask(px, py);
      const double r = rms.empty() ? 1.0 : rms(px, py);
      bool ok = std::isfinite(v) && std::isfinite(r) && r > 0 && !(mb & cfg.exclude_bits);
      if (mb & mask::kSaturated) s.flags |= star_flag::kSaturated;
      if (!ok && !(mb & mask::kSaturated)) s.flags |= star_flag::kMaskedPixel;
      s.data[k] = ok ? v : 0.0;
      s.sky_var[k] = ok ? r * r : 1.0;
      const double g = ok ? gain.at(px, py) : 0.0;
      s.gain[k] = g > 0 ? g : std::numeric_limits<double>::infinity();
      s.use[k] = ok;
    }
  return s;
}

// Neighbours' models are taken out of the stamp's data, and their photon noise goes into
// the fixed part of each pixel's variance (their light is still there in the noise).
void subtract_neighbours(Stamp& s, std::span<const NeighbourModel> neighbours,
                         const PhotometryConfig& cfg) {
  Profile1D px, py;
  for (const NeighbourModel& n : neighbours) {
    if (!std::isfinite(n.flux) || !std::isfinite(n.x) || !std::isfinite(n.y) || !(n.sigma > 0))
      continue;
    if (cfg.integrate_pixels) {
      integrated_profile(n.x, n.sigma, s.x0, s.nx, false, px);
      integrated_profile(n.y, n.sigma, s.y0, s.ny, false, py);
    } else {
      sampled_profile(n.x, n.sigma, s.x0, s.nx, false, px);
      sampled_profile(n.y, n.sigma, s.y0, s.ny, false, py);
    }
    for (int j = 0; j < s.ny; ++j)
      for (int i = 0; i < s.nx; ++i) {
        const std::size_t k = static_cast<std::size_t>(j) * s.nx + i;
        const double m = n.flux * px.value[i] * py.value[j];
        s.data[k] -= m;
        if (s.use[k]) s.sky_var[k] += std::max(m, 0.0) / s.gain[k];
      }
  }
}

void profiles(const Stamp& s, double x, double y, double sigma, bool integrate, bool derivs,
              Profile1D& px, Profile1D& py) {
  if (integrate) {
    integrated_profile(x, sigma, s.x0, s.nx, derivs, px);
    integrated_profile(y, sigma, s.y0, s.ny, derivs, py);
  } else {
    sampled_profile(x, sigma, s.x0, s.nx, derivs, px);
    sampled_profile(y, sigma, s.y0, s.ny, derivs, py);
  }
}

// The nine terms of every pixel of one stamp row, elementwise, into t[0..8][i] (vectorised:
// the two divisions per pixel, the star's photon noise and 1/var, held the fit up when they
// ran one at a time). A pixel not in use gets weight 0, so its terms are +-0 and leave every
// sum's bits alone (a sum that starts at +0 never becomes -0). Terms: w J0 J0, w J1 J0,
// w J1 J1, w J2 J0, w J2 J1, w J2 J2, then (w r) J0..2, or with `upper` w J0 J1, w J0 J2,
// w J1 J2. Branch-free and with restrict outputs, or GCC does not vectorise it.
struct RowIn {
  const double *ex, *fdx, *fex;  // per column: E, F dE/dx0, F E
  double ey, dy, F;              // the row's E and dE/dy0; the flux
};
template <bool kWeighted, bool kUpper>
PSFPHOT_VECTOR_CLONES void row_terms(int nx, RowIn in, const double* __restrict on,
                                     const double* __restrict data, const double* __restrict sky,
                                     const double* __restrict gain, double* __restrict t0,
                                     double* __restrict t1, double* __restrict t2,
                                     double* __restrict t3, double* __restrict t4,
                                     double* __restrict t5, double* __restrict t6,
                                     double* __restrict t7, double* __restrict t8) {
  const double* __restrict ex = in.ex, * __restrict fdx = in.fdx, * __restrict fex = in.fex;
  const double ey = in.ey, dy = in.dy, F = in.F;
  for (int i = 0; i < nx; ++i) {
    const double p = ex[i] * ey, m = F * p;
    const double var = sky[i] + std::max(m, 0.0) / gain[i];  // + 0 where gain is +inf
    const double w = (kWeighted ? 1.0 / var : 1.0) * on[i];
    const double j0 = p, j1 = fdx[i] * ey, j2 = fex[i] * dy;
    const double w0 = w * j0, w1 = w * j1, w2 = w * j2;
    t0[i] = w0 * j0;
    t1[i] = w1 * j0;
    t2[i] = w1 * j1;
    t3[i] = w2 * j0;
    t4[i] = w2 * j1;
    t5[i] = w2 * j2;
    if constexpr (kUpper) {
      t6[i] = w0 * j1;
      t7[i] = w0 * j2;
      t8[i] = w1 * j2;
    } else {
      const double wr = w * (data[i] - m);
      t6[i] = wr * j0;
      t7[i] = wr * j1;
      t8[i] = wr * j2;
    }
  }
}

// The width-fitting path builds each pixel's Jacobian as an Eigen vector and adds w J J^T: an
// outer product of 16 terms that GCC compiles into two 8-byte stores read back as one 16-byte
// load (a store-forwarding stall per pixel), for ten useful terms. Here each term is the same
// product ((w J_a) J_b, (w r) J_a, with F dE/dx0 and F E per column) computed for a whole row
// at once (row_terms), then summed in pixel order, so every sum keeps its bits. The upper
// triangle is only summed for the covariance (A.inverse() reads it; its products round
// differently, (w J_b) J_a); the LDLT reads the lower one only, so for a step it stays 0.
void normal_equations_xy(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                         bool weighted, bool covariance, std::vector<double>& scratch,
                         Eigen::Matrix4d& A, Eigen::Vector4d& b) {
  const int nx = s.nx;
  const std::size_t n = static_cast<std::size_t>(nx) * s.ny;
  scratch.resize(11 * static_cast<std::size_t>(nx) + n);
  double* const fdx = scratch.data();
  double* const fex = fdx + nx;
  double* const t = fex + nx;
  // The use flags as 0/1 weights: as chars they would make GCC vectorise 16 pixels at a time,
  // more than a stamp row has.
  double* const on = t + 9 * static_cast<std::size_t>(nx);
  for (std::size_t k = 0; k < n; ++k) on[k] = s.use[k] != 0 ? 1.0 : 0.0;
  for (int i = 0; i < nx; ++i) {
    fdx[i] = F * px.d_x0[i];
    fex[i] = F * px.value[i];
  }
  // The sums, in pixel order as the per-pixel Eigen form added them: a00 .. a22 the lower
  // triangle, then b0..2 or the upper triangle u01, u02, u12.
  double sum[9] = {};
  for (int j = 0; j < s.ny; ++j) {
    const std::size_t row = static_cast<std::size_t>(j) * nx;
    auto* const terms = covariance ? row_terms<true, true>
                        : weighted ? row_terms<true, false>
                                   : row_terms<false, false>;
    terms(nx, {px.value.data(), fdx, fex, py.value[j], py.d_x0[j], F}, on + row,
          s.data.data() + row, s.sky_var.data() + row, s.gain.data() + row, t, t + nx, t + 2 * nx,
          t + 3 * nx, t + 4 * nx, t + 5 * nx, t + 6 * nx, t + 7 * nx, t + 8 * nx);
    for (int i = 0; i < nx; ++i)
      for (int k = 0; k < 9; ++k) sum[k] += t[k * nx + i];
  }
  const double *a = sum, *u = sum + 6;
  if (covariance) {
    A << a[0], u[0], u[1], 0.0,  //
        a[1], a[2], u[2], 0.0,   //
        a[3], a[4], a[5], 0.0,   //
        0.0, 0.0, 0.0, 1.0;
  } else {
    A << a[0], 0.0, 0.0, 0.0,   //
        a[1], a[2], 0.0, 0.0,   //
        a[3], a[4], a[5], 0.0,  //
        0.0, 0.0, 0.0, 1.0;
    b << u[0], u[1], u[2], 0.0;
  }
}

template <int K>
double joint_normal_equations(const Stamp& s, const std::array<Profile1D, K>& px,
                              const std::array<Profile1D, K>& py, const std::array<double, K>& F,
                              bool weighted, bool full, std::vector<double>& scratch,
                              Eigen::Matrix<double, 3 * K, 3 * K>& A,
                              Eigen::Matrix<double, 3 * K, 1>& b) {
  constexpr int n = 3 * K;
  const int nx = s.nx;
  // Per star and column: E, F dE/dx0, F E (so (F E) E_y is the product F * ex * ey).
  scratch.resize(3 * static_cast<std::size_t>(K) * nx);
  std::array<const double*, K> ex, fdx, fex;
  for (int m = 0; m < K; ++m) {
    double* const d = scratch.data() + 3 * static_cast<std::size_t>(m) * nx;
    for (int i = 0; i < nx; ++i) {
      d[i] = F[m] * px[m].d_x0[i];
      d[nx + i] = F[m] * px[m].value[i];
    }
    ex[m] = px[m].value.data();
    fdx[m] = d;
    fex[m] = d + nx;
  }
  double a[n][n] = {}, bb[n] = {}, chi2 = 0, J[n];
  for (int j = 0; j < s.ny; ++j) {
    const std::size_t row = static_cast<std::size_t>(j) * nx;
    for (int i = 0; i < nx; ++i) {
      if (!s.use[row + i]) continue;
      double model = 0;
      for (int m = 0; m < K; ++m) {
        const double ey = py[m].value[j];
        model += fex[m][i] * ey;
        J[3 * m] = ex[m][i] * ey;
        J[3 * m + 1] = fdx[m][i] * ey;
        J[3 * m + 2] = fex[m][i] * py[m].d_x0[j];
      }
      double var = s.sky_var[row + i];
      var += std::max(model, 0.0) / s.gain[row + i];
      const double w = weighted ? 1.0 / var : 1.0;
      const double r = s.data[row + i] - model;
      if (full) chi2 += r * r / var;
      const double wr = w * r;
      for (int p = 0; p < n; ++p) {
        const double wp = w * J[p];
        const int last = full ? n - 1 : p;
        for (int q = 0; q <= last; ++q) a[p][q] += wp * J[q];
        bb[p] += wr * J[p];
      }
    }
  }
  for (int p = 0; p < n; ++p) {
    b(p) = bb[p];
    for (int q = 0; q < n; ++q) A(p, q) = full || q <= p ? a[p][q] : 0.0;
  }
  return chi2;
}

template double joint_normal_equations<1>(const Stamp&, const std::array<Profile1D, 1>&,
                                          const std::array<Profile1D, 1>&,
                                          const std::array<double, 1>&, bool, bool,
                                          std::vector<double>&, Eigen::Matrix<double, 3, 3>&,
                                          Eigen::Matrix<double, 3, 1>&);
template double joint_normal_equations<2>(const Stamp&, const std::array<Profile1D, 2>&,
                                          const std::array<Profile1D, 2>&,
                                          const std::array<double, 2>&, bool, bool,
                                          std::vector<double>&, Eigen::Matrix<double, 6, 6>&,
                                          Eigen::Matrix<double, 6, 1>&);

}  // namespace psfphot::detail
