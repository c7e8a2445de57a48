// The sums the fits make over a fitting stamp (psf_stamp.hpp): the normal equations of the
// (F, x, y) fit and of K stars fitted jointly, and the fixed-position amplitude's sums,
// vectorised with GCC vector types in pixel order (split from psf_stamp.cpp, which cuts the
// stamp).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "psf_stamp.hpp"
#include "psfphot/core/simd.hpp"

namespace psfphot::detail {

namespace {

typedef double V4 __attribute__((vector_size(32)));

// Joint fit, first pass over a row: per pixel the weight w (0 for a pixel not in use), w r
// and, with kChi, the chi^2 term r^2 / var (x 0 or 1), elementwise so that GCC vectorises the
// divisions. The model is summed as the scalar form did: 0 + (F E_x) E_y over the stars in
// order. Without kChi chi_out is not written: a fit's steps never read chi^2, and its division
// per pixel was the second of the row's two.
template <int K, bool kWeighted, bool kChi>
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
    if (kChi) chi_out[i] = r * r / var * on[i];
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
                                          V4 (&acc_io)[N][NV], V4 (&accb_io)[NV]) {
  // Local copies, so that the sums stay in registers (the outputs might alias the inputs).
  V4 acc[N][NV], accb[NV];
  for (int v = 0; v < NV; ++v) {
    accb[v] = accb_io[v];
    for (int p = 0; p < N; ++p) acc[p][v] = acc_io[p][v];
  }
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
  for (int v = 0; v < NV; ++v) {
    accb_io[v] = accb[v];
    for (int p = 0; p < N; ++p) acc_io[p][v] = acc[p][v];
  }
}

// joint_row_sums<1, 3, false> (the (F, x, y) fit's step: the lower triangle and b) with the
// triangle in two vectors instead of three: lanes (A00, A10, A11, -) and (A20, A21, A22, -).
// Each lane is the same product (w J_p) J_q added in pixel order as there (the first vector's
// factors are lanes of w J and J moved into place, not recomputed), so every sum keeps its
// bits; per pixel one multiply and one add fewer (of ~16 vector operations). The fourth lanes
// are not read.
PSFPHOT_VECTOR_CLONES void xy_row_sums_lower(int nx, const double* __restrict cols,
                                             const V4* rowf_in, const double* __restrict w,
                                             const double* __restrict wr, V4 (&acc_io)[3]) {
  // acc_io: (A00, A10, A11, -), (A20, A21, A22, -), b. Local copies, kept in registers.
  const V4 rowf = *rowf_in;
  V4 acc01 = acc_io[0], acc2 = acc_io[1], accb = acc_io[2];
  for (int i = 0; i < nx; ++i) {
    V4 c;
    __builtin_memcpy(&c, cols + static_cast<std::size_t>(i) * 4, sizeof c);
    const V4 J = c * rowf;
    const V4 wJ = w[i] * J;
    accb += wr[i] * J;
    const V4 wj_p = __builtin_shufflevector(wJ, wJ, 0, 1, 1, 3);  // w J_p for (00, 10, 11)
    const V4 j_q = __builtin_shufflevector(J, J, 0, 0, 1, 3);     // J_q for (00, 10, 11)
    acc01 += wj_p * j_q;
    acc2 += wJ[2] * J;
  }
  acc_io[0] = acc01;
  acc_io[1] = acc2;
  acc_io[2] = accb;
}

// The (F, x, y) fit's first pass over a row: per pixel w (0 for a pixel not in use) and
// w r, with the model F (E_x E_y) as the scalar form had it.
template <bool kWeighted>
PSFPHOT_VECTOR_CLONES void xy_row_weights(int nx, const double* __restrict ex, double ey, double F,
                                          const double* __restrict on,
                                          const double* __restrict data,
                                          const double* __restrict sky,
                                          const double* __restrict gain, double* __restrict w_out,
                                          double* __restrict wr_out) {
  for (int i = 0; i < nx; ++i) {
    const double m = F * (ex[i] * ey);
    const double var = sky[i] + std::max(m, 0.0) / gain[i];  // + 0 where gain is +inf
    const double w = (kWeighted ? 1.0 / var : 1.0) * on[i];
    w_out[i] = w;
    wr_out[i] = w * (data[i] - m);
  }
}

// The fixed-position amplitude's terms over a row: (w d) p, (w p) p and (((w w) p) p) var,
// the products psf_photometry.cpp's scalar loop formed, with var = sky + max(F p, 0) / gain
// (F = 0: the sky alone, as sky + 0 is sky) and w = 0 for a pixel not in use. Without kVar
// the third term is not formed (its sum is not wanted).
template <bool kWeighted, bool kVar>
PSFPHOT_VECTOR_CLONES void amplitude_row_terms(int nx, const double* __restrict ex, double ey,
                                               double F, const double* __restrict on,
                                               const double* __restrict data,
                                               const double* __restrict sky,
                                               const double* __restrict gain, double* __restrict t0,
                                               double* __restrict t1, double* __restrict t2) {
  for (int i = 0; i < nx; ++i) {
    const double p = ex[i] * ey;
    const double var = sky[i] + std::max(F * p, 0.0) / gain[i];
    const double w = (kWeighted ? 1.0 / var : 1.0) * on[i];
    t0[i] = w * data[i] * p;
    t1[i] = w * p * p;
    if (kVar) t2[i] = w * w * p * p * var;
  }
}

// The row sums of amplitude_row_terms' arrays (the third only with kVar), four pixels to a
// partial sum (independent additions, not one chain per sum; the order changes the last bits).
// Each sum is its own chain, so leaving out the third does not change the others' bits.
template <bool kVar>
PSFPHOT_VECTOR_CLONES void sum_terms(int nx, const double* __restrict t0,
                                     const double* __restrict t1, const double* __restrict t2,
                                     double& s0_out, double& s1_out, double& s2_out) {
  V4 a0 = {}, a1 = {}, a2 = {};
  int i = 0;
  for (; i + 4 <= nx; i += 4) {
    V4 v0, v1, v2;
    __builtin_memcpy(&v0, t0 + i, sizeof v0);
    __builtin_memcpy(&v1, t1 + i, sizeof v1);
    a0 += v0;
    a1 += v1;
    if (kVar) {
      __builtin_memcpy(&v2, t2 + i, sizeof v2);
      a2 += v2;
    }
  }
  double s0 = (a0[0] + a0[1]) + (a0[2] + a0[3]);
  double s1 = (a1[0] + a1[1]) + (a1[2] + a1[3]);
  double s2 = (a2[0] + a2[1]) + (a2[2] + a2[3]);
  for (; i < nx; ++i) {
    s0 += t0[i];
    s1 += t1[i];
    if (kVar) s2 += t2[i];
  }
  s0_out = s0;
  s1_out = s1;
  s2_out = s2;
}

}  // namespace

