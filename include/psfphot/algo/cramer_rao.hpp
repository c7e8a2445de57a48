#pragma once
// Cramer-Rao lower bounds for the flux and position of a single star with a Gaussian PSF.
// These are the "bound" columns of the scorecard (algo/score.hpp); the definitions are
// those of ../shared/peers/README.md ("Definitions") and docs/score.md.
//
// Simple bound (continuous Gaussian, background-limited, F fitted alone):
//   SNR       = F / sqrt(4 pi sigma^2 B)
//   sigma_F/F = 1 / SNR
//   sigma_x   = sigma_y = sqrt(2) sigma / SNR            (per axis)
//
// Full bound: (F, x, y) fitted jointly with the pixel-integrated Gaussian, including the
// star's own Poisson noise. Model of pixel i (centre at integers, covering +-0.5 px):
//   mu_i = F p_i(x, y),  p_i = [Phi((i_x+0.5-x)/s) - Phi((i_x-0.5-x)/s)] * [same in y]
// with per-pixel variance V_i = B + F p_i / gain. Fisher matrix
//   I_ab = sum_i (d mu_i / d a)(d mu_i / d b) / V_i,   a, b in {F, x, y},
// bound = sqrt(diag(I^-1)). The sum runs over the square stamp of half-width
// ceil(stamp_radius_sigma * sigma) pixels around the star's nearest pixel, NOT clipped to
// any frame (it is the bound of an ideal, unclipped star). The 1/2 sum (dV/da)(dV/db)/V^2
// term of a Gaussian likelihood with parameter-dependent variance is deliberately left out:
// for Poisson counts (what F p_i / gain stands for) J^T V^-1 J is the exact Fisher matrix,
// and it is the covariance a weighted least-squares fit with known variances reaches.
// The sky level is known (not fitted).
//
// Units: F in ADU, B in ADU^2 per pixel, sigma and positions in px, gain in e-/ADU.
// `gain` is the effective gain of the star's pixels: in a flat-fielded frame a pixel of
// flat response f (normalised to max 1) holds value * gain * f electrons, so the caller
// passes gain * f for the star's photon term to be its true Poisson variance (the scorer
// does, algo/score.hpp; passing the raw gain gives the peers' literal definition).
// Pure functions, no state: thread-safe.
#include <cmath>
#include <limits>

namespace psfphot {

struct StarBound {
  double flux_frac = std::numeric_limits<double>::quiet_NaN();  // sigma_F / F
  double x_px = std::numeric_limits<double>::quiet_NaN();       // sigma_x
  double y_px = std::numeric_limits<double>::quiet_NaN();       // sigma_y
  // Per-axis centroid bound sqrt((sigma_x^2 + sigma_y^2) / 2), matching the per-axis RMS.
  double axis_px() const { return std::sqrt(0.5 * (x_px * x_px + y_px * y_px)); }
};

// S/N of the definition above. NaN unless flux finite, sigma > 0 and B > 0.
double background_limited_snr(double flux_adu, double psf_sigma_px, double sky_var_adu2);

// Simple bound from a given S/N. All NaN unless snr > 0 and sigma > 0.
StarBound simple_bound(double snr, double psf_sigma_px);

// Full bound. All NaN when flux <= 0, sigma <= 0, B < 0, gain <= 0, any input is not
// finite, or the Fisher matrix is singular. Pixels with zero variance (B = 0 and a model
// value that underflowed to 0) carry no usable information and are skipped.
// stamp_radius_sigma: stamp half-width in PSF sigmas (default 5, >= 1).
StarBound full_bound(double flux_adu, double x, double y, double psf_sigma_px, double sky_var_adu2,
                     double gain_e_per_adu, double stamp_radius_sigma = 5.0);

// Pixel-integrated unit Gaussian along one axis: fraction of the flux falling in the pixel
// centred at integer `i` for a star at `x`, and its derivative with respect to x.
double pixel_fraction_1d(int i, double x, double psf_sigma_px);
double pixel_fraction_1d_dx(int i, double x, double psf_sigma_px);

}  // namespace psfphot
