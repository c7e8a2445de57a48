#include "psfphot/algo/peaks.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace psfphot {
namespace {

constexpr int kDx[8] = {-1, 0, 1, -1, 1, -1, 0, 1};
constexpr int kDy[8] = {-1, -1, -1, 0, 0, 1, 1, 1};

bool usable(ImageView<const float> img, ImageView<const MaskBits> mask, MaskBits excl, int x,
            int y) {
  return std::isfinite(img(x, y)) && (mask.empty() || !(mask(x, y) & excl));
}

double threshold_at(ImageView<const float> rms, const PeakConfig& cfg, int x, int y) {
  if (cfg.mode == ThresholdMode::kAbsolute) return cfg.absolute;
  return cfg.k_sigma * cfg.rms_scale * rms(x, y);
}

// Full plateau rule for a candidate with at least one equal neighbour: flood the
// 8-connected equal-valued region; the region is a peak if nothing around it is higher,
// and it is reported once, at its first pixel in (y, x) order.
bool plateau_peak(ImageView<const float> img, int x0, int y0) {
  const float v = img(x0, y0);
  std::vector<std::pair<int, int>> stack{{x0, y0}}, seen{{x0, y0}};
  auto visited = [&](int x, int y) {
    return std::find(seen.begin(), seen.end(), std::make_pair(x, y)) != seen.end();
  };
  constexpr std::size_t kMaxRegion = 4096;  // a huge flat region is no star peak
  while (!stack.empty()) {
    auto [x, y] = stack.back();
    stack.pop_back();
    for (int k = 0; k < 8; ++k) {
      const int nx = x + kDx[k], ny = y + kDy[k];
      if (!img.contains(nx, ny)) continue;
      const float nv = img(nx, ny);
      if (nv > v) return false;
      if (nv == v && !visited(nx, ny)) {
        if (ny < y0 || (ny == y0 && nx < x0)) return false;  // an earlier pixel reports it
        if (seen.size() >= kMaxRegion) return false;
        seen.emplace_back(nx, ny);
        stack.emplace_back(nx, ny);
      }
    }
  }
  return true;
}

// Neighbour test shared by both searches (the candidate is already above threshold).
bool is_local_max(ImageView<const float> img, int x, int y) {
  const float v = img(x, y);
  bool tie = false;
  for (int k = 0; k < 8; ++k) {
    const float n = img(x + kDx[k], y + kDy[k]);
    if (n > v) return false;
    tie |= (n == v);
  }
  return !tie || plateau_peak(img, x, y);
}

}  // namespace