// The width-fitting path builds each pixel's Jacobian as an Eigen vector and adds w J J^T: an
// outer product of 16 terms that GCC compiles into two 8-byte stores read back as one 16-byte
// load (a store-forwarding stall per pixel). Here each term is the same product ((w J_a) J_b,
// (w r) J_a, with F dE/dx0 and F E per column), the weights computed a row at a time and the
// sums four parameters to a lane, each summed in pixel order, so every sum keeps its bits.
// The upper triangle is only read for the covariance (A.inverse(); its products round
// differently, (w J_b) J_a); the LDLT reads the lower one only, so for a step it is 0.
void normal_equations_xy(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                         bool weighted, bool covariance, std::vector<double>& scratch,
                         Eigen::Matrix4d& A, Eigen::Vector4d& b) {
  const int nx = s.nx;
  scratch.resize(6 * static_cast<std::size_t>(nx));
  double* const cols = scratch.data();  // per column: E, F dE/dx0, F E, 0
  double* const wrow = cols + 4 * static_cast<std::size_t>(nx);
  double* const wrrow = wrow + nx;
  const double* const on = s.on.data();
  for (int i = 0; i < nx; ++i) {
    double* const c = cols + 4 * static_cast<std::size_t>(i);
    c[0] = px.value[i];
    c[1] = F * px.d_x0[i];
    c[2] = F * px.value[i];
    c[3] = 0.0;
  }
  V4 acc[3][1] = {}, accb[1] = {};
  V4 low[3] = {};  // a step's lower triangle and b (xy_row_sums_lower)
  const bool w_on = weighted || covariance;
  for (int j = 0; j < s.ny; ++j) {
    const std::size_t row = static_cast<std::size_t>(j) * nx;
    const double ey = py.value[j];
    const V4 rowf[1] = {V4{ey, ey, py.d_x0[j], 0.0}};
    (w_on ? xy_row_weights<true>
          : xy_row_weights<false>)(nx, px.value.data(), ey, F, on + row, s.data.data() + row,
                                   s.sky_var.data() + row, s.gain.data() + row, wrow, wrrow);
    if (covariance)
      joint_row_sums<1, 3, true>(nx, cols, rowf, wrow, wrrow, acc, accb);
    else
      xy_row_sums_lower(nx, cols, rowf, wrow, wrrow, low);
  }
  if (!covariance) {
    acc[0][0] = V4{low[0][0], 0.0, 0.0, 0.0};
    acc[1][0] = V4{low[0][1], low[0][2], 0.0, 0.0};
    acc[2][0] = low[1];
    accb[0] = low[2];
  }
  const auto a = [&](int p, int q) { return acc[p][0][q]; };
  if (covariance) {
    A << a(0, 0), a(0, 1), a(0, 2), 0.0,  //
        a(1, 0), a(1, 1), a(1, 2), 0.0,   //
        a(2, 0), a(2, 1), a(2, 2), 0.0,   //
        0.0, 0.0, 0.0, 1.0;
  } else {
    A << a(0, 0), 0.0, 0.0, 0.0,         //
        a(1, 0), a(1, 1), 0.0, 0.0,      //
        a(2, 0), a(2, 1), a(2, 2), 0.0,  //
        0.0, 0.0, 0.0, 1.0;
    b << accb[0][0], accb[0][1], accb[0][2], 0.0;
  }
}

