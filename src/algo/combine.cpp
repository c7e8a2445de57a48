// combine_frames (calibrate.hpp): master darks and flats, pixel by pixel over a stack of
// frames, sigma-clipped mean or median. Kept apart from the per-frame calibration.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "psfphot/algo/calibrate.hpp"
#include "psfphot/algo/stats.hpp"
#include "psfphot/core/simd.hpp"

namespace psfphot {
namespace {

// Scratch vectors of the per-pixel reference combination, one set per thread.
struct CombineScratch {
  std::vector<float> v, work;
  std::vector<double> dev;
};

// One pixel of combine_frames, the general way: any number of frames, non-finite values
// dropped. rows[i] is frame i's row; scales nullptr = none.
float combine_pixel(const float* const* rows, std::size_t n, int x, const CombineConfig& cfg,
                    const double* scales, CombineScratch& s) {
  std::vector<float>& v = s.v;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    float p = rows[i][x];
    if (scales) p = static_cast<float>(p * scales[i]);
    if (std::isfinite(p)) v[k++] = p;
  }
  if (k == 0) return std::numeric_limits<float>::quiet_NaN();
  s.work.assign(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k));
  const double med = median_inplace(s.work);
  if (cfg.method == CombineMethod::kMedian || k < 3) return static_cast<float>(med);
  // Clip about the median with a MAD sigma: robust to the hot pixels and cosmic
  // rays single frames carry, which a plain stddev would let through.
  std::vector<double>& dev = s.dev;
  dev.resize(k);
  for (std::size_t i = 0; i < k; ++i) dev[i] = v[i];
  const double sigma = mad_std_inplace(dev);
  double centre = med;
  double mean = med;
  // A MAD of 0 (more than half the frames agree exactly, common for integer-valued
  // bias/dark frames) clips to the values equal to the median; those always exist
  // then, so a hit in one frame is still rejected instead of averaged in.
  for (int it = 0; it < cfg.clip_iterations; ++it) {
    double sum = 0;
    std::size_t m = 0;
    for (std::size_t i = 0; i < k; ++i) {
      if (std::abs(v[i] - centre) <= cfg.clip_kappa * sigma) {
        sum += v[i];
        ++m;
      }
    }
    if (m == 0) break;
    mean = sum / static_cast<double>(m);
    centre = mean;
  }
  return static_cast<float>(mean);
}

typedef float V4f __attribute__((vector_size(16)));
typedef std::int32_t V4i __attribute__((vector_size(16)));
typedef double V4d __attribute__((vector_size(32)));
typedef std::int64_t V4l __attribute__((vector_size(32)));

// Stacks up to this many frames take the vector path (its sorting network is n(n-1)/2
// compare-exchanges); deeper stacks the per-pixel one.
constexpr std::size_t kMaxVectorStack = 48;

// Sorts a[0..n) lane by lane (an insertion network: no branch on the data, so four pixels
// sort at once). No NaN may be present.
inline void sort_lanes(V4d* a, std::size_t n) {
  for (std::size_t i = 1; i < n; ++i) {
    for (std::size_t j = i; j > 0; --j) {
      const V4d lo = a[j - 1], hi = a[j];
      const V4l lt = lo < hi;
      a[j - 1] = lt ? lo : hi;
      a[j] = lt ? hi : lo;
    }
  }
}

