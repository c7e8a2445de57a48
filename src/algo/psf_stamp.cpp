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

namespace {

typedef double V4 __attribute__((vector_size(32)));

// Joint fit, first pass over a row: per pixel the weight w (0 for a pixel not in use), w r
// and the chi^2 term r^2 / var (x 0 or 1), elementwise so that GCC vectorises the divisions.
// The model is summed as the scalar form did: 0 + (F E_x) E_y over the stars in order.
template <int K, bool kWeighted>
PSFPHOT_VECTOR_CLONES void joint_row_weights(
    int nx, const std::array<const double*, K>& fex, const std::array<double, K>& ey,
    const double* __restrict on, const double* __restrict data, const double* __restrict sky,
    const double* __restrict gain, double* __restrict w_out, double* __restrict wr_out,
    double* __restrict chi_out) {
  for (int i = 0; i < nx; ++i) {
    double model = 0;
    for (int m = 0; m < K; ++m) model += fex[m][i] * ey[m];
    const double var = sky[i] + std::max(model, 0.0) / gain[i];  // + 0 where gain is +inf
    const double w = (kWeighted ? 1.0 / var : 1.0) * on[i];
    const double r = data[i] - model;
    w_out[i] = w;
    wr_out[i] = w * r;
    chi_out[i] = r * r / var * on[i];
  }
}

// Second pass: the sums of (w J_p) J_q and (w r) J_p in pixel order, each pixel's terms four
// parameters at a time (lanes of V4, so each lane's sum runs in pixel order as the scalar one
// did). cols: per column the 4 * NV factors of J (E, F dE/dx0, F E per star, zero padded);
// rowf: the row's factors (E_y, E_y, dE_y/dy0 per star). Rows p of the lower triangle only
// need lanes q <= p unless kFull.
template <int NV, int N, bool kFull>
PSFPHOT_VECTOR_CLONES void joint_row_sums(int nx, const double* __restrict cols, const V4* rowf,
                                          const double* __restrict w, const double* __restrict wr,
                                          V4 (&acc)[N][NV], V4 (&accb)[NV]) {
  for (int i = 0; i < nx; ++i) {
    V4 J[NV], wJ[NV];
    for (int v = 0; v < NV; ++v) {
      V4 c;
      __builtin_memcpy(&c, cols + (static_cast<std::size_t>(i) * NV + v) * 4, sizeof c);
      J[v] = c * rowf[v];
      wJ[v] = w[i] * J[v];
      accb[v] += wr[i] * J[v];
    }
    for (int p = 0; p < N; ++p) {
      const double wp = wJ[p / 4][p % 4];
      for (int v = 0; v < NV; ++v)
        if (kFull || v <= p / 4) acc[p][v] += wp * J[v];
    }
  }
}

}  // namespace

template <int K>
double joint_normal_equations(const Stamp& s, const std::array<Profile1D, K>& px,
                              const std::array<Profile1D, K>& py, const std::array<double, K>& F,
                              bool weighted, bool full, std::vector<double>& scratch,
                              Eigen::Matrix<double, 3 * K, 3 * K>& A,
                              Eigen::Matrix<double, 3 * K, 1>& b) {
  constexpr int n = 3 * K, nv = (n + 3) / 4;
  const int nx = s.nx;
  const std::size_t npx = static_cast<std::size_t>(nx) * s.ny;
  // Scratch: F E per star and column; the J factors per column (4 nv each); the use flags as
  // 0/1 weights; a row's w, w r and chi^2 terms.
  scratch.resize(static_cast<std::size_t>(K) * nx + 4 * nv * static_cast<std::size_t>(nx) + npx +
                 3 * static_cast<std::size_t>(nx));
  double* const fexd = scratch.data();
  double* const cols = fexd + static_cast<std::size_t>(K) * nx;
  double* const on = cols + 4 * nv * static_cast<std::size_t>(nx);
  double* const wrow = on + npx;
  double* const wrrow = wrow + nx;
  double* const chirow = wrrow + nx;
  std::array<const double*, K> fex;
  for (int m = 0; m < K; ++m) {
    double* const f = fexd + static_cast<std::size_t>(m) * nx;
    for (int i = 0; i < nx; ++i) f[i] = F[m] * px[m].value[i];
    fex[m] = f;
  }
  for (int i = 0; i < nx; ++i) {
    double* const c = cols + static_cast<std::size_t>(i) * 4 * nv;
    for (int q = 0; q < 4 * nv; ++q) c[q] = 0.0;
    for (int m = 0; m < K; ++m) {
      c[3 * m] = px[m].value[i];
      c[3 * m + 1] = F[m] * px[m].d_x0[i];
      c[3 * m + 2] = fex[m][i];
    }
  }
  for (std::size_t k = 0; k < npx; ++k) on[k] = s.use[k] != 0 ? 1.0 : 0.0;
  V4 acc[n][nv] = {}, accb[nv] = {};
  double chi2 = 0;
  for (int j = 0; j < s.ny; ++j) {
    const std::size_t row = static_cast<std::size_t>(j) * nx;
    std::array<double, K> ey;
    V4 rowf[nv] = {};
    for (int m = 0; m < K; ++m) {
      ey[m] = py[m].value[j];
      rowf[(3 * m) / 4][(3 * m) % 4] = ey[m];
      rowf[(3 * m + 1) / 4][(3 * m + 1) % 4] = ey[m];
      rowf[(3 * m + 2) / 4][(3 * m + 2) % 4] = py[m].d_x0[j];
    }
    (weighted ? joint_row_weights<K, true>
              : joint_row_weights<K, false>)(nx, fex, ey, on + row, s.data.data() + row,
                                             s.sky_var.data() + row, s.gain.data() + row, wrow,
                                             wrrow, chirow);
    (full ? joint_row_sums<nv, n, true> : joint_row_sums<nv, n, false>)(nx, cols, rowf, wrow, wrrow,
                                                                        acc, accb);
    if (full)
      for (int i = 0; i < nx; ++i) chi2 += chirow[i];
  }
  for (int p = 0; p < n; ++p) {
    b(p) = accb[p / 4][p % 4];
    for (int q = 0; q < n; ++q) A(p, q) = full || q <= p ? acc[p][q / 4][q % 4] : 0.0;
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
