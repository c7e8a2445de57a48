#pragma once
// Matched-filter smoothing for detection: separable convolution with a normalised
// Gaussian. On white noise of per-pixel RMS s the smoothed image has RMS
// s * noise_factor(sigma), so a k-sigma threshold on the smoothed image is a k-sigma
// threshold in the matched-filter S/N (Irwin 1985; SExtractor's FILTER step).
// Pixels with any of `exclude_bits` in the mask (and non-finite pixels) count as 0.
// Thread-safety: pure; OpenMP over rows; deterministic.
#include <vector>

#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

// Normalised 1-D Gaussian taps, half-width ceil(3 sigma) (sum = 1).
std::vector<float> gaussian_taps(double sigma_px);

// sqrt(sum of squared 2-D kernel weights): the noise ratio smoothed / raw for white noise.
double smoothing_noise_factor(double sigma_px, bool lowered = false);

// sigma_px <= 0 returns a copy with excluded pixels zeroed.
// `lowered` = true convolves with the zero-sum "lowered" Gaussian of DAOFIND (Stetson
// 1987, PASP 99, 191): K = G - 1/n over the (2r+1)^2 window, computed as the Gaussian
// convolution minus the box mean. A smooth pedestal (galaxy wings, sky gradients) then
// contributes nothing, so noise bumps on extended emission are not taken for stars.
Image<float> gaussian_smooth(ImageView<const float> image, ImageView<const MaskBits> mask,
                             MaskBits exclude_bits, double sigma_px, bool lowered = false);

}  // namespace psfphot