// Median of sorted lanes into *m, as median_inplace computes it (mean of the two middle
// values). (Through a pointer: a function returning a vector type would change with the
// clone's ABI.)
inline void median_sorted(const V4d* s, std::size_t n, V4d* m) {
  *m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

// combine_frames over one row, four pixels at a time, with the operations of combine_pixel
// in the same order and precision, so the same bits: the median is the same multiset's
// middle (a sorting network instead of nth_element), the MAD the median of the same
// deviations, the clipped sums add the kept values in frame order (adding +0.0 for a clipped
// one changes no sum: a sum that starts at +0 never becomes -0), and a lane whose clipping
// keeps nothing keeps its mean, as the loop's `break` does (the next iterations find nothing
// again). A group of four with a non-finite value or a -0 (whose rank among equal values
// nth_element leaves open) goes through combine_pixel. n <= kMaxVectorStack.
PSFPHOT_VECTOR_CLONES void combine_row(const float* const* rows, std::size_t n, int w,
                                       const CombineConfig& cfg, const double* scales, float* out,
                                       CombineScratch& scratch) {
  V4d v[kMaxVectorStack], s[kMaxVectorStack];
  constexpr float kMax = std::numeric_limits<float>::max();
  const V4i abs_bits = V4i{} + 0x7FFFFFFF;
  const V4i neg_zero = V4i{} + static_cast<std::int32_t>(0x80000000u);
  const V4f vmax = V4f{} + kMax;
  const V4l abs64 = V4l{} + 0x7FFFFFFFFFFFFFFFll;
  const bool median_only = cfg.method == CombineMethod::kMedian || n < 3;
  const double kappa = cfg.clip_kappa;
  int x = 0;
  for (; x + 4 <= w; x += 4) {
    V4i good = V4i{} - 1;
    for (std::size_t i = 0; i < n; ++i) {
      V4f p;
      std::memcpy(&p, rows[i] + x, sizeof p);
      if (scales) {
        p = __builtin_convertvector(__builtin_convertvector(p, V4d) * scales[i], V4f);
      }
      const V4i bits = __builtin_bit_cast(V4i, p);
      good &= (__builtin_bit_cast(V4f, bits & abs_bits) <= vmax) & (bits != neg_zero);
      v[i] = __builtin_convertvector(p, V4d);
    }
    if (!(good[0] & good[1] & good[2] & good[3])) {
      for (int l = 0; l < 4; ++l) out[x + l] = combine_pixel(rows, n, x + l, cfg, scales, scratch);
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) s[i] = v[i];
    sort_lanes(s, n);
    V4d med;
    median_sorted(s, n, &med);
    V4d mean = med;
    if (!median_only) {
      for (std::size_t i = 0; i < n; ++i)
        s[i] = __builtin_bit_cast(V4d, __builtin_bit_cast(V4l, v[i] - med) & abs64);
      sort_lanes(s, n);
      V4d mad;
      median_sorted(s, n, &mad);
      const V4d sigma = 1.482602218505602 * mad;
      const V4d limit = kappa * sigma;
      for (int it = 0; it < cfg.clip_iterations; ++it) {
        V4d sum = V4d{}, m = V4d{};
        for (std::size_t i = 0; i < n; ++i) {
          const V4d d = __builtin_bit_cast(V4d, __builtin_bit_cast(V4l, v[i] - mean) & abs64);
          const V4l keep = d <= limit;
          sum += keep ? v[i] : V4d{};
          m += keep ? V4d{} + 1.0 : V4d{};
        }
        mean = m > 0 ? sum / m : mean;
      }
    }
    const V4f o = __builtin_convertvector(mean, V4f);
    std::memcpy(out + x, &o, sizeof o);
  }
  for (; x < w; ++x) out[x] = combine_pixel(rows, n, x, cfg, scales, scratch);
}

}  // namespace

Image<float> combine_frames(const std::vector<ImageView<const float>>& frames,
                            const CombineConfig& cfg, const std::vector<double>& scales) {
  if (frames.empty()) throw CalibrationError("no frames to combine");
  const int w = frames[0].width(), h = frames[0].height();
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].width() != w || frames[i].height() != h) {
      throw CalibrationError("frame " + std::to_string(i) + " is " +
                             std::to_string(frames[i].width()) + "x" +
                             std::to_string(frames[i].height()) + ", frame 0 is " +
                             std::to_string(w) + "x" + std::to_string(h));
    }
  }
  if (!scales.empty() && scales.size() != frames.size()) {
    throw CalibrationError("combine_frames: one scale per frame expected");
  }
  Image<float> out(w, h);
  const std::size_t n = frames.size();
  const double* sc = scales.empty() ? nullptr : scales.data();
#pragma omp parallel
  {
    CombineScratch scratch;
    scratch.v.resize(n);
    std::vector<const float*> rows(n);
#pragma omp for schedule(static)
    for (int y = 0; y < h; ++y) {
      for (std::size_t i = 0; i < n; ++i) rows[i] = frames[i].row(y);
      float* o = out.data() + static_cast<std::size_t>(y) * w;
      if (n <= kMaxVectorStack) {
        combine_row(rows.data(), n, w, cfg, sc, o, scratch);
      } else {
        for (int x = 0; x < w; ++x) o[x] = combine_pixel(rows.data(), n, x, cfg, sc, scratch);
      }
    }
  }
  return out;
}

}  // namespace psfphot