// The width fit's sums in the same kernels: the fourth parameter's Jacobian
// F (dE_x/ds E_y + E_x dE_y/ds) does not factor into a column and a row term, so it is formed
// per row into the columns' fourth lane (the row factor there is 1.0, an exact product). The
// loop in psf_photometry.cpp this replaces skipped unused pixels; here they add (0 J_a) J_b,
// an exact +-0, so every sum keeps its bits. Both triangles are (w J_a) J_b, as the Eigen form
// w J J^T had them.
void normal_equations_xys(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                          bool weighted, bool covariance, std::vector<double>& scratch,
                          Eigen::Matrix4d& A, Eigen::Vector4d& b) {
  const int nx = s.nx;
  scratch.resize(6 * static_cast<std::size_t>(nx));
  double* const cols = scratch.data();  // per column: E, F dE/dx0, F E, (the row's J_s)
  double* const wrow = cols + 4 * static_cast<std::size_t>(nx);
  double* const wrrow = wrow + nx;
  const double* const on = s.on.data();
  for (int i = 0; i < nx; ++i) {
    double* const c = cols + 4 * static_cast<std::size_t>(i);
    c[0] = px.value[i];
    c[1] = F * px.d_x0[i];
    c[2] = F * px.value[i];
  }
  V4 acc[4][1] = {}, accb[1] = {};
  const bool w_on = weighted || covariance;
  for (int j = 0; j < s.ny; ++j) {
    const std::size_t row = static_cast<std::size_t>(j) * nx;
    const double ey = py.value[j], dsy = py.d_s[j];
    for (int i = 0; i < nx; ++i)
      cols[4 * static_cast<std::size_t>(i) + 3] = F * (px.d_s[i] * ey + px.value[i] * dsy);
    const V4 rowf[1] = {V4{ey, ey, py.d_x0[j], 1.0}};
    (w_on ? xy_row_weights<true>
          : xy_row_weights<false>)(nx, px.value.data(), ey, F, on + row, s.data.data() + row,
                                   s.sky_var.data() + row, s.gain.data() + row, wrow, wrrow);
    joint_row_sums<1, 4, true>(nx, cols, rowf, wrow, wrrow, acc, accb);
  }
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 4; ++q) A(p, q) = acc[p][0][q];
  if (!covariance) b << accb[0][0], accb[0][1], accb[0][2], accb[0][3];
}

void amplitude_sums(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                    bool weighted, std::vector<double>& scratch, double& num, double& den,
                    double& var_num, bool want_var) {
  const int nx = s.nx;
  scratch.resize(3 * static_cast<std::size_t>(nx));
  double* const t = scratch.data();
  const double* const on = s.on.data();
  num = den = var_num = 0;
  const auto terms =
      weighted ? (want_var ? amplitude_row_terms<true, true> : amplitude_row_terms<true, false>)
               : (want_var ? amplitude_row_terms<false, true> : amplitude_row_terms<false, false>);
  const auto sums = want_var ? sum_terms<true> : sum_terms<false>;
  for (int j = 0; j < s.ny; ++j) {
    const std::size_t row = static_cast<std::size_t>(j) * nx;
    terms(nx, px.value.data(), py.value[j], F, on + row, s.data.data() + row,
          s.sky_var.data() + row, s.gain.data() + row, t, t + nx, t + 2 * nx);
    double s0, s1, s2;
    sums(nx, t, t + nx, t + 2 * nx, s0, s1, s2);
    num += s0;
    den += s1;
    var_num += s2;
  }
  if (!want_var) var_num = std::numeric_limits<double>::quiet_NaN();
}

template <int K>
double joint_normal_equations(const Stamp& s, const std::array<Profile1D, K>& px,
                              const std::array<Profile1D, K>& py, const std::array<double, K>& F,
                              bool weighted, bool full, std::vector<double>& scratch,
                              Eigen::Matrix<double, 3 * K, 3 * K>& A,
                              Eigen::Matrix<double, 3 * K, 1>& b) {
  constexpr int n = 3 * K, nv = (n + 3) / 4;
  const int nx = s.nx;
  // Scratch: F E per star and column; the J factors per column (4 nv each); a row's w, w r
  // and chi^2 terms.
  scratch.resize(static_cast<std::size_t>(K) * nx + 4 * nv * static_cast<std::size_t>(nx) +
                 3 * static_cast<std::size_t>(nx));
  double* const fexd = scratch.data();
  double* const cols = fexd + static_cast<std::size_t>(K) * nx;
  const double* const on = s.on.data();
  double* const wrow = cols + 4 * nv * static_cast<std::size_t>(nx);
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
    const auto weights =
        full ? (weighted ? joint_row_weights<K, true, true> : joint_row_weights<K, false, true>)
             : (weighted ? joint_row_weights<K, true, false> : joint_row_weights<K, false, false>);
    weights(nx, fex, ey, on + row, s.data.data() + row, s.sky_var.data() + row, s.gain.data() + row,
            wrow, wrrow, chirow);
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
