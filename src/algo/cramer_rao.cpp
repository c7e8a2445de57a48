#include "psfphot/algo/cramer_rao.hpp"

#include <Eigen/Dense>
#include <cmath>
#include <numbers>
#include <vector>

namespace psfphot {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double gauss_pdf(double u) {
  return std::exp(-0.5 * u * u) / std::sqrt(2.0 * std::numbers::pi);
}

}  // namespace

double background_limited_snr(double flux_adu, double psf_sigma_px, double sky_var_adu2) {
  if (!std::isfinite(flux_adu) || !(psf_sigma_px > 0) || !(sky_var_adu2 > 0)) return kNaN;
  return flux_adu / std::sqrt(4.0 * std::numbers::pi * psf_sigma_px * psf_sigma_px * sky_var_adu2);
}

StarBound simple_bound(double snr, double psf_sigma_px) {
  StarBound b;
  if (!(snr > 0) || !(psf_sigma_px > 0) || !std::isfinite(snr)) return b;
  b.flux_frac = 1.0 / snr;
  b.x_px = b.y_px = std::numbers::sqrt2 * psf_sigma_px / snr;
  return b;
}

double pixel_fraction_1d(int i, double x, double psf_sigma_px) {
  const double a = (i - 0.5 - x) / (psf_sigma_px * std::numbers::sqrt2);
  const double b = (i + 0.5 - x) / (psf_sigma_px * std::numbers::sqrt2);
  // Difference of erfc in the tails keeps relative precision where erf rounds to +-1.
  if (a > 0) return 0.5 * (std::erfc(a) - std::erfc(b));
  if (b < 0) return 0.5 * (std::erfc(-b) - std::erfc(-a));
  return 0.5 * (std::erf(b) - std::erf(a));
}

double pixel_fraction_1d_dx(int i, double x, double psf_sigma_px) {
  const double ua = (i - 0.5 - x) / psf_sigma_px;
  const double ub = (i + 0.5 - x) / psf_sigma_px;
  return -(gauss_pdf(ub) - gauss_pdf(ua)) / psf_sigma_px;
}

StarBound full_bound(double flux_adu, double x, double y, double psf_sigma_px, double sky_var_adu2,
                     double gain_e_per_adu, double stamp_radius_sigma) {
  StarBound out;
  if (!(flux_adu > 0) || !(psf_sigma_px > 0) || !(sky_var_adu2 >= 0) || !(gain_e_per_adu > 0) ||
      !std::isfinite(flux_adu) || !std::isfinite(x) || !std::isfinite(y) ||
      !std::isfinite(psf_sigma_px) || !std::isfinite(sky_var_adu2) ||
      !std::isfinite(gain_e_per_adu) || !(stamp_radius_sigma >= 1) ||
      !std::isfinite(stamp_radius_sigma))
    return out;
  const int r = static_cast<int>(std::ceil(stamp_radius_sigma * psf_sigma_px));
  const int cx = static_cast<int>(std::lround(x)), cy = static_cast<int>(std::lround(y));
  const int n = 2 * r + 1;
  // The pixel-integrated Gaussian is separable: one erf table per axis.
  std::vector<double> px(n), dpx(n), py(n), dpy(n);
  for (int k = 0; k < n; ++k) {
    px[k] = pixel_fraction_1d(cx - r + k, x, psf_sigma_px);
    dpx[k] = pixel_fraction_1d_dx(cx - r + k, x, psf_sigma_px);
    py[k] = pixel_fraction_1d(cy - r + k, y, psf_sigma_px);
    dpy[k] = pixel_fraction_1d_dx(cy - r + k, y, psf_sigma_px);
  }
  Eigen::Matrix3d fisher = Eigen::Matrix3d::Zero();
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < n; ++i) {
      const double p = px[i] * py[j];
      const double var = sky_var_adu2 + flux_adu * p / gain_e_per_adu;
      if (!(var > 0)) continue;
      const Eigen::Vector3d d(p, flux_adu * dpx[i] * py[j], flux_adu * px[i] * dpy[j]);
      fisher.noalias() += d * d.transpose() / var;
    }
  }
  Eigen::LDLT<Eigen::Matrix3d> ldlt(fisher);
  if (ldlt.info() != Eigen::Success || !ldlt.isPositive()) return out;
  const Eigen::Matrix3d cov = ldlt.solve(Eigen::Matrix3d::Identity());
  if (!(cov(0, 0) > 0) || !(cov(1, 1) > 0) || !(cov(2, 2) > 0) || !cov.allFinite()) return out;
  out.flux_frac = std::sqrt(cov(0, 0)) / flux_adu;
  out.x_px = std::sqrt(cov(1, 1));
  out.y_px = std::sqrt(cov(2, 2));
  return out;
}

}  // namespace psfphot
