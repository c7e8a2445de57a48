#include "psfphot/algo/gaussian_psf.hpp"

#include <cmath>

namespace psfphot {
namespace {
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrtPi = 0.56418958354775628695;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
}  // namespace

void integrated_profile(double x0, double sigma, int first, int n, bool derivs, Profile1D& out) {
  out.first = first;
  out.value.resize(n);
  if (derivs) {
    out.d_x0.resize(n);
    out.d_s.resize(n);
  }
  const double k = kInvSqrt2 / sigma;
  // Edge values are shared by neighbouring pixels: n + 1 erf/exp evaluations, not 2n.
  double u_lo = (first - 0.5 - x0) * k;
  double erf_lo = std::erf(u_lo);
  double g_lo = derivs ? std::exp(-u_lo * u_lo) : 0.0;
  for (int i = 0; i < n; ++i) {
    const double u_hi = (first + i + 0.5 - x0) * k;
    const double erf_hi = std::erf(u_hi);
    out.value[i] = 0.5 * (erf_hi - erf_lo);
    if (derivs) {
      const double g_hi = std::exp(-u_hi * u_hi);
      // d/dx0 of erf(u) = -(2/sqrt(pi)) e^{-u^2} k ;  d/ds = -(2/sqrt(pi)) e^{-u^2} u / s
      out.d_x0[i] = -kInvSqrtPi * k * (g_hi - g_lo);
      out.d_s[i] = -kInvSqrtPi * (g_hi * u_hi - g_lo * u_lo) / sigma;
      g_lo = g_hi;
    }
    erf_lo = erf_hi;
    u_lo = u_hi;
  }
}

void integrated_profile_derivs(double x0, double sigma, Profile1D& p) {
  const int first = p.first, n = static_cast<int>(p.value.size());
  p.d_x0.resize(n);
  p.d_s.resize(n);
  // integrated_profile's expressions, without its erf calls.
  const double k = kInvSqrt2 / sigma;
  double u_lo = (first - 0.5 - x0) * k;
  double g_lo = std::exp(-u_lo * u_lo);
  for (int i = 0; i < n; ++i) {
    const double u_hi = (first + i + 0.5 - x0) * k;
    const double g_hi = std::exp(-u_hi * u_hi);
    p.d_x0[i] = -kInvSqrtPi * k * (g_hi - g_lo);
    p.d_s[i] = -kInvSqrtPi * (g_hi * u_hi - g_lo * u_lo) / sigma;
    g_lo = g_hi;
    u_lo = u_hi;
  }
}

void sampled_profile(double x0, double sigma, int first, int n, bool derivs, Profile1D& out) {
  out.first = first;
  out.value.resize(n);
  if (derivs) {
    out.d_x0.resize(n);
    out.d_s.resize(n);
  }
  for (int i = 0; i < n; ++i) {
    const double d = first + i - x0;
    const double v = kInvSqrt2Pi / sigma * std::exp(-0.5 * d * d / (sigma * sigma));
    out.value[i] = v;
    if (derivs) {
      out.d_x0[i] = v * d / (sigma * sigma);
      out.d_s[i] = v * (d * d / (sigma * sigma * sigma) - 1.0 / sigma);
    }
  }
}

}  // namespace psfphot
