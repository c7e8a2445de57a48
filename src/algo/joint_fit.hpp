#pragma once
// Internal to src/algo (not installed): the joint fit of one or more point sources on a
// stamp, shared by the two-star split test and the pair refit (deblend.cpp) and the
// companion search (companion.cpp). One and two components go through the same code, so
// their chi^2 compare.
// Thread-safety: functions of their arguments, safe to call from many threads at once; fit_joint
// keeps per-thread work buffers (one set per instantiation, rewritten before they are read), so
// it must not be re-entered from its own give_up callback.
#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "psf_stamp.hpp"
#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/algo/psf_photometry.hpp"

namespace psfphot::detail {

struct Component {
  double F = 0, x = 0, y = 0;
};

template <int K>
struct JointFit {
  bool converged = false;
  double chi2 = 0;
  Eigen::Matrix<double, 3 * K, 3 * K> cov;
};

// Gauss-Newton on (F, x, y) of every component jointly, with the variance of each pixel
// from the current model (sky + the components' photon noise), as measure_psf_flux does for
// one star. One and two components go through the same code, so their chi^2 compare.
// Converged when no position moves by more than 1e-3 px: enough for a test whose split
// components are refitted by the neighbour passes afterwards.
// `give_up(components, iteration)` ends the fit early (not converged) when the answer can
// no longer be accepted, e.g. a split whose components collapse onto one star.
template <int K, typename GiveUp>
JointFit<K> fit_joint(const Stamp& s, std::array<Component, K>& c, double sigma,
                      const PhotometryConfig& cfg, double x_ref, double y_ref, double max_move,
                      GiveUp give_up) {
  constexpr int k = K;
  // Per thread and instantiation (the split test, the companion search and the pair refit call
  // this hundreds of times a frame, and its vectors were 11 (K = 1) or 21 (K = 2) allocations a
  // call); the edges emptied, as new ones are, so that each fit starts from erf calls, and the
  // profiles and scratch are written before they are read.
  struct Work {
    std::array<Profile1D, K> px, py;
    std::array<ProfileEdges, K> ex, ey;  // each iteration's profiles moved from the last's
    std::vector<double> scratch;
  };
  thread_local Work work;
  std::array<Profile1D, K>&px = work.px, &py = work.py;
  std::array<ProfileEdges, K>&ex = work.ex, &ey = work.ey;
  for (int m = 0; m < k; ++m) {
    ex[m].n = ey[m].n = -1;
    ex[m].has_g = ey[m].has_g = false;
  }
  std::vector<double>& scratch = work.scratch;
  Eigen::Matrix<double, 3 * K, 3 * K> A;
  Eigen::Matrix<double, 3 * K, 1> b;
  JointFit<K> out;
  // Accumulates the normal equations (and chi^2) at the current components.
  // `full`: the whole matrix, for the covariance; the LDLT reads the lower triangle only.
  auto accumulate = [&](bool full) {
    std::array<double, K> F;
    for (int m = 0; m < k; ++m) {
      if (cfg.integrate_pixels) {
        integrated_profile_tracked(c[m].x, sigma, s.x0, s.nx, true, px[m], ex[m], false);
        integrated_profile_tracked(c[m].y, sigma, s.y0, s.ny, true, py[m], ey[m], false);
      } else {
        detail::profiles(s, c[m].x, c[m].y, sigma, false, true, px[m], py[m]);
      }
      F[m] = c[m].F;
    }
    return detail::joint_normal_equations<K>(s, px, py, F, cfg.weighted, full, scratch, A, b);
  };
  for (int it = 0; it < 2 * cfg.max_iter; ++it) {
    accumulate(false);
    Eigen::LDLT<Eigen::Matrix<double, 3 * K, 3 * K>> ldlt(A);
    if (ldlt.info() != Eigen::Success || !ldlt.isPositive()) return out;
    const Eigen::Matrix<double, 3 * K, 1> d = ldlt.solve(b);
    // Damp large position steps (as the single-star fit does), the same factor for all.
    double scale = 1.0, step = 0;
    for (int m = 0; m < k; ++m) {
      const double sm = std::hypot(d(3 * m + 1), d(3 * m + 2));
      step = std::max(step, sm);
      if (sm > 0.5) scale = std::min(scale, 0.5 / sm);
    }
    for (int m = 0; m < k; ++m) {
      c[m].F += d(3 * m) * scale;
      c[m].x += d(3 * m + 1) * scale;
      c[m].y += d(3 * m + 2) * scale;
      if (!std::isfinite(c[m].F) || !(c[m].F > 0) ||
          std::hypot(c[m].x - x_ref, c[m].y - y_ref) > max_move)
        return out;
    }
    if (step * scale < 1e-3) {
      out.converged = true;
      break;
    }
    if (give_up(c, it)) return out;
  }
  if (!out.converged) return out;
  out.chi2 = accumulate(true);
  out.cov = A.inverse();
  return out;
}

inline PsfFit component_fit(const Component& c, const JointFit<2>& f, int m, double sigma,
                            std::uint32_t flags) {
  PsfFit p;
  p.flux = c.F;
  p.x = c.x;
  p.y = c.y;
  p.sigma = sigma;
  p.flux_err = std::sqrt(std::max(f.cov(3 * m, 3 * m), 0.0));
  p.x_err = std::sqrt(std::max(f.cov(3 * m + 1, 3 * m + 1), 0.0));
  p.y_err = std::sqrt(std::max(f.cov(3 * m + 2, 3 * m + 2), 0.0));
  p.sigma_err = std::nan("");
  p.flags = flags;
  p.converged = true;
  return p;
}

}  // namespace psfphot::detail
