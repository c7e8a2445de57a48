#include "psfphot/algo/centroid.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "psfphot/core/star.hpp"
#include "window.hpp"

namespace psfphot {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool inside(ImageView<const float> img, int x0, int y0, int half) {
  return detail::window_inside(img, x0, y0, half);
}
}  // namespace

Centroid centroid_lab(ImageView<const float> image, ImageView<const MaskBits> mask, int peak_x,
                      int peak_y, int window_px, MaskBits exclude_bits) {
  Centroid c;
  const int half = window_px / 2;
  if (!inside(image, peak_x, peak_y, half)) {
    c.x = c.y = kNaN;
    c.flags |= star_flag::kEdge;
    return c;
  }
  double s = 0, sx = 0, sy = 0;
  for (int y = peak_y - half; y <= peak_y + half; ++y)
    for (int x = peak_x - half; x <= peak_x + half; ++x) {
      const float v = image(x, y);
      if (!std::isfinite(v) || (!mask.empty() && (mask(x, y) & exclude_bits))) {
        c.flags |= star_flag::kMaskedPixel;
        continue;
      }
      s += v;
      sx += v * x;
      sy += v * y;
    }
  c.iterations = 1;
  if (!(s > 0)) {
    c.x = c.y = kNaN;
    c.flags |= star_flag::kCentroidNoConverge;
    return c;
  }
  c.x = sx / s;
  c.y = sy / s;
  return c;
}

Centroid centroid_windowed(ImageView<const float> image, ImageView<const MaskBits> mask, int peak_x,
                           int peak_y, const CentroidConfig& cfg) {
  const double sw = cfg.window_sigma_px;
  const int half = static_cast<int>(std::ceil(4.0 * sw));
  if (!inside(image, peak_x, peak_y, half)) {
    Centroid c;
    c.x = c.y = kNaN;
    c.flags |= star_flag::kEdge;
    return c;
  }
  // Start from the lab's box centroid (3x3-ish box is enough to leave the pixel grid).
  Centroid c = centroid_lab(image, mask, peak_x, peak_y, 3, cfg.exclude_bits);
  std::uint32_t masked = 0;
  if (!std::isfinite(c.x)) {
    c.x = peak_x;
    c.y = peak_y;
    c.flags = 0;
  }
  const double inv2s2 = 0.5 / (sw * sw);
  // The Gaussian window is separable, exp(-(dx^2 + dy^2) k) = exp(-dx^2 k) exp(-dy^2 k):
  // 2 (2 half + 1) exponentials per iteration instead of one per pixel, which made the
  // step bound by exp (same weights to a few ulp).
  const int n = 2 * half + 1;
  std::vector<double> wx(static_cast<std::size_t>(n)), wy(static_cast<std::size_t>(n));
  bool converged = false;
  int it = 0;
  for (; it < cfg.max_iter; ++it) {
    for (int k = 0; k < n; ++k) {
      const double dx = peak_x - half + k - c.x, dy = peak_y - half + k - c.y;
      wx[static_cast<std::size_t>(k)] = std::exp(-dx * dx * inv2s2);
      wy[static_cast<std::size_t>(k)] = std::exp(-dy * dy * inv2s2);
    }
    double s = 0, sx = 0, sy = 0;
    for (int y = peak_y - half; y <= peak_y + half; ++y) {
      const double dy = y - c.y;
      const double wrow = wy[static_cast<std::size_t>(y - peak_y + half)];
      for (int x = peak_x - half; x <= peak_x + half; ++x) {
        const float v = image(x, y);
        if (!std::isfinite(v) || (!mask.empty() && (mask(x, y) & cfg.exclude_bits))) {
          masked = star_flag::kMaskedPixel;
          continue;
        }
        const double dx = x - c.x;
        const double wv = wx[static_cast<std::size_t>(x - peak_x + half)] * wrow * v;
        s += wv;
        sx += wv * dx;
        sy += wv * dy;
      }
    }
    if (!(s > 0)) break;
    const double stepx = 2.0 * sx / s, stepy = 2.0 * sy / s;
    c.x += stepx;
    c.y += stepy;
    if (std::abs(c.x - peak_x) > 2.0 || std::abs(c.y - peak_y) > 2.0) break;
    if (stepx * stepx + stepy * stepy < cfg.tolerance_px * cfg.tolerance_px) {
      converged = true;
      ++it;
      break;
    }
  }
  if (!converged) {
    Centroid fb = centroid_lab(image, mask, peak_x, peak_y, cfg.window_px, cfg.exclude_bits);
    fb.flags |= star_flag::kCentroidNoConverge | masked;
    return fb;
  }
  c.iterations = it;
  c.flags |= masked;
  return c;
}

Centroid measure_centroid(ImageView<const float> image, ImageView<const MaskBits> mask, int peak_x,
                          int peak_y, const CentroidConfig& cfg) {
  if (cfg.method == CentroidMethod::kLab)
    return centroid_lab(image, mask, peak_x, peak_y, cfg.window_px, cfg.exclude_bits);
  return centroid_windowed(image, mask, peak_x, peak_y, cfg);
}

RegionCentre masked_region_centre(ImageView<const MaskBits> mask, int x, int y, MaskBits bits,
                                  int reach_px, long max_pixels) {
  RegionCentre r;
  r.x = r.y = std::numeric_limits<double>::quiet_NaN();
  if (mask.empty()) return r;
  const int w = mask.width(), h = mask.height();
  int sx = -1, sy = -1;
  // The seed: the touching region pixel nearest the given pixel (first in (y, x) order).
  for (int d = 0; d <= reach_px && sx < 0; ++d)
    for (int dy = -d; dy <= d && sx < 0; ++dy)
      for (int dx = -d; dx <= d; ++dx) {
        if (std::max(std::abs(dx), std::abs(dy)) != d) continue;
        const int px = x + dx, py = y + dy;
        if (px < 0 || py < 0 || px >= w || py >= h || !(mask(px, py) & bits)) continue;
        sx = px;
        sy = py;
        break;
      }
  if (sx < 0) return r;
  // Flood fill; a set of visited pixels (regions are small next to the frame).
  std::vector<std::pair<int, int>> stack{{sx, sy}}, pixels;
  std::unordered_set<long long> seen{static_cast<long long>(sy) * w + sx};
  while (!stack.empty()) {
    const auto [cx, cy] = stack.back();
    stack.pop_back();
    pixels.emplace_back(cx, cy);
    if (static_cast<long>(pixels.size()) > max_pixels) return r;
    for (int j = -1; j <= 1; ++j)
      for (int i = -1; i <= 1; ++i) {
        const int nx = cx + i, ny = cy + j;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h || !(mask(nx, ny) & bits)) continue;
        if (seen.insert(static_cast<long long>(ny) * w + nx).second) stack.emplace_back(nx, ny);
      }
  }
  // Sum in (y, x) order: the result must not depend on the fill order.
  std::sort(pixels.begin(), pixels.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second, a.first) < std::tie(b.second, b.first);
  });
  double sum_x = 0, sum_y = 0;
  for (const auto& [px, py] : pixels) {
    sum_x += px;
    sum_y += py;
  }
  r.n_pixels = static_cast<long>(pixels.size());
  r.x = sum_x / static_cast<double>(r.n_pixels);
  r.y = sum_y / static_cast<double>(r.n_pixels);
  for (const auto& [px, py] : pixels)
    r.radius_px = std::max(r.radius_px, std::hypot(px - r.x, py - r.y));
  return r;
}

}  // namespace psfphot
