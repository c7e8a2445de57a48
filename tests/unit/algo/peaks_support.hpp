#pragma once
// Helpers shared by the peak-finding tests (peaks_test.cpp, peaks_threshold_test.cpp).
#include <cstddef>
#include <vector>

#include "psfphot/algo/peaks.hpp"

namespace psfphot::test {

// The same peaks in the same order, values bit for bit equal.
inline bool same_peaks(const std::vector<Peak>& a, const std::vector<Peak>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].x != b[i].x || a[i].y != b[i].y || a[i].value != b[i].value) return false;
  return true;
}

// A peak configuration with an absolute threshold of `t` (ADU).
inline PeakConfig absolute_threshold(double t) {
  PeakConfig c;
  c.mode = ThresholdMode::kAbsolute;
  c.absolute = t;
  return c;
}

}  // namespace psfphot::test
