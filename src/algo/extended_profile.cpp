#include "psfphot/algo/extended_profile.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <vector>

namespace psfphot {
namespace {

struct Pixel {
  float dx, dy;  // from the centre, px
  float v;       // ADU
};

// Pixels within `radius` of (cx, cy), unmasked, as offsets from the centre.
std::vector<Pixel> gather(ImageView<const float> img, ImageView<const MaskBits> msk,
                          MaskBits exclude, double cx, double cy, double radius) {
  std::vector<Pixel> px;
  const int x0 = std::max(0, static_cast<int>(std::floor(cx - radius)));
  const int x1 = std::min(img.width() - 1, static_cast<int>(std::ceil(cx + radius)));
  const int y0 = std::max(0, static_cast<int>(std::floor(cy - radius)));
  const int y1 = std::min(img.height() - 1, static_cast<int>(std::ceil(cy + radius)));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const double dx = x - cx, dy = y - cy;
      if (dx * dx + dy * dy > radius * radius) continue;
      if (!msk.empty() && (msk(x, y) & exclude)) continue;
      const float v = img(x, y);
      if (!std::isfinite(v)) continue;
      px.push_back({static_cast<float>(dx), static_cast<float>(dy), v});
    }
  return px;
}

// Semi-major axis of the ellipse (axis ratio q, major axis at angle t) through (dx, dy).
double semi_major(double dx, double dy, double q, double c, double s) {
  const double u = dx * c + dy * s;   // along the major axis
  const double w = -dx * s + dy * c;  // along the minor axis
  return std::sqrt(u * u + (w / q) * (w / q));
}

// Pixels binned by semi-major axis into annuli [i - 0.5, i + 0.5) (i = 0: a < 0.5) out to
// n_bins; the median of each bin with at least `min_count(i)` pixels, NaN otherwise.
// The median of b (reordered), then again over the values within 3 sigma of it (sigma from
// the median absolute deviation), twice: the bright pixels of a star in an annulus move a
// plain median by a good part of the noise where the annulus is short.
double clipped_median(std::vector<float>& b, std::vector<float>& dev) {
  auto median_of = [](float* first, float* last) {
    float* mid = first + (last - first) / 2;
    std::nth_element(first, mid, last);
    return static_cast<double>(*mid);
  };
  float* first = b.data();
  float* last = b.data() + b.size();
  double m = median_of(first, last);
  for (int it = 0; it < 2 && last - first >= 5; ++it) {
    dev.assign(first, last);
    for (float& d : dev) d = std::abs(d - static_cast<float>(m));
    const double s = 1.4826 * median_of(dev.data(), dev.data() + dev.size());
    if (!(s > 0)) break;
    last = std::partition(first, last, [&](float v) { return std::abs(v - m) <= 3.0 * s; });
    if (last - first < 3) break;
    m = median_of(first, last);
  }
  return m;
}

template <class MinCount>
std::vector<double> annulus_medians(const std::vector<Pixel>& px, double q, double t, int n_bins,
                                    std::vector<std::vector<float>>& bins, MinCount min_count,
                                    double* abs_dev = nullptr, bool clipped = false) {
  const double c = std::cos(t), s = std::sin(t);
  bins.resize(static_cast<std::size_t>(n_bins));
  for (auto& b : bins) b.clear();
  for (const Pixel& p : px) {
    const auto i = static_cast<long>(std::lround(semi_major(p.dx, p.dy, q, c, s)));
    if (i < n_bins) bins[static_cast<std::size_t>(i)].push_back(p.v);
  }
  std::vector<double> med(static_cast<std::size_t>(n_bins), std::nan(""));
  std::vector<float> scratch;
  double dev = 0;
  for (int i = 0; i < n_bins; ++i) {
    auto& b = bins[static_cast<std::size_t>(i)];
    if (b.empty() || static_cast<double>(b.size()) < min_count(i)) continue;
    double m;
    if (clipped) {
      m = clipped_median(b, scratch);
    } else {
      auto mid = b.begin() + static_cast<std::ptrdiff_t>(b.size() / 2);
      std::nth_element(b.begin(), mid, b.end());
      m = *mid;
    }
    med[static_cast<std::size_t>(i)] = m;
    if (abs_dev)
      for (float v : b) dev += std::abs(v - m);
  }
  if (abs_dev) *abs_dev = dev;
  return med;
}

}  // namespace

double EllipticalProfile::semi_major(double px, double py) const {
  return psfphot::semi_major(px - x, py - y, axis_ratio, std::cos(angle_rad), std::sin(angle_rad));
}

double EllipticalProfile::at(double px, double py) const {
  if (light.empty()) return 0.0;
  const double a = semi_major(px, py);
  const auto n = static_cast<double>(light.size());
  if (!(a < n)) return 0.0;
  const auto i = static_cast<std::size_t>(a);
  const double f = a - static_cast<double>(i);
  const double next = i + 1 < light.size() ? light[i + 1] : 0.0;  // falls to 0 past the last
  return (1.0 - f) * light[i] + f * next;
}

