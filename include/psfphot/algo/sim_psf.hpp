#pragma once
// Pixel-integrated point-spread functions for the night simulator (algo/simulate.hpp):
// a star of total flux F rendered into a small stamp, each pixel holding F times the
// PSF integrated over that pixel's square [x-0.5, x+0.5) x [y-0.5, y+0.5).
//
// Models (circular, unit total flux over the infinite plane):
//   Gaussian  I(r) = exp(-r^2 / (2 sigma^2)) / (2 pi sigma^2).
//             Pixel integral exact and separable: product of erf differences along x and y.
//   Moffat    I(r) = (beta - 1) / (pi alpha^2) * (1 + r^2 / alpha^2)^(-beta)   (Moffat 1969).
//             Parametrised by its Gaussian-equivalent sigma = FWHM / (2 sqrt(2 ln 2)), with
//             FWHM = 2 alpha sqrt(2^(1/beta) - 1). Pixel integral by tensor Gauss-Legendre
//             quadrature: 4x4 nodes in the core (within 3 alpha + 1 px), 3x3 or 2x2 in the
//             wing where the rule's error bound for the r^(-2 beta) tail allows; relative
//             error per pixel about 1e-6 or better for sigma >= 0.8 px.
// A stamp is square, (2R+1) px wide, centred on the pixel nearest the star; the flux
// outside it is simply not rendered (stamp_radius_px() picks R so that what is left out
// is faint and a small fraction of the flux; psf_fraction_outside() bounds it).
//
// Coordinates: 0-based, pixel centres at integers (x = column). Pure functions,
// thread-safe.
#include "psfphot/core/image.hpp"

namespace psfphot {

enum class PsfModel { kGaussian, kMoffat };

// "gaussian" / "moffat".
const char* psf_model_name(PsfModel m);

struct PsfShape {
  PsfModel model = PsfModel::kGaussian;
  double sigma_px = 2.0;     // Gaussian sigma, or the Moffat's Gaussian-equivalent sigma, px
  double moffat_beta = 3.0;  // Moffat power index (> 1); unused for the Gaussian
};

// Moffat alpha (px) whose FWHM equals that of a Gaussian of sigma_px.
double moffat_alpha_px(double sigma_px, double beta);

// Surface brightness of the unit-flux PSF at distance r_px from its centre, per px^2.
double psf_intensity(const PsfShape& psf, double r_px);

// Fraction of the total flux outside a circle of radius r_px (analytic for both models).
double psf_fraction_outside(const PsfShape& psf, double r_px);

// Peak pixel fraction: the share of the flux in the pixel centred on the star.
double psf_central_pixel_fraction(const PsfShape& psf);

// Smallest stamp radius R (px) at which a star of flux_adu has surface brightness below
// edge_adu at distance R and at most max_outside_fraction of its flux lies outside the
// circle of radius R (0 or >= 1: no such condition), clamped to [min_radius_px,
// max_radius_px].
int stamp_radius_px(const PsfShape& psf, double flux_adu, double edge_adu,
                    double max_outside_fraction, int min_radius_px, int max_radius_px);

// A rendered stamp; pixels(i, j) is the frame pixel (x0 + i, y0 + j).
struct Stamp {
  int x0 = 0;
  int y0 = 0;
  Image<float> pixels;
  // View whose origin is (x0, y0), so at_frame() takes frame coordinates.
  ImageView<const float> view() const {
    return ImageView<const float>(pixels.data(), pixels.width(), pixels.height(), pixels.width(),
                                  x0, y0);
  }
};

// Render a star of total flux flux_adu centred at (x, y) into a (2R+1)^2 stamp around
// pixel (lround(x), lround(y)), R = radius_px >= 0.
Stamp render_psf_stamp(const PsfShape& psf, double x, double y, double flux_adu, int radius_px);

}  // namespace psfphot
