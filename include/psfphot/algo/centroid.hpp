#pragma once
// Step 6: centroids in a window around a peak, on the background-subtracted image.
//
// kLab: one pass of the light-weighted mean  x_c = sum(I_i x_i) / sum(I_i)  over the
//   window_px x window_px box centred on the peak pixel (the teaching lab's recipe; it
//   is pixel-locked: error ~ -0.09 x the sub-pixel offset, see ../shared/peers).
// kWindowed: SExtractor's XWIN_IMAGE iteration (SExtractor manual, "windowed
//   positions"): Gaussian weights w_i = exp(-r_i^2 / 2 s_w^2) about the current
//   estimate, x <- x + 2 sum(w_i I_i (x_i - x)) / sum(w_i I_i), repeated until the step
//   is below `tolerance_px` (or `max_iter`). With s_w = PSF sigma its fixed point is the
//   maximum-likelihood position of a Gaussian star on a flat, background-limited sky.
//   The box is 2 * ceil(4 s_w) + 1 px wide around the peak pixel.
//
// Flags (star_flag): kEdge (window crosses the frame edge: centroid NaN),
// kMaskedPixel (a masked pixel inside the window, ignored), kCentroidNoConverge
// (windowed: no convergence or it wandered > 2 px from the peak; falls back to kLab).
// Thread-safety: pure.
#include <cstddef>
#include <cstdint>

#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

enum class CentroidMethod { kLab, kWindowed };

struct CentroidConfig {
  CentroidMethod method = CentroidMethod::kWindowed;
  int window_px = 9;             // kLab box size (odd), px
  double window_sigma_px = 2.0;  // kWindowed Gaussian weight sigma, px (set to the PSF sigma)
  int max_iter = 30;
  double tolerance_px = 1e-4;
  MaskBits exclude_bits = mask::kUnusable | mask::kSaturated;
};

struct Centroid {
  double x = 0, y = 0;  // px, NaN when not measurable
  std::uint32_t flags = 0;
  int iterations = 0;
};

Centroid centroid_lab(ImageView<const float> image, ImageView<const MaskBits> mask, int peak_x,
                      int peak_y, int window_px, MaskBits exclude_bits);
Centroid centroid_windowed(ImageView<const float> image, ImageView<const MaskBits> mask, int peak_x,
                           int peak_y, const CentroidConfig& cfg);
// Dispatch on cfg.method.
Centroid measure_centroid(ImageView<const float> image, ImageView<const MaskBits> mask, int peak_x,
                          int peak_y, const CentroidConfig& cfg);

// measure_centroid for n peaks: out[i] = measure_centroid(image, mask, peak_x[i], peak_y[i],
// cfg), bit for bit. kWindowed stars iterate four at a time in the lanes of one vector (each
// lane the scalar arithmetic in the scalar order; a lane whose star is done takes the next
// one): one star's weighted sums are chains of dependent additions that leave the processor
// waiting, four independent ones fill it. Each window is copied once (excluded pixels as 0)
// rather than re-read and re-tested every iteration.
// Thread-safety: pure (callers split the peaks between threads).
void measure_centroids(ImageView<const float> image, ImageView<const MaskBits> mask,
                       const int* peak_x, const int* peak_y, std::size_t n,
                       const CentroidConfig& cfg, Centroid* out);

// Centre of the connected (8-neighbour) region of pixels carrying `bits` that touches
// (Chebyshev distance <= reach_px) the pixel (x, y): the mean of its pixel coordinates.
// For a saturated star the region is the clipped core, symmetric about the star for a
// symmetric PSF; a light-weighted centroid cannot use those pixels and, from the
// unsaturated rim, wanders by pixels (3.7 px for a 2.5e7 ADU star of the 4096^2
// scorecard frame). n_pixels = 0 (x, y NaN) when no such pixel is near or the region
// exceeds max_pixels; radius_px is the largest distance of a region pixel from the centre.
struct RegionCentre {
  double x = 0, y = 0;  // px
  long n_pixels = 0;
  double radius_px = 0;
};
RegionCentre masked_region_centre(ImageView<const MaskBits> mask, int x, int y, MaskBits bits,
                                  int reach_px = 2, long max_pixels = 1 << 16);

}  // namespace psfphot
