#pragma once
// Step 4: peaks = local maxima above a threshold in a 3x3 neighbourhood.
//
// A pixel (x, y) is a peak when
//   * it is not on the outer 1-pixel border (all 8 neighbours must exist, so a star
//     whose true maximum lies outside the frame cannot make a false border peak),
//   * it carries no bit of `exclude_bits` in the mask and is finite,
//   * value > threshold(x, y), where threshold = `absolute` (ThresholdMode::kAbsolute)
//     or k * rms(x, y) (kSigma; rms is the local background-RMS map, scaled by
//     `rms_scale`, e.g. the smoothing noise factor),
//   * value >= every neighbour. Plateaus (equal neighbours) give exactly one peak: the
//     first pixel of the connected equal-valued region in (y, x) order, and only if no
//     pixel bordering the region is higher.
// Output is sorted by (y, x): deterministic whatever the thread count.
//
// find_peaks tests the threshold first and the neighbours only for the ~0.5% of
// pixels above it (the lab's measured lesson); find_peaks_naive compares all 8
// neighbours of every pixel first and is kept as the reference it is tested against.
// Thread-safety: pure; OpenMP over rows (find_peaks); deterministic.
#include <vector>

#include "psfphot/algo/background.hpp"
#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

enum class ThresholdMode { kSigma, kAbsolute };

struct PeakConfig {
  ThresholdMode mode = ThresholdMode::kSigma;
  double k_sigma = 5.0;    // threshold in local RMS units (kSigma)
  double absolute = 0.0;   // threshold in ADU above background (kAbsolute)
  double rms_scale = 1.0;  // multiplies the RMS map (set by the caller when smoothing)
  MaskBits exclude_bits = mask::kNoDetect;
};

struct Peak {
  int x = 0;
  int y = 0;
  float value = 0;  // value of the searched image at the peak
};

// `rms` may be empty for kAbsolute; `mask` may be empty.
std::vector<Peak> find_peaks(ImageView<const float> image, const FloatPlane& rms,
                             ImageView<const MaskBits> mask, const PeakConfig& cfg);

// find_peaks on the smoothed image, without keeping it: equal (same peaks, same values) to
//   find_peaks(gaussian_smooth(image, mask, smooth_exclude_bits, sigma_px, lowered), rms,
//              mask, cfg).
// The smoothing is streamed in blocks of rows (SmoothRowStreamer, each block with one extra
// row either side) and every row is searched as soon as the rows above and below it exist,
// so no full-frame smoothed image is made (a 64 MiB first touch at 4096^2, more than the
// search itself where page faults are expensive, docs/performance.md). A candidate with an
// equal neighbour (a plateau, whose region may span any number of rows) is set aside; only
// if there are any is the full smoothed image made, to apply find_peaks' plateau rule.
// Thread-safety: pure; OpenMP over row blocks; deterministic.
std::vector<Peak> find_peaks_smoothed(ImageView<const float> image, const FloatPlane& rms,
                                      ImageView<const MaskBits> mask, MaskBits smooth_exclude_bits,
                                      double sigma_px, bool lowered, const PeakConfig& cfg);
// The same search with the RMS map as a SplineMap (Background::rms_map), the same peaks as
// with rms.plane(): the map's row is evaluated only in blocks of 16 pixels where a smoothed
// value exceeds a proven lower bound of k * RMS there (most of the frame's sky), so that
// neither the RMS nor the exact threshold test is computed where no pixel can pass.
// Throws std::invalid_argument when the map's size differs from the image's.
// Thread-safety: pure; OpenMP over row blocks; deterministic.
std::vector<Peak> find_peaks_smoothed(ImageView<const float> image, const SplineMap& rms,
                                      ImageView<const MaskBits> mask, MaskBits smooth_exclude_bits,
                                      double sigma_px, bool lowered, const PeakConfig& cfg);
std::vector<Peak> find_peaks_naive(ImageView<const float> image, const FloatPlane& rms,
                                   ImageView<const MaskBits> mask, const PeakConfig& cfg);

// Merge peaks closer than `radius_px` (Euclidean), keeping the highest of each group
// (ties: the first in (y, x) order). Fixes the noise double-peaks unsmoothed searches
// find in the cores of faint stars. Input and output sorted by (y, x).
std::vector<Peak> merge_close_peaks(const std::vector<Peak>& peaks, double radius_px);

// Keep one peak (the highest) per connected region of pixels carrying `bits` (e.g. a
// saturated star's flat core, which yields several noise peaks on its rim). A peak
// belongs to a region when a region pixel lies within `reach_px` (Chebyshev) of it.
// Input and output sorted by (y, x).
std::vector<Peak> merge_peaks_in_regions(const std::vector<Peak>& peaks,
                                         ImageView<const MaskBits> mask, MaskBits bits,
                                         int reach_px = 2);

}  // namespace psfphot
