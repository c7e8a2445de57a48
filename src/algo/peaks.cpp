#include "psfphot/algo/peaks.hpp"

#include "peak_candidates.hpp"
#include "psfphot/algo/smooth.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace psfphot {
namespace {

constexpr int kDx[8] = {-1, 0, 1, -1, 1, -1, 0, 1};
constexpr int kDy[8] = {-1, -1, -1, 0, 0, 1, 1, 1};

bool usable(ImageView<const float> img, ImageView<const MaskBits> mask, MaskBits excl, int x,
            int y) {
  return std::isfinite(img(x, y)) && (mask.empty() || !(mask(x, y) & excl));
}

double threshold_at(const FloatPlane& rms, const PeakConfig& cfg, int x, int y) {
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

std::vector<Peak> find_peaks(ImageView<const float> image, const FloatPlane& rms,
                             ImageView<const MaskBits> mask, const PeakConfig& cfg) {
  const int w = image.width(), h = image.height();
  if (w < 3 || h < 3) return {};
  std::vector<std::vector<Peak>> rows(h);
#pragma omp parallel
  {
    std::vector<int> xs;
    std::vector<float> rms_row(static_cast<std::size_t>(rms.width()));  // a computed RMS row
#pragma omp for schedule(dynamic, 16)
    for (int y = 1; y < h - 1; ++y) {
      const float* r = image.row(y);
      const float* s = cfg.mode == ThresholdMode::kSigma ? rms.row(y, rms_row.data()) : nullptr;
      // Threshold first: most pixels stop at this one comparison (NaN fails it too).
      xs.clear();
      detail::threshold_candidates(r, s, cfg.k_sigma * cfg.rms_scale, cfg.absolute, 1, w - 1, xs);
      for (int x : xs) {
        if (!mask.empty() && (mask(x, y) & cfg.exclude_bits)) continue;
        if (is_local_max(image, x, y)) rows[y].push_back({x, y, r[x]});
      }
    }
  }
  std::vector<Peak> out;
  for (auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

namespace {

// find_peaks_smoothed with the RMS as `rms`, or, when map is given, as map->plane() (rms
// unused), evaluated only where the threshold may pass (spline_threshold_candidates).
std::vector<Peak> find_peaks_smoothed_impl(ImageView<const float> image, const FloatPlane& rms,
                                           const SplineMap* map, ImageView<const MaskBits> mask,
                                           MaskBits smooth_exclude_bits, double sigma_px,
                                           bool lowered, const PeakConfig& cfg) {
  const int w = image.width(), h = image.height();
  if (w < 3 || h < 3) return {};
  // Blocks of rows for the threads to share. Each block smooths 2 r + 2 rows beyond its own
  // (r = the kernel half-width: the rows its first and last searched rows need), ~9% more
  // rows at 128 rows a block and r = 5; one thread takes the whole frame as one block. The
  // smoothed rows and the peaks do not depend on the blocks (SmoothRowStreamer's rows are
  // the same bits whatever range they are asked in).
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  const int block = threads > 1 ? 128 : h;
  const int nblocks = (h + block - 1) / block;
  std::vector<std::vector<Peak>> rows(h);
  std::vector<std::vector<std::pair<int, int>>> ties(nblocks);  // (x, y), plateau candidates
  const double kscale = cfg.k_sigma * cfg.rms_scale;
  const bool sigma_mode = cfg.mode == ThresholdMode::kSigma;
#pragma omp parallel
  {
    SmoothRowStreamer st(image, mask, smooth_exclude_bits, sigma_px, lowered);
    static_assert(SmoothRowStreamer::kKeep - SmoothRowStreamer::kGroup >= 2);
    // The last three rows the streamer passed, read in place (it keeps them intact until
    // kKeep - kGroup >= 2 more rows have been passed).
    const float* lines[3] = {};
    std::vector<int> xs;
    std::vector<float> rms_row(sigma_mode ? static_cast<std::size_t>(std::max(w, rms.width())) : 0);
    detail::SkipScratch skip;
    auto line = [&](int y) { return lines[y % 3]; };
    // Dynamic, as gaussian_smooth's blocks: a static split waits for the slowest thread.
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < nblocks; ++b) {
      const int y0 = b * block, y1 = std::min(h, y0 + block);
      const int ya = std::max(1, y0), yb = std::min(h - 1, y1);  // rows searched
      // The same test as find_peaks, row yy once rows yy - 1 .. yy + 1 are in the ring.
      auto search = [&](int yy) {
        const float* up = line(yy - 1);
        const float* r = line(yy);
        const float* dn = line(yy + 1);
        xs.clear();
        if (sigma_mode && map) {
          detail::spline_threshold_candidates(r, *map, yy, kscale, w, rms_row.data(), skip, xs);
        } else {
          const float* s = sigma_mode ? rms.row(yy, rms_row.data()) : nullptr;
          detail::threshold_candidates(r, s, kscale, cfg.absolute, 1, w - 1, xs);
        }
        for (int x : xs) {
          const float v = r[x];
          if (!mask.empty() && (mask(x, yy) & cfg.exclude_bits)) continue;
          const float nb[8] = {up[x - 1], up[x],     up[x + 1], r[x - 1],
                               r[x + 1],  dn[x - 1], dn[x],     dn[x + 1]};
          bool higher = false, tie = false;
          for (float n : nb) {
            higher |= n > v;
            tie |= n == v;
          }
          if (higher) continue;
          if (tie)
            ties[b].emplace_back(x, yy);
          else
            rows[yy].push_back({x, yy, v});
        }
      };
      st.run(std::max(0, y0 - 1), std::min(h, y1 + 1), [&](int y, const float* row) {
        lines[y % 3] = row;
        if (y - 1 >= ya && y - 1 < yb) search(y - 1);
      });
    }
  }
  bool any_tie = false;
  for (const auto& t : ties) any_tie |= !t.empty();
  if (any_tie) {
    const Image<float> sm = gaussian_smooth(image, mask, smooth_exclude_bits, sigma_px, lowered);
    for (const auto& tb : ties)
      for (auto [x, y] : tb) {
        if (!plateau_peak(sm.cview(), x, y)) continue;
        auto& r = rows[y];
        const Peak p{x, y, sm(x, y)};
        r.insert(std::upper_bound(r.begin(), r.end(), p,
                                  [](const Peak& a, const Peak& c) { return a.x < c.x; }),
                 p);
      }
  }
  std::vector<Peak> out;
  for (auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

}  // namespace

std::vector<Peak> find_peaks_smoothed(ImageView<const float> image, const FloatPlane& rms,
                                      ImageView<const MaskBits> mask, MaskBits smooth_exclude_bits,
                                      double sigma_px, bool lowered, const PeakConfig& cfg) {
  return find_peaks_smoothed_impl(image, rms, nullptr, mask, smooth_exclude_bits, sigma_px, lowered,
                                  cfg);
}

std::vector<Peak> find_peaks_smoothed(ImageView<const float> image, const SplineMap& rms,
                                      ImageView<const MaskBits> mask, MaskBits smooth_exclude_bits,
                                      double sigma_px, bool lowered, const PeakConfig& cfg) {
  if (rms.width() != image.width() || rms.height() != image.height())
    throw std::invalid_argument("find_peaks_smoothed: the RMS map's size differs from the image's");
  return find_peaks_smoothed_impl(image, rms.plane(), &rms, mask, smooth_exclude_bits, sigma_px,
                                  lowered, cfg);
}

std::vector<Peak> find_peaks_naive(ImageView<const float> image, const FloatPlane& rms,
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
