#pragma once
// Step 8: second-moment widths about the centroid (the teaching lab's formula):
//   sigma_x^2 = sum(I_i (x_i - x_c)^2) / sum(I_i),  likewise y,
// over the window_px x window_px box centred on the nearest pixel to the centroid, on
// the background-subtracted image. A window truncates a Gaussian (sigma 1.86 px instead
// of 2.0 in a 9 px box), so photometry does not use these widths directly; see
// psf_photometry.hpp for the frame PSF sigma.
// Flags: kEdge (window off the frame: NaN), kMomentsInvalid (a moment <= 0 or no flux).
// Thread-safety: pure.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

struct MomentsConfig {
  int window_px = 9;  // box size, px
  MaskBits exclude_bits = mask::kUnusable | mask::kSaturated;
};

struct Widths {
  double sigma_x = 0, sigma_y = 0;  // px; NaN when invalid
  std::uint32_t flags = 0;
};

Widths second_moments(ImageView<const float> image, ImageView<const MaskBits> mask, double xc,
                      double yc, const MomentsConfig& cfg);

// second_moments for n stars: out[i] = second_moments(image, mask, xc[i], yc[i], cfg), the
// same bits. The windows of the stars 8 further on are prefetched: a star's few dozen
// pixels cost less than waiting for its window rows to arrive from memory one by one.
// Thread-safety: pure (callers split the stars between threads).
void measure_moments(ImageView<const float> image, ImageView<const MaskBits> mask, const double* xc,
                     const double* yc, std::size_t n, const MomentsConfig& cfg, Widths* out);

// The smaller principal-axis second moment of the same window, optionally with Gaussian
// weights exp(-r^2 / (2 weight_sigma_px^2)) about (xc, yc) (weight_sigma_px <= 0: flat, the
// lab's window): the smaller eigenvalue lambda of the weighted moment matrix
// sum(w I d d^T) / sum(w I), px^2, with
// - err_px2: its 1-sigma error from background noise of rms_adu per pixel,
//   err^2 = sum(w^2 rms^2 (u^2 - lambda)^2) / sum(w I)^2, u the pixel's offset along the
//   minor axis (first order: exact for an elongated source, ~15% high for a round one, whose
//   two eigenvalues are degenerate; the source's own photon noise is left out, so bright
//   sources' errors are understated; with a square window and circular weights it hardly
//   depends on the axis' direction). NaN when rms_adu is NaN or negative.
// - star_px2: the same moment of a noiseless pixel-integrated circular Gaussian of
//   psf_sigma_px at (xc, yc) through the same window, weights and unmasked pixels (NaN when
//   psf_sigma_px is not a positive number): what a star gives there, truncation and masks
//   included. Untruncated and unmasked it is point_source_minor_moment.
// sqrt(lambda) is at most min(sigma_x, sigma_y) of the same weights, and unlike them it does
// not depend on how the source lies on the pixel grid: a cosmic-ray track 14 px long at 45
// degrees has sigma_x and sigma_y of ~2-3 px in a 9 px window but sqrt(lambda) ~0.4 px. The
// weights keep far pixels out: in a flat 9 px window their noise dominates a compact star's
// moments (a S/N 25 star of sigma 0.9 px: err ~1 px^2 against lambda ~0.9 px^2), and a
// residual background structure there (a real frame's dark row 3 px below a star) can pull
// lambda to ~0. lambda may come out <= 0 (noise on a source sharper than a pixel). All NaN
// (no judgement possible) when the centre is not finite, the window is off the frame, holds
// no positive weighted light, or has more than half of its weight on masked or non-finite
// pixels (what is left may be a line through the centre). Thread-safety: pure.
struct MinorMoment {
  double lambda_px2 = std::numeric_limits<double>::quiet_NaN();
  double err_px2 = std::numeric_limits<double>::quiet_NaN();
  double star_px2 = std::numeric_limits<double>::quiet_NaN();
};
MinorMoment minor_axis_moment(ImageView<const float> image, ImageView<const MaskBits> mask,
                              double xc, double yc, double rms_adu, double weight_sigma_px,
                              const MomentsConfig& cfg,
                              double psf_sigma_px = std::numeric_limits<double>::quiet_NaN());

// What minor_axis_moment gives for a pixel-integrated circular Gaussian star of sigma
// psf_sigma_px (variance psf_sigma^2 + 1/12 per axis) through weights of weight_sigma_px
// (<= 0: flat), untruncated: s^2 w^2 / (s^2 + w^2), px^2.
double point_source_minor_moment(double psf_sigma_px, double weight_sigma_px);

// The sigma an ideal pixel-integrated Gaussian of true sigma `sigma_px` shows through
// second_moments in a window of `window_px` (centred star): the truncation the lab's
// widths suffer, exposed so it can be accounted for.
double truncated_moment_sigma(double sigma_px, int window_px);

}  // namespace psfphot