EllipticalProfile measure_elliptical_profile(ImageView<const float> img,
                                             ImageView<const MaskBits> msk, MaskBits exclude,
                                             double cx, double cy, double level, int max_a_px,
                                             int max_shape_px) {
  EllipticalProfile p;
  p.x = cx;
  p.y = cy;
  if (img.empty() || max_a_px < 3 || !std::isfinite(cx) || !std::isfinite(cy)) return p;
  std::vector<std::vector<float>> bins;
  // An annulus mostly off the frame or masked ends a profile: a quarter of its pixels.
  auto quarter_ring = [](int i) { return i == 0 ? 1.0 : 0.25 * 2.0 * std::numbers::pi * i; };

  // 1. The circular extent.
  const std::vector<Pixel> all = gather(img, msk, exclude, cx, cy, max_a_px + 0.5);
  const std::vector<double> circ = annulus_medians(all, 1.0, 0.0, max_a_px + 1, bins, quarter_ring);
  // The innermost annuli may hold no usable pixel centre (a centre between pixels: annulus 0
  // is empty for ~21% of positions; a masked or NaN core): they are passed over, as in step 3.
  constexpr int kInner = 3;
  int extent = 0;
  for (int i = 0; i <= max_a_px; ++i) {
    const double m = circ[static_cast<std::size_t>(i)];
    if (!std::isfinite(m) && i < kInner) continue;
    if (!(m > level)) break;
    extent = i + 1;
  }
  p.extent_px = extent;
  if (extent < 3) return p;

  // 2. The ellipse: the smallest spread of the pixels within the extent about their
  // elliptical annulus' median. A fixed set of pixels for every candidate, so the spreads
  // compare; bins need 3 pixels to count (a few-pixel bin has no spread to speak of).
  const double shape_r = std::min<double>(extent, max_shape_px);
  std::vector<Pixel> inner;
  for (const Pixel& q : all)
    if (q.dx * q.dx + q.dy * q.dy <= shape_r * shape_r) inner.push_back(q);
  auto spread = [&](double q, double t) {
    double dev = 0;
    const int n_bins = static_cast<int>(std::ceil(shape_r / q)) + 2;
    annulus_medians(
        inner, q, t, n_bins, bins, [](int) { return 3.0; }, &dev);
    return dev;
  };
  // Coarse to fine, ~30 candidates: the angle at axis ratio 0.6 (a wrong angle spreads any
  // flattened ellipse's annuli), the ratio at that angle, then both in finer steps.
  constexpr double kPi = std::numbers::pi;
  double best_q = 1.0, best_t = 0.0, best = spread(1.0, 0.0);
  auto consider = [&](double q, double t) {
    const double d = spread(q, t);
    if (d < best) best = d, best_q = q, best_t = t;
  };
  double t_coarse = 0.0, d_coarse = std::numeric_limits<double>::infinity();
  for (int k = 0; k < 12; ++k) {
    const double t = k * kPi / 12.0, d = spread(0.6, t);
    if (d < d_coarse) d_coarse = d, t_coarse = t;
  }
  if (d_coarse < best) best = d_coarse, best_q = 0.6, best_t = t_coarse;
  for (double q : {0.85, 0.7, 0.5, 0.4, 0.3}) consider(q, t_coarse);
  if (best_q < 1.0) {
    const double t0 = best_t;
    for (int j = -3; j <= 3; ++j)
      if (j != 0) consider(best_q, t0 + j * kPi / 72.0);
    const double q0 = best_q;
    for (int i = -3; i <= 3; ++i)
      if (i != 0) consider(std::clamp(q0 + 0.025 * i, 0.25, 1.0), best_t);
  }
  p.axis_ratio = best_q;
  p.angle_rad = std::fmod(best_t + kPi, kPi);

  // 3. The profile over elliptical annuli, out to where it reaches the sky. The innermost
  // annuli of a flat ellipse may hold no pixel centre: they take the next one out's value.
  const double q = p.axis_ratio;
  const std::vector<double> med = annulus_medians(
      all, q, p.angle_rad, max_a_px + 1, bins,
      [q](int i) { return i == 0 ? 1.0 : 0.25 * 2.0 * std::numbers::pi * i * q; }, nullptr, true);
  for (std::size_t i = 0; i < med.size(); ++i) {
    double m = med[i];
    if (!std::isfinite(m) && i < kInner)
      for (std::size_t k = i + 1; k < med.size() && k <= kInner && !std::isfinite(m); ++k)
        m = med[k];
    if (!(m > 0)) break;
    p.light.push_back(m);
  }
  return p;
}

void subtract_profile(ImageView<float> img, const EllipticalProfile& p) {
  if (p.empty()) return;
  const double r = p.outer_a() + 1.0;  // the major axis bounds every pixel with light
  const int x0 = std::max(0, static_cast<int>(std::floor(p.x - r)));
  const int x1 = std::min(img.width() - 1, static_cast<int>(std::ceil(p.x + r)));
  const int y0 = std::max(0, static_cast<int>(std::floor(p.y - r)));
  const int y1 = std::min(img.height() - 1, static_cast<int>(std::ceil(p.y + r)));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) img(x, y) = static_cast<float>(img(x, y) - p.at(x, y));
}

}  // namespace psfphot
