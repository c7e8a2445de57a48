#pragma once
// Internal to src/algo (not installed): the threshold test of find_peaks_smoothed's rows
// (peaks.hpp), split from peaks.cpp: which pixels of a smoothed row exceed the threshold,
// against an RMS row or against the background's RMS SplineMap evaluated only where a pixel
// may pass. Thread-safety: pure functions; a SkipScratch belongs to one thread.
#include <vector>

#include "psfphot/algo/background.hpp"

namespace psfphot::detail {

// Appends to xs the x in [x0, x1) with r[x] > t, t = kscale * s[x] (s given) or `absolute`
// (s null), compared in double (a NaN fails), in increasing x (method: peak_candidates.cpp).
void threshold_candidates(const float* r, const float* s, double kscale, double absolute, int x0,
                          int x1, std::vector<int>& xs);

// Scratch for one thread's sigma-mode rows over a SplineMap.
struct SkipScratch {
  SplineMap::Row row;
  std::vector<float> bound;  // per interval: a float below k * every RMS value in it
  std::vector<int> runs;
};

// Appends to xs (in increasing x) the x in [1, w - 1) with r[x] > kscale * rms(x, y), rms the
// map's row y: the same pixels as threshold_candidates over that row, with the map evaluated
// (into s, w floats of scratch) only in blocks where a pixel may pass (proof in
// peak_candidates.cpp).
void spline_threshold_candidates(const float* r, const SplineMap& map, int y, double kscale, int w,
                                 float* s, SkipScratch& sc, std::vector<int>& xs);

}  // namespace psfphot::detail
