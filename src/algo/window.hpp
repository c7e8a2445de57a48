#pragma once
// Internal to src/algo (not installed): the square star windows of the centroid and moments
// steps (centroid.cpp, centroid_batch.cpp, moments.cpp): whether one lies inside the frame,
// and requesting its rows from memory ahead of use.
// Thread-safety: pure functions.
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot::detail {

// True when the (2 half + 1)^2 window centred on pixel (cx, cy) lies inside `img`
// (callers pass centres that fit in a long; see moments.cpp for far-off centres).
template <class T>
inline bool window_inside(ImageView<T> img, long cx, long cy, int half) {
  return cx - half >= 0 && cy - half >= 0 && cx + half < img.width() && cy + half < img.height();
}

// Prefetch the window's image rows (first and last pixel of each) and its mask rows; a
// window not inside the frame is skipped. Changes no value: only when memory is read.
inline void prefetch_window(ImageView<const float> image, ImageView<const MaskBits> mask, long cx,
                            long cy, int half) {
  if (!window_inside(image, cx, cy, half)) return;
  for (long y = cy - half; y <= cy + half; ++y) {
    const float* row = image.row(static_cast<int>(y));
    __builtin_prefetch(row + cx - half);
    __builtin_prefetch(row + cx + half);
    if (!mask.empty()) __builtin_prefetch(mask.row(static_cast<int>(y)) + cx);
  }
}

}  // namespace psfphot::detail
