#pragma once
// Step 5: hot-pixel (and cosmic-ray) rejection, the teaching lab's rule.
// A peak survives when at least `min_neighbours` of its 8 neighbours exceed
// `fraction` x its own value, measured on the background-subtracted, UNSMOOTHED image
// (a hot pixel or a cosmic-ray hit is sharper than any star the optics can deliver).
// Neighbours outside the image or non-finite count as not exceeding.
// psfphot's default allows each neighbour its noise: for a peak fainter than 20 x the
// background RMS at the peak, a neighbour counts when it exceeds fraction x peak -
// noise_sigma x that RMS; brighter peaks get the literal rule (their neighbours' noise
// cannot fail a star, and a bright cosmic-ray track's can sit within a sigma of the
// threshold; the step at 20 RMS is where neither matters). The lab's rule taken
// literally (noise_sigma = 0) loses faint stars: the peak pixel of a S/N ~10 star is often a
// noise high and its neighbours noise lows (a S/N 12 star whose peak pixel read 78 ADU
// over neighbours of 17-64, noise 14 ADU, had 3 of 8 above 39: rejected). A hot pixel or
// cosmic ray bright enough to make a peak in the smoothed search is >~ 13 noise sigmas
// in one pixel with neighbours at the background, so one sigma of allowance does not let
// it through (tests/unit/algo/hotpix_test.cpp measures both).
// Thread-safety: pure; deterministic (order of the input kept).
#include <vector>

#include "psfphot/algo/moments.hpp"
#include "psfphot/algo/peaks.hpp"
#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/image.hpp"

namespace psfphot {

struct HotPixelConfig {
  bool enabled = true;
  int min_neighbours = 4;  // of 8
  double fraction = 0.5;   // of the peak value
  // Noise allowance per neighbour, in units of the background RMS at the peak, for peaks
  // below 20 RMS (fixed; see above); 0 = the lab's literal rule.
  double noise_sigma = 1.0;
  // Cosmic-ray tracks that pass the neighbour test (several hit pixels in a row) are still
  // narrower than the PSF across the track: after photometry, a star with S/N >=
  // min_width_snr is dropped when the smaller principal-axis second moment of its light,
  // weighted by a Gaussian of the PSF sigma (minor_axis_moment, moments.hpp), lies below
  // min_width_sigma^2 x what a star of the PSF gives in the same window (its star_px2) by
  // more than 3 of its errors. So min_width_sigma is a fraction of a star's minor-axis width
  // (0 = off, the lab; at most 1). The principal axis, because sigma_x and sigma_y of a track
  // lying diagonally are wide; the weights and the error, because a compact PSF's moments in
  // the 9 px window are noise-dominated at S/N 20-40 and a background structure at the
  // window's edge can pull them to ~0 (the UMO frame, PSF sigma 0.9 px: a flat window
  // without the error dropped 77 real stars); the star's moment through the same window,
  // because a wide PSF is truncated by it (a sigma 7 px star shows a quarter of its
  // untruncated moment in 9 px). Measured on six 4096^2 simulated frames (seeds
  // 11-16, PSF sigma ~2.0 px): the three cosmic-ray detections with S/N >= 20 (seeds 15 and 16: S/N
  // 72-98, tracks 4-14 px long; sigma_x, sigma_y 0.9-2.3 px, so the earlier rule on both axes
  // missed them) go, no true star goes (none would up to min_width_sigma 0.8).
  double min_width_sigma = 0.5;
  double min_width_snr = 20.0;
};

// True when a measured star is too sharp to be one (the rule above): `minor` is its
// minor_axis_moment with weight_sigma_px = psf_sigma_px = the PSF sigma at the star. NaN
// moment, error, star reference or S/N: false (not judged).
bool too_sharp_for_a_star(const MinorMoment& minor, double snr, const HotPixelConfig& cfg);

// True when the peak at (x, y) looks like a star under the rule; `noise_adu` is the
// background RMS at the peak (ADU; 0 or NaN = no allowance).
bool passes_hot_pixel_test(ImageView<const float> image, int x, int y, const HotPixelConfig& cfg,
                           double noise_adu = 0.0);

// The peaks that pass, in input order; `rms` is the background RMS map of `image` (empty =
// no noise allowance).
std::vector<Peak> reject_hot_pixels(ImageView<const float> image, const FloatPlane& rms,
                                    const std::vector<Peak>& peaks, const HotPixelConfig& cfg);

}  // namespace psfphot
