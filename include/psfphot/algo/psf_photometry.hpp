#pragma once
// Step 9: Gaussian PSF photometry.
//
// The lab's estimator is the least-squares amplitude of a normalised PSF p at the
// centroid:  f = sum(f_i p_i) / sum(p_i^2).  psfphot generalises it to weighted least
// squares, f = sum(w_i f_i p_i) / sum(w_i p_i^2), with w_i = 1 / var_i and
// var_i = rms_i^2 + max(model_i, 0) / (gain r_i) (r_i the flat response; sky from the RMS map, star
// Poisson noise), and by default fits the position jointly (Gauss-Newton on F, x, y; Stetson 1987,
// PASP 99, 191, DAOPHOT's approach for a fixed analytic PSF). This reaches the
// Cramer-Rao bound of ../shared/peers/README.md; the lab's fixed-position unweighted
// amplitude remains available (kLab) for side-by-side comparison.
//
// p is the pixel-integrated Gaussian by default (gaussian_psf.hpp), or sampled at pixel
// centres (lab). Pixels masked with any of `exclude_bits` get zero weight (so a
// saturated core does not bias the flux: the wings measure it).
// Flags: kSaturated / kMaskedPixel (such pixels in the stamp), kEdge (stamp off the
// frame: fit on the pixels inside, flagged), kClippedPixel (outlier pixels dropped
// from the fit: hot pixel, cosmic ray, unresolved neighbour), kFitFailed (singular system, no
// convergence, or the position ran > 2 px away: position/flux from the fixed-position
// amplitude instead or NaN), kNegativeFlux.
// Thread-safety: pure; callers parallelise over stars.
#include <cstdint>
#include <span>
#include <vector>

#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

enum class PhotometryMethod { kFit, kLab };

struct PhotometryConfig {
  PhotometryMethod method = PhotometryMethod::kFit;
  bool integrate_pixels = true;     // false: PSF sampled at pixel centres (lab)
  bool weighted = true;             // false: uniform weights (lab)
  double stamp_radius_sigma = 3.5;  // stamp half-size in PSF sigmas (min 3 px)
  int max_iter = 20;
  double tolerance_px = 1e-5;
  double clip_sigma = 6.0;  // drop pixels with |residual| > this x noise, refit (0 = off)
  // At most this many refits of every star with its neighbours' models subtracted,
  // stopping when no fit moves by > 1e-3 px or 1e-4 in flux (pipeline step; 0 = off).
  int neighbour_passes = 10;
  // Before those passes, search the residual (frame minus every fitted model) for stars
  // hidden in brighter ones' light (pipeline step; needs neighbour_passes > 0 and a gain).
  bool residual_detection = true;
  // Drop detections whose fit failed (kFitFailed with a finite centroid: no point-source
  // solution within 2 px of the start, or no convergence) from the star list (pipeline
  // step). On the 4096^2 scorecard frame these are 17 of 33 false detections (cosmic-ray
  // tracks, unstable hot pixels, noise beside faint stars) against 25 of 3967 true stars,
  // 21 of them below S/N 10. false: keep them, flagged, with the amplitude at the centroid.
  bool drop_failed = true;
  // Drop sources with S/N >= 20 whose free-width Gaussian fit (fit_psf_sigma) is wider than
  // this x the PSF sigma at their position: galaxy cores (pipeline step; only sources whose
  // second moments exceed 1.1 x the frame's median are fitted). Galaxies of the simulated
  // frames fit at 2.1-3.0 x, single stars at <= 1.3 x, blended pairs at <= 1.6 x. 0 = off.
  double extended_sigma_ratio = 1.8;
  // Subtract those extended sources' light (an elliptical profile, algo/extended_profile.hpp)
  // from the frame before the neighbour passes refit the stars on them and before the
  // residual search (pipeline step; needs extended_sigma_ratio > 0 and neighbour_passes > 0).
  bool subtract_extended = true;
  // Two-star split test of stars whose moments are wider than a star's (pipeline step,
  // algo/deblend.hpp): split when chi^2 improves by at least this much. 0 = off.
  double split_min_dchi2 = 30.0;
  MaskBits exclude_bits = mask::kUnusable | mask::kSaturated;
};

struct PsfFit {
  double flux = 0, flux_err = 0;    // ADU
  double x = 0, y = 0;              // px
  double x_err = 0, y_err = 0;      // px
  double sigma = 0, sigma_err = 0;  // px (only fitted by fit_psf_sigma)
  std::uint32_t flags = 0;
  int iterations = 0;
  bool converged = false;
};

// A neighbouring star's fitted model (pixel-integrated or sampled as cfg says).
struct NeighbourModel {
  double x = 0, y = 0;  // px
  double flux = 0;      // ADU
  double sigma = 0;     // px
};

// The gain that turns a calibrated pixel's signal into its photon-noise variance. A pixel
// divided by a flat response r carries the Poisson noise of r times as many electrons as its
// value says: var = value / (gain r). Leaving r out understates the stars' photon noise
// where the flat is low (1.8x in variance in the 0.55-response corners of the simulated and
// peer frames): errors come out too small and the weights too high there. Measured on the
// 4096^2 scorecard frame: S/N 300-1000 stars in the outer third had centroid errors 1.31x the
// gain-only bound but 1.17x the bound with the response (docs/scorecard.md).
struct PixelGain {
  double e_per_adu = 0;  // <= 0 or NaN: no photon-noise term at all
  // Same geometry as the image; empty = 1 everywhere. A view: what it reads (an image, a
  // mapped flat file) must outlive the PixelGain.
  FloatPlane flat_response;
  PixelGain() = default;
  PixelGain(double gain) : e_per_adu(gain) {}  // NOLINT: a plain gain converts implicitly
  PixelGain(double gain, FloatPlane response) : e_per_adu(gain), flat_response(response) {}
  bool any() const { return e_per_adu > 0; }
  // Effective gain at image pixel (x, y), e-/ADU; 0 (no photon term) where there is no gain
  // or the response is not a positive number (such pixels are masked anyway).
  double at(int x, int y) const {
    if (!(e_per_adu > 0)) return 0.0;
    if (flat_response.empty()) return e_per_adu;
    const float r = flat_response(x, y);
    return r > 0 && r < 1e30f ? e_per_adu * r : 0.0;
  }
};

// Photometry of one star. `image` is background subtracted; `rms` the background RMS
// map (ADU); gain in e-/ADU, per pixel through the flat response (PixelGain; a plain
// number converts). x0, y0: start
// position (the centroid). `neighbours`: models of other stars whose light reaches the
// stamp; they are subtracted from the data and their photon noise added to the variance
// before the fit (DAOPHOT's neighbour subtraction, Stetson 1987 sect. III.e), so a
// bright neighbour's wing does not pull the position or the flux.
PsfFit measure_psf_flux(ImageView<const float> image, const FloatPlane& rms,
                        ImageView<const MaskBits> mask, double x0, double y0, double sigma_px,
                        const PixelGain& gain, const PhotometryConfig& cfg,
                        std::span<const NeighbourModel> neighbours = {});

// Fit F, x, y and sigma together (used on bright isolated stars to find the frame's
// PSF width without the truncation bias of windowed moments).
PsfFit fit_psf_sigma(ImageView<const float> image, const FloatPlane& rms,
                     ImageView<const MaskBits> mask, double x0, double y0, double sigma0,
                     const PixelGain& gain, const PhotometryConfig& cfg);

}  // namespace psfphot
