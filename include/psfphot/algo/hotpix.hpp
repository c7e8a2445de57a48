#pragma once
// Step 5: hot-pixel (and cosmic-ray) rejection, the teaching lab's rule.
// A peak survives when at least `min_neighbours` of its 8 neighbours exceed
// `fraction` x its own value, measured on the background-subtracted, UNSMOOTHED image
// (a hot pixel or a cosmic-ray hit is sharper than any star the optics can deliver).
// Neighbours outside the image or non-finite count as not exceeding.
// Thread-safety: pure; deterministic (order of the input kept).
#include <vector>

#include "psfphot/algo/peaks.hpp"
#include "psfphot/core/image.hpp"

namespace psfphot {

struct HotPixelConfig {
  bool enabled = true;
  int min_neighbours = 4;  // of 8
  double fraction = 0.5;   // of the peak value
};

// True when the peak at (x, y) looks like a star under the rule.
bool passes_hot_pixel_test(ImageView<const float> image, int x, int y, const HotPixelConfig& cfg);

std::vector<Peak> reject_hot_pixels(ImageView<const float> image, const std::vector<Peak>& peaks,
                                    const HotPixelConfig& cfg);

}  // namespace psfphot
