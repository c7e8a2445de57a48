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
// The erf and exp(-u^2) values at a profile's n + 1 pixel edges (u = (edge - x0) / (sqrt2 s)),
// kept between calls of integrated_profile_tracked on one stamp.
struct ProfileEdges {
  double x0 = 0, sigma = 0;
  int first = 0, n = -1;  // n < 0: empty
  bool has_g = false;     // g holds exp(-u^2) (erf always set when not empty)
  std::vector<double> erf, g;
  std::vector<double> work;  // scratch of the shift
};

// integrated_profile over the same pixels, remembering its edge values in `edges`. When `edges`
// holds the values of the same pixels and sigma at an x0 at most 0.3 sqrt2 sigma away (a
// Gauss-Newton step), they are moved to the new x0 by the Taylor series of erf and exp(-u^2) in
// the shift d: erf(u + d) = erf(u) + (2/sqrt pi) e^{-u^2} sum_m H_m(u) (-1)^m d^{m+1} / (m+1)!,
// e^{-(u+d)^2} = e^{-u^2} sum_m H_m(u) (-d)^m / m! (Hermite polynomials H_m), the series cut
// where Cramer's bound |H_m(u)| e^{-u^2/2} <= 1.0865 sqrt(2^m m!) puts the rest below 1e-18:
// no erf or exp call, and the values those calls give to within a few units in the last place
// (a fit's later iterations and its covariance; the first call of a stamp calls erf and exp).
// `width_deriv` false: with `derivs`, d_x0 only (d_s left as it was; the (F, x, y) fits never
// read it, and its division per pixel was a tenth of this function's time).
void integrated_profile_tracked(double x0, double sigma, int first, int n, bool derivs,
                                Profile1D& out, ProfileEdges& edges, bool width_deriv = true);
// Profile sampled at pixel centres: exp(-(i-x0)^2/2s^2) / (sqrt(2 pi) s).
void sampled_profile(double x0, double sigma, int first, int n, bool derivs, Profile1D& out);

}  // namespace psfphot
