// The fitting stamp shared by the PSF photometry (psf_photometry.cpp) and the two-star split
// test (deblend.cpp): cutting it, subtracting neighbours, the profiles and the normal
// equations of the (F, x, y) fit.
#include <algorithm>
#include <cmath>

#include "psf_stamp.hpp"
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
      s.gain[k] = ok ? gain.at(px, py) : 0.0;
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
        if (s.gain[k] > 0 && s.use[k]) s.sky_var[k] += std::max(m, 0.0) / s.gain[k];
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

// The normal equations J^T W J d = J^T W r of the (F, x, y) fit at flux F over the stamp, in
// the 4x4 layout of the width-fitting path with the unused fourth parameter decoupled
// (A(3, 3) = 1, zeros elsewhere in its row and column). The general path builds each pixel's
// Jacobian as an Eigen vector and adds w J J^T: an outer product of 16 terms that GCC compiles
// into two 8-byte stores read back as one 16-byte load (a store-forwarding stall per pixel),
// for ten useful terms. Here the terms are plain scalars, each the same product in the same
// order as there ((w J_a) J_b, (w r) J_a, F dE/dx0 per column), so every sum keeps its bits.
// The upper triangle is only summed for the covariance (A.inverse() reads it; its products
// round differently, (w J_b) J_a); the LDLT reads the lower one only, so for a step it stays 0.
// `covariance`: weights always 1/var, and b is left alone. `scratch` holds F dE/dx0 and F E
// per column.
void normal_equations_xy(const Stamp& s, const Profile1D& px, const Profile1D& py, double F,
                         bool weighted, bool covariance, std::vector<double>& scratch,
                         Eigen::Matrix4d& A, Eigen::Vector4d& b) {
  const int nx = s.nx;
  scratch.resize(2 * static_cast<std::size_t>(nx));
  double* const fdx = scratch.data();
  double* const fex = fdx + nx;
  for (int i = 0; i < nx; ++i) {
    fdx[i] = F * px.d_x0[i];
    fex[i] = F * px.value[i];
  }
  double a00 = 0, a10 = 0, a11 = 0, a20 = 0, a21 = 0, a22 = 0;
  double u01 = 0, u02 = 0, u12 = 0;  // upper triangle (covariance only)
  double b0 = 0, b1 = 0, b2 = 0;
  const double* const ex = px.value.data();
  for (int j = 0; j < s.ny; ++j) {
    const double ey = py.value[j], dy = py.d_x0[j];
    const std::size_t row = static_cast<std::size_t>(j) * nx;
    const char* const use = s.use.data() + row;
    const double* const data = s.data.data() + row;
    const double* const sky = s.sky_var.data() + row;
    const double* const gain = s.gain.data() + row;
    for (int i = 0; i < nx; ++i) {
      if (!use[i]) continue;
      const double p = ex[i] * ey, m = F * p;
      double var = sky[i];
      if (gain[i] > 0) var += std::max(m, 0.0) / gain[i];
      const double w = (weighted || covariance) ? 1.0 / var : 1.0;
      const double j0 = p, j1 = fdx[i] * ey, j2 = fex[i] * dy;
      const double w0 = w * j0, w1 = w * j1, w2 = w * j2;
      a00 += w0 * j0;
      a10 += w1 * j0;
      a11 += w1 * j1;
      a20 += w2 * j0;
      a21 += w2 * j1;
      a22 += w2 * j2;
      if (covariance) {
        u01 += w0 * j1;
        u02 += w0 * j2;
        u12 += w1 * j2;
      } else {
        const double wr = w * (data[i] - m);
        b0 += wr * j0;
        b1 += wr * j1;
        b2 += wr * j2;
      }
    }
  }
  A << a00, u01, u02, 0.0,  //
      a10, a11, u12, 0.0,   //
      a20, a21, a22, 0.0,   //
      0.0, 0.0, 0.0, 1.0;
  if (!covariance) b << b0, b1, b2, 0.0;
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
      if (s.gain[row + i] > 0) var += std::max(model, 0.0) / s.gain[row + i];
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
