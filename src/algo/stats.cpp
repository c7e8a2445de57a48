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
// values' sign bit set; -0 just below +0, which changes no median's value), and back.
std::uint32_t float_key(float f) {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
float key_float(std::uint32_t k) {
  return std::bit_cast<float>((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}
constexpr std::size_t kRadixFrom = std::size_t(1) << 16;
}  // namespace

namespace detail {
// Two counting passes over the keys instead of nth_element's partitioning: the first
// counts their top 16 bits (in four interleaved histograms, so that runs of values in one
// bucket, the rule for a flat's narrow spread, do not wait on one counter's updates), the
// second the low 16 bits of the keys in the bucket holding the middle rank, and notes the
// largest key below that bucket. A key is the value, so the middle ranks' counts give the
// middle values themselves: no values are moved or copied (memory: four 256 KiB tables, the
// second pass reusing one).
bool median_radix(const std::vector<float>& v, double* out) {
  const std::size_t n = v.size();
  if (n == 0 || n > std::numeric_limits<std::uint32_t>::max()) return false;
  const std::size_t mid = n / 2;
  constexpr std::size_t kBins = std::size_t(1) << 16;
  std::vector<std::uint32_t> h4(4 * kBins, 0);
  std::uint32_t *h0 = h4.data(), *h1 = h0 + kBins, *h2 = h1 + kBins, *h3 = h2 + kBins;
  bool nan = false;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    nan |=
        (v[i] != v[i]) | (v[i + 1] != v[i + 1]) | (v[i + 2] != v[i + 2]) | (v[i + 3] != v[i + 3]);
    ++h0[float_key(v[i]) >> 16];
    ++h1[float_key(v[i + 1]) >> 16];
    ++h2[float_key(v[i + 2]) >> 16];
    ++h3[float_key(v[i + 3]) >> 16];
  }
  for (; i < n; ++i) {
    nan |= v[i] != v[i];
    ++h0[float_key(v[i]) >> 16];
  }
  if (nan) return false;
  std::size_t below = 0, bucket = 0;
  for (;; ++bucket) {
    const std::size_t c = std::size_t(h0[bucket]) + h1[bucket] + h2[bucket] + h3[bucket];
    if (below + c > mid) break;
    below += c;
  }
  // Second pass: the bucket's low 16 bits (h0 reused), and the largest key below it.
  std::fill(h0, h0 + kBins, 0u);
  std::uint32_t lo_key = 0;  // non-NaN keys are >= key(-inf) = 0x007FFFFF > 0
  // Without branches: a third of a flat's values fall in the bucket, in no order, and the
  // mispredicted branch cost ~8 cycles a value. Every value adds 0 or 1 to its low-bits bin.
  for (float f : v) {
    const std::uint32_t k = float_key(f);
    const std::size_t b = k >> 16;
    h0[k & 0xFFFFu] += b == bucket ? 1u : 0u;
    lo_key = b < bucket && k > lo_key ? k : lo_key;
  }
  // The keys of ranks r - 1 (if r > 0) and r inside the bucket.
  const std::size_t r = mid - below;
  const std::uint32_t base = static_cast<std::uint32_t>(bucket << 16);
  std::size_t seen = 0, sub = 0;
  std::uint32_t lo_in = 0;
  bool have_lo = false;
  for (;; ++sub) {
    if (h0[sub] == 0) continue;
    if (r > 0 && seen <= r - 1 && r - 1 < seen + h0[sub]) {
      lo_in = base | static_cast<std::uint32_t>(sub);
      have_lo = true;
    }
    if (r < seen + h0[sub]) break;
    seen += h0[sub];
  }
  const double hi = key_float(base | static_cast<std::uint32_t>(sub));
  if (n % 2 == 1) {
    *out = hi;
    return true;
  }
  const double lo = key_float(have_lo ? lo_in : lo_key);
  *out = 0.5 * (lo + hi);
  return true;
}
}  // namespace detail

double median_inplace(std::vector<float>& v) {
  double m;
  if (v.size() >= kRadixFrom && detail::median_radix(v, &m)) return m;
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
