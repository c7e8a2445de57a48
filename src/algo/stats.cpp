#include "psfphot/algo/stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace psfphot {
namespace {
template <typename T>
double median_impl(std::vector<T>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t n = v.size(), mid = n / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  double hi = v[mid];
  if (n % 2 == 1) return hi;
  // The lower middle is the maximum of the lower partition.
  double lo = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lo + hi);
}
// Order-preserving unsigned keys of floats (negative values' bits inverted, positive
// values' sign bit set), -0 keyed as +0 (they compare equal); and back.
std::uint32_t float_key(float f) {
  std::uint32_t b = std::bit_cast<std::uint32_t>(f);
  if (b == 0x80000000u) b = 0;
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
float key_float(std::uint32_t k) {
  return std::bit_cast<float>((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}

// The median of a large float vector by radix selection instead of nth_element: one
// counting pass over the keys' top 16 bits finds the bucket holding the middle rank, a
// second pass gathers that bucket's values (and the largest value below it), and only
// those are partially sorted. The middle values are the same order statistics
// nth_element finds, so the same median (to the sign of a zero: either zero of a median of
// zeros). ~2 passes instead of nth_element's ~3-4 over a flat's 4-16 M pixels (the master
// flat's per-flat medians). NaN present (outside the contract): nth_element, as before.
// Returns false (v untouched) for the NaN case.
bool median_radix(std::vector<float>& v, double* out) {
  const std::size_t n = v.size(), mid = n / 2;
  std::vector<std::uint32_t> hist(std::size_t(1) << 16, 0);
  bool nan = false;
  for (float f : v) {
    nan |= f != f;
    ++hist[float_key(f) >> 16];
  }
  if (nan) return false;
  std::size_t below = 0, bucket = 0;
  while (below + hist[bucket] <= mid) below += hist[bucket++];
  const std::size_t r = mid - below;  // rank of the upper middle inside the bucket
  std::vector<float> in;
  in.reserve(hist[bucket]);
  std::uint32_t lo_key = 0;  // largest key below the bucket (used when r == 0)
  for (float f : v) {
    const std::uint32_t k = float_key(f);
    const std::size_t b = k >> 16;
    if (b == bucket)
      in.push_back(f);
    else if (b < bucket && k > lo_key)
      lo_key = k;
  }
  std::nth_element(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(r), in.end());
  const double hi = in[r];
  if (n % 2 == 1) {
    *out = hi;
    return true;
  }
  const double lo = r > 0
                        ? *std::max_element(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(r))
                        : key_float(lo_key);
  *out = 0.5 * (lo + hi);
  return true;
}
constexpr std::size_t kRadixFrom = std::size_t(1) << 16;
}  // namespace

double median_inplace(std::vector<float>& v) {
  double m;
  if (v.size() >= kRadixFrom && median_radix(v, &m)) return m;
  return median_impl(v);
}
double median_inplace(std::vector<double>& v) {
  return median_impl(v);
}

double mad_std_inplace(std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  double med = median_impl(v);
  for (auto& x : v) x = std::abs(x - med);
  return 1.482602218505602 * median_impl(v);
}

ClippedStats sigma_clip_inplace(std::vector<float>& v, double kappa, int max_iter) {
  ClippedStats s;
  for (int it = 0; it < max_iter && !v.empty(); ++it) {
    // Sums in double, in index order: deterministic.
    double sum = 0, sum2 = 0;
    for (float x : v) sum += x;
    const double mean = sum / static_cast<double>(v.size());
    for (float x : v) sum2 += (x - mean) * (x - mean);
    const double sd = std::sqrt(sum2 / static_cast<double>(v.size()));
    const double med = median_impl(v);
    s.mean = mean;
    s.median = med;
    s.stddev = sd;
    s.n = v.size();
    s.iterations = it + 1;
    if (sd == 0) break;
    const double lo = med - kappa * sd, hi = med + kappa * sd;
    auto end = std::remove_if(v.begin(), v.end(), [&](float x) { return x <= lo || x >= hi; });
    if (end == v.end()) break;
    v.erase(end, v.end());
  }
  if (v.empty()) {
    s.n = 0;
  }
  return s;
}

ImageStats image_stats(ImageView<const float> v) {
  ImageStats s;
  std::vector<float> vals;
  vals.reserve(v.size());
  double sum = 0;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -std::numeric_limits<double>::infinity();
  for (int y = 0; y < v.height(); ++y) {
    const float* r = v.row(y);
    for (int x = 0; x < v.width(); ++x) {
      if (!std::isfinite(r[x])) {
        ++s.n_nonfinite;
        continue;
      }
      vals.push_back(r[x]);
      sum += r[x];
      s.min = std::min<double>(s.min, r[x]);
      s.max = std::max<double>(s.max, r[x]);
    }
  }
  s.n_finite = vals.size();
  if (vals.empty()) {
    s.min = s.max = s.mean = s.median = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  s.mean = sum / static_cast<double>(vals.size());
  s.median = median_inplace(vals);
  return s;
}

}  // namespace psfphot
