#include "psfphot/algo/gaussian_psf.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "psfphot/core/simd.hpp"

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

namespace {

// A shift of at most this much in u keeps the series short (<= 21 terms at the limit, ~6 for
// a converging fit's 1e-3) and well inside their convergence.
constexpr double kMaxShift = 0.3;

// u of edge k (the expressions integrated_profile evaluates erf at).
double edge_u(int first, int k, double x0, double kk) {
  return k == 0 ? (first - 0.5 - x0) * kk : (first + (k - 1) + 0.5 - x0) * kk;
}

// The series of integrated_profile_tracked over all edges at once, term by term (the edges are
// independent lanes): sum_e = sum_m H_m(u) a_{m+1}, sum_g = sum_m H_m(u) a_m, with
// a_m = (-d)^m / m!, then erf -= (2/sqrt pi) g sum_e and g *= sum_g.
PSFPHOT_VECTOR_CLONES void shift_edges(int ne, const double* __restrict u, const double* a,
                                       int terms, double* __restrict erf_v, double* __restrict g_v,
                                       double* __restrict h_prev, double* __restrict h_cur,
                                       double* __restrict sum_e, double* __restrict sum_g) {
  for (int k = 0; k < ne; ++k) {
    h_prev[k] = 1.0;
    h_cur[k] = 2.0 * u[k];
    sum_g[k] = a[0] + h_cur[k] * a[1];
    sum_e[k] = a[1] + h_cur[k] * a[2];
  }
  for (int m = 1; m + 1 < terms; ++m) {
    const double am1 = a[m + 1], am2 = a[m + 2], two_m = 2.0 * m;
    for (int k = 0; k < ne; ++k) {
      const double h = 2.0 * u[k] * h_cur[k] - two_m * h_prev[k];  // H_{m+1}
      h_prev[k] = h_cur[k];
      h_cur[k] = h;
      sum_g[k] += h * am1;
      sum_e[k] += h * am2;
    }
  }
  for (int k = 0; k < ne; ++k) {
    erf_v[k] -= 2.0 * kInvSqrtPi * g_v[k] * sum_e[k];
    g_v[k] *= sum_g[k];
  }
}

}  // namespace

void integrated_profile_tracked(double x0, double sigma, int first, int n, bool derivs,
                                Profile1D& out, ProfileEdges& e, bool width_deriv) {
  const double kk = kInvSqrt2 / sigma;
  const int ne = n + 1;
  const bool same_grid = e.n == n && e.first == first && e.sigma == sigma && n >= 0;
  const double d = (e.x0 - x0) * kk;  // the shift in u
  if (same_grid && e.x0 == x0) {
    if (derivs && !e.has_g) {
      e.g.resize(ne);
      for (int k = 0; k < ne; ++k) {
        const double u = edge_u(first, k, x0, kk);
        e.g[k] = std::exp(-u * u);
      }
      e.has_g = true;
    }
  } else if (same_grid && e.has_g && std::abs(d) <= kMaxShift) {
    // Terms: the first m with 1.0865 (sqrt2 |d|)^m / sqrt(m!) < 1e-19 ends the series (the
    // terms after it fall faster than by half each).
    double a[48];
    int terms = 2;
    {
      // sqrt(m) from a table of the same (correctly rounded) values: the loop's sqrt calls and
      // the store and reload of a[m - 1] (a chain through memory) were a third of this
      // function's time.
      static const std::array<double, 46> kSqrtM = [] {
        std::array<double, 46> t{};
        for (int m = 0; m < 46; ++m) t[m] = std::sqrt(static_cast<double>(m));
        return t;
      }();
      const double r = std::sqrt(2.0) * std::abs(d);
      double bound = 1.0865 * r;  // m = 1
      a[0] = 1.0;
      a[1] = -d;
      double am = -d;  // a[m - 1]
      for (int m = 2; m < 46; ++m) {
        am = am * (-d) / m;
        a[m] = am;
        bound *= r / kSqrtM[m];
        terms = m + 1;
        if (bound < 1e-19) break;
      }
      a[terms] = a[terms - 1] * (-d) / terms;  // the erf series reads one further
    }
    e.work.resize(5 * static_cast<std::size_t>(ne));
    double* const u = e.work.data();
    // edge_u's two expressions, the first edge's apart (a branch per edge kept this loop
    // scalar).
    u[0] = edge_u(first, 0, e.x0, kk);
    for (int k = 1; k < ne; ++k) u[k] = (first + (k - 1) + 0.5 - e.x0) * kk;
    shift_edges(ne, u, a, terms, e.erf.data(), e.g.data(), u + ne, u + 2 * ne, u + 3 * ne,
                u + 4 * ne);
    e.x0 = x0;
  } else {
    e.erf.resize(ne);
    for (int k = 0; k < ne; ++k) e.erf[k] = std::erf(edge_u(first, k, x0, kk));
    e.has_g = derivs;
    if (derivs) {
      e.g.resize(ne);
      for (int k = 0; k < ne; ++k) {
        const double u = edge_u(first, k, x0, kk);
        e.g[k] = std::exp(-u * u);
      }
    }
    e.x0 = x0;
    e.sigma = sigma;
    e.first = first;
    e.n = n;
  }
  out.first = first;
  out.value.resize(n);
  for (int i = 0; i < n; ++i) out.value[i] = 0.5 * (e.erf[i + 1] - e.erf[i]);
  if (derivs) {
    out.d_x0.resize(n);
    for (int i = 0; i < n; ++i) out.d_x0[i] = -kInvSqrtPi * kk * (e.g[i + 1] - e.g[i]);
  }
  if (derivs && width_deriv) {
    out.d_s.resize(n);
    double u_lo = edge_u(first, 0, x0, kk);
    for (int i = 0; i < n; ++i) {
      const double u_hi = edge_u(first, i + 1, x0, kk);
      out.d_s[i] = -kInvSqrtPi * (e.g[i + 1] * u_hi - e.g[i] * u_lo) / sigma;
      u_lo = u_hi;
    }
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
