#pragma once
// Robust statistics shared by the algorithms (medians, MAD, sigma clipping).
// Pure functions; they reorder the scratch vectors they are given (passed by value or
// by non-const reference where noted). Non-finite values must be removed by the caller
// unless the function says otherwise. Thread-safe (no shared state).
#include <cstddef>
#include <vector>

#include "psfphot/core/image.hpp"

namespace psfphot {

// Median of v (mean of the two middle values for even sizes, as numpy does).
// Reorders v. NaN for an empty vector.
double median_inplace(std::vector<float>& v);
double median_inplace(std::vector<double>& v);

// 1.4826 * median(|v - median(v)|): the normal-consistent MAD. Reorders v.
double mad_std_inplace(std::vector<double>& v);

struct ClippedStats {
  double mean = 0;
  double median = 0;
  double stddev = 0;
  std::size_t n = 0;  // values kept after clipping
  int iterations = 0;
};

// Iterative kappa-sigma clipping about the median (SExtractor/SEP background rule):
// repeat { keep |v - median| < kappa * std } until nothing changes or max_iter.
// Reorders/shrinks v.
ClippedStats sigma_clip_inplace(std::vector<float>& v, double kappa = 3.0, int max_iter = 10);

struct ImageStats {
  double min = 0, median = 0, max = 0, mean = 0;
  std::size_t n_finite = 0, n_nonfinite = 0;
};
// Statistics over the finite pixels of a view.
ImageStats image_stats(ImageView<const float> v);

}  // namespace psfphot