std::vector<Peak> find_peaks(ImageView<const float> image, ImageView<const float> rms,
                             ImageView<const MaskBits> mask, const PeakConfig& cfg) {
  const int w = image.width(), h = image.height();
  if (w < 3 || h < 3) return {};
  std::vector<std::vector<Peak>> rows(h);
#pragma omp parallel for schedule(dynamic, 16)
  for (int y = 1; y < h - 1; ++y) {
    const float* r = image.row(y);
    const float* s = cfg.mode == ThresholdMode::kSigma ? rms.row(y) : nullptr;
    const double kscale = cfg.k_sigma * cfg.rms_scale;
    for (int x = 1; x < w - 1; ++x) {
      const float v = r[x];
      // Threshold first: most pixels stop at this one comparison (NaN fails it too).
      const double t = s ? kscale * s[x] : cfg.absolute;
      if (!(v > t)) continue;
      if (!mask.empty() && (mask(x, y) & cfg.exclude_bits)) continue;
      if (is_local_max(image, x, y)) rows[y].push_back({x, y, v});
    }
  }
  std::vector<Peak> out;
  for (auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

std::vector<Peak> find_peaks_naive(ImageView<const float> image, ImageView<const float> rms,
                                   ImageView<const MaskBits> mask, const PeakConfig& cfg) {
  std::vector<Peak> out;
  const int w = image.width(), h = image.height();
  for (int y = 1; y < h - 1; ++y) {
    for (int x = 1; x < w - 1; ++x) {
      // Neighbours first, as the lab's pixel loop does; then threshold and mask.
      if (!is_local_max(image, x, y)) continue;
      if (!(image(x, y) > threshold_at(rms, cfg, x, y))) continue;
      if (!usable(image, mask, cfg.exclude_bits, x, y)) continue;
      out.push_back({x, y, image(x, y)});
    }
  }
  return out;
}

std::vector<Peak> merge_close_peaks(const std::vector<Peak>& peaks, double radius_px) {
  if (radius_px <= 0 || peaks.size() < 2) return peaks;
  std::vector<std::size_t> order(peaks.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Highest first; equal values keep (y, x) order (input order) via stable sort.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return peaks[a].value > peaks[b].value; });
  const double cell = std::max(1.0, radius_px);
  auto key = [&](int cx, int cy) {
    return (static_cast<long long>(cy) << 32) ^ static_cast<unsigned>(cx);
  };
  std::unordered_map<long long, std::vector<std::size_t>> grid;
  std::vector<char> keep(peaks.size(), 0);
  const double r2 = radius_px * radius_px;
  for (std::size_t idx : order) {
    const Peak& p = peaks[idx];
    const int cx = static_cast<int>(std::floor(p.x / cell)),
              cy = static_cast<int>(std::floor(p.y / cell));
    bool near = false;
    for (int dy = -1; dy <= 1 && !near; ++dy)
      for (int dx = -1; dx <= 1 && !near; ++dx) {
        auto it = grid.find(key(cx + dx, cy + dy));
        if (it == grid.end()) continue;
        for (std::size_t j : it->second) {
          const double ddx = peaks[j].x - p.x, ddy = peaks[j].y - p.y;
          if (ddx * ddx + ddy * ddy < r2) {
            near = true;
            break;
          }
        }
      }
    if (!near) {
      keep[idx] = 1;
      grid[key(cx, cy)].push_back(idx);
    }
  }
  std::vector<Peak> out;
  for (std::size_t i = 0; i < peaks.size(); ++i)
    if (keep[i]) out.push_back(peaks[i]);
  return out;
}

std::vector<Peak> merge_peaks_in_regions(const std::vector<Peak>& peaks,
                                         ImageView<const MaskBits> mask, MaskBits bits,
                                         int reach_px) {
  if (mask.empty() || peaks.empty()) return peaks;
  const int w = mask.width(), h = mask.height();
  // Region id per touched pixel, filled lazily: saturated regions are few and small, so
  // a hash map beats a frame-sized label image.
  std::unordered_map<long long, int> label;
  std::vector<int> region_of(peaks.size(), -1);
  int next = 0;
  constexpr std::size_t kMaxRegion = 1 << 20;
  for (std::size_t k = 0; k < peaks.size(); ++k) {
    const Peak& p = peaks[k];
    for (int dy = -reach_px; dy <= reach_px && region_of[k] < 0; ++dy)
      for (int dx = -reach_px; dx <= reach_px && region_of[k] < 0; ++dx) {
        const int x = p.x + dx, y = p.y + dy;
        if (x < 0 || y < 0 || x >= w || y >= h || !(mask(x, y) & bits)) continue;
        const long long key = static_cast<long long>(y) * w + x;
        auto it = label.find(key);
        if (it != label.end()) {
          region_of[k] = it->second;
          break;
        }
        // Flood the new region (8-connected).
        const int id = next++;
        std::vector<long long> stack{key};
        label[key] = id;
        while (!stack.empty() && label.size() < kMaxRegion) {
          const long long cur = stack.back();
          stack.pop_back();
          const int cx = static_cast<int>(cur % w), cy = static_cast<int>(cur / w);
          for (int j = -1; j <= 1; ++j)
            for (int i = -1; i <= 1; ++i) {
              const int nx = cx + i, ny = cy + j;
              if (nx < 0 || ny < 0 || nx >= w || ny >= h || !(mask(nx, ny) & bits)) continue;
              const long long nk = static_cast<long long>(ny) * w + nx;
              if (label.emplace(nk, id).second) stack.push_back(nk);
            }
        }
        region_of[k] = id;
      }
  }
  // The highest peak of each region survives (ties: first in (y, x) order).
  std::vector<int> best(next, -1);
  for (std::size_t k = 0; k < peaks.size(); ++k) {
    const int r = region_of[k];
    if (r >= 0 && (best[r] < 0 || peaks[k].value > peaks[best[r]].value))
      best[r] = static_cast<int>(k);
  }
  std::vector<Peak> out;
  for (std::size_t k = 0; k < peaks.size(); ++k)
    if (region_of[k] < 0 || best[region_of[k]] == static_cast<int>(k)) out.push_back(peaks[k]);
  return out;
}

}  // namespace psfphot
