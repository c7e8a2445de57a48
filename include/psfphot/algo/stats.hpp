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
// Reorders v. NaN for an empty vector. Method: nth_element (Musser's introselect); float
// vectors of >= 65536 values by radix selection (detail::median_radix), which finds the
// same middle values without moving any (v is then left as it was).
double median_inplace(std::vector<float>& v);
double median_inplace(std::vector<double>& v);

namespace detail {
// The median of v by radix selection over order-preserving 32-bit keys of the values (two
// counting passes: the keys' top 16 bits, then the low 16 bits inside the bucket holding the
// middle rank; Knuth, TAOCP vol. 3, 5.2.5, used for selection). Exactly the value(s)
// nth_element would find (of a median of zeros, only the sign may differ). Returns false, writing
// nothing, for an empty vector, one with a NaN, or more than 2^32 - 1 values. Memory: 1 MiB of
// tables. Public for its tests; median_inplace is the interface.
bool median_radix(const std::vector<float>& v, double* out);
}  // namespace detail

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
