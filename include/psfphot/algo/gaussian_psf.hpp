#pragma once
// The circular Gaussian PSF, integrated over pixels (exact, separable: erf differences)
// or sampled at pixel centres (the lab's choice, ~1% flux error at sigma = 2 px).
// Used by the photometry, the PSF-width estimate, the simulator and the scorecard.
//
// P(i, j) = E(i; x0, s) * E(j; y0, s), with
//   E(i; x0, s) = 1/2 [erf((i + 1/2 - x0) / (sqrt2 s)) - erf((i - 1/2 - x0) / (sqrt2 s))],
// so P sums to 1 over the infinite plane. Thread-safety: pure.
#include <vector>

namespace psfphot {

struct Profile1D {
  int first = 0;              // pixel index of value[0]
  std::vector<double> value;  // E(i)
  std::vector<double> d_x0;   // dE/dx0
  std::vector<double> d_s;    // dE/ds
};

// Pixel-integrated profile over pixels first..first+n-1 (derivatives when `derivs`).
void integrated_profile(double x0, double sigma, int first, int n, bool derivs, Profile1D& out);
// The derivatives (d_x0, d_s) of a profile whose values integrated_profile made for the same
// x0 and sigma: the numbers integrated_profile(..., derivs = true) gives, without its erf calls.
void integrated_profile_derivs(double x0, double sigma, Profile1D& p);
// Profile sampled at pixel centres: exp(-(i-x0)^2/2s^2) / (sqrt(2 pi) s).
void sampled_profile(double x0, double sigma, int first, int n, bool derivs, Profile1D& out);

}  // namespace psfphot
