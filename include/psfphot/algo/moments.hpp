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

// The sigma an ideal pixel-integrated Gaussian of true sigma `sigma_px` shows through
// second_moments in a window of `window_px` (centred star): the truncation the lab's
// widths suffer, exposed so it can be accounted for.
double truncated_moment_sigma(double sigma_px, int window_px);

}  // namespace psfphot
