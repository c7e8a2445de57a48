#pragma once
// Internal to src/algo (not installed): the per-mesh clipped statistics of the background
// (background.cpp), in their own file pair.
// Thread-safety: one MeshScratch per thread; the function is otherwise pure.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "psfphot/algo/stats.hpp"

namespace psfphot::detail {

// Buffers reused from mesh to mesh (one per thread).
struct MeshScratch {
  std::vector<float> w;              // the pixels, arranged bucket by bucket
  std::vector<std::uint16_t> bin;    // per input pixel: its stream (quarter) x buckets + bucket
  std::vector<std::uint32_t> start;  // first position of each bucket in w (+ end)
  std::vector<std::uint32_t> cur;    // counts, then scatter cursors, of 4 input streams
  std::vector<std::uint16_t> cur16;  // the same for meshes of < 65536 values
  std::vector<std::uint8_t> sorted;  // per bucket: its still-kept part is sorted
};

// Iterative kappa-sigma clipping about the median of the n finite values v (at most
// max_iter iterations, until the kept set no longer changes or its standard deviation is 0):
// each iteration keeps the values strictly inside (median - kappa sd, median + kappa sd),
// intersected with the previous intervals. Returns the mean, median (mean of the two middle
// values for an even count), population standard deviation and count of the last kept set,
// and the iterations run. The kept sets and medians are exact order statistics; v is not
// modified. Deterministic.
ClippedStats clip_mesh(const float* v, std::size_t n, MeshScratch& s, double kappa, int max_iter);

}  // namespace psfphot::detail
