#include "psfphot/algo/stats.hpp"

#include <algorithm>
#include <cmath>
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
}  // namespace

double median_inplace(std::vector<float>& v) {
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
