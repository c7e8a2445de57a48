#include "psfphot/algo/peaks.hpp"

#include "psfphot/algo/smooth.hpp"
#include "psfphot/core/simd.hpp"

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

typedef float V8 __attribute__((vector_size(32)));
typedef int I8 __attribute__((vector_size(32)));
typedef long long L4 __attribute__((vector_size(32)));

// Appends to xs the x in [x0, x1) with r[x] > t, t = kscale * s[x] (kS: s given) or
// `absolute`, compared in double exactly as the scalar test (NaN fails it), in increasing x.
// About 0.5% of the pixels pass: a float test of 8 pixels at a time lets through every pixel
// that can pass, and only a group of kGroupPx pixels with one is tested pixel by pixel in
// double (the scalar loop, one branch per pixel, was most of the search; a double test
// converts every pixel). The float tests of four vectors are OR-ed before the one branch and
// the one reduction of the mask to a scalar (per vector, the reduction's lane extractions
// were most of this function); the pixels passed on are the same for any grouping, since the
// double test decides each of them.
// Why the float test lets every passing pixel through: with kf = float(kscale), the float
// product tf = kf * s is within |tf| 2^-22 (+ 2^-149 when subnormal) of the double t, and
// lo = tf - |tf| 2^-20 - 1e-38 lies below t; a pixel with r > t has r > lo. A NaN lo (an
// infinite tf) or r fails `r <= lo`, so such pixels are tested in double too.
template <bool kS>
[[gnu::always_inline]] inline void threshold_candidates_impl(const float* r, const float* s,
                                                             double kscale, double absolute, int x0,
                                                             int x1, std::vector<int>& xs) {
  auto pass = [&](int x) {
    const double t = kS ? kscale * s[x] : absolute;
    return r[x] > t;
  };
  // The largest float below `absolute` (NaN stays NaN: every pixel is tested).
  float abs_lo = static_cast<float>(absolute);
  if (static_cast<double>(abs_lo) >= absolute)
    abs_lo = std::nextafter(abs_lo, -std::numeric_limits<float>::infinity());
  // The bound above needs kf within 2^-24 relative of kscale: not so for a |kscale| below the
  // smallest normal float; then a NaN kf sends every pixel to the double test.
  const float kf = (kscale != 0.0 && !(std::abs(kscale) >= std::numeric_limits<float>::min()))
                       ? std::numeric_limits<float>::quiet_NaN()
                       : static_cast<float>(kscale);
  const V8 kv = V8{} + kf, lov = V8{} + abs_lo, rel = V8{} + 0x1p-20f, tiny = V8{} + 1e-38f;
  const I8 absmask = I8{} + 0x7fffffff;
  // ~(r <= lo) for the 8 pixels at x: all ones in a lane whose pixel may pass. (Returned
  // through a reference: a vector return value would change with the clone's ABI.)
  auto maybe = [&](int x, I8& out) {
    V8 v;
    std::memcpy(&v, r + x, sizeof v);
    V8 lo = lov;
    if constexpr (kS) {
      V8 sv;
      std::memcpy(&sv, s + x, sizeof sv);
      const V8 tf = kv * sv;
      const V8 atf = reinterpret_cast<V8>(reinterpret_cast<I8>(tf) & absmask);
      lo = tf - atf * rel - tiny;
    }
    out = ~(v <= lo);
  };
  constexpr int kGroupPx = 32;
  int x = x0;
  for (; x + kGroupPx <= x1; x += kGroupPx) {
    I8 m0, m1, m2, m3;
    maybe(x, m0);
    maybe(x + 8, m1);
    maybe(x + 16, m2);
    maybe(x + 24, m3);
    const L4 m = reinterpret_cast<L4>((m0 | m1) | (m2 | m3));
    if (!((m[0] | m[1]) | (m[2] | m[3]))) continue;
    for (int k = x; k < x + kGroupPx; ++k)
      if (pass(k)) xs.push_back(k);
  }
  for (; x + 8 <= x1; x += 8) {
    I8 m0;
    maybe(x, m0);
    const L4 m = reinterpret_cast<L4>(m0);
    if (!((m[0] | m[1]) | (m[2] | m[3]))) continue;
    for (int k = x; k < x + 8; ++k)
      if (pass(k)) xs.push_back(k);
  }
  for (; x < x1; ++x)
    if (pass(x)) xs.push_back(x);
}

PSFPHOT_VECTOR_CLONES void threshold_candidates(const float* r, const float* s, double kscale,
                                                double absolute, int x0, int x1,
                                                std::vector<int>& xs) {
  if (s)
    threshold_candidates_impl<true>(r, s, kscale, absolute, x0, x1, xs);
  else
    threshold_candidates_impl<false>(r, nullptr, kscale, absolute, x0, x1, xs);
}

// The sigma-mode search with the RMS map as a SplineMap: the map's row is evaluated, and the
// threshold tested, only in blocks of up to kSkipPx pixels (each within one spline interval)
// where a pixel may pass. A block is skipped when no smoothed value in it exceeds a float
// bound below k * rms there (from the interval's lower bound, SplineMap::Row::lower); there no
// pixel can pass r > k * rms, so the candidates, and every peak, are the same as when testing
// every pixel (proof at spline_threshold_candidates).
constexpr int kSkipPx = 16;

// Whether some r[x] > b for x in [x0, x0 + 8 * kVecs) (a NaN fails, as it fails r > t).
template <int kVecs>
[[gnu::always_inline]] inline bool any_above(const float* r, int x0, const V8 b) {
  I8 m = I8{};
#pragma GCC unroll 8
  for (int i = 0; i < kVecs; ++i) {
    V8 v;
    std::memcpy(&v, r + x0 + 8 * i, sizeof v);
    m |= v > b;
  }
  const L4 l = reinterpret_cast<L4>(m);
  return ((l[0] | l[1]) | (l[2] | l[3])) != 0;
}

// The pixels of row r (w wide) that may pass, as runs [runs[2 i], runs[2 i + 1]) in increasing
// x, merged where they touch; returns their count. Interval k covers [begin[k], end[k]) (in
// increasing x) with bound[k]. Blocks of kSkipPx pixels from each interval's start, four at a
// time where there are four (most are skipped: one test for 64 pixels); a shorter last block
// tests the kSkipPx pixels ending at its end (pixels before it too: a block that may pass is
// only ever added, never lost), or pixel by pixel near x = 0.
PSFPHOT_VECTOR_CLONES int may_pass_runs(const float* r, const int* begin, const int* end,
                                        const float* bound, int n, int* runs) {
  static_assert(kSkipPx == 16);
  int nr = 0;
  auto add = [&](int x0, int x1) {
    if (nr > 0 && runs[2 * nr - 1] == x0) {
      runs[2 * nr - 1] = x1;
    } else {
      runs[2 * nr] = x0;
      runs[2 * nr + 1] = x1;
      ++nr;
    }
  };
  for (int k = 0; k < n; ++k) {
    const int xb = end[k];
    const V8 bv = V8{} + bound[k];
    int x = begin[k];
    for (; x + 4 * kSkipPx <= xb; x += 4 * kSkipPx) {
      if (!any_above<8>(r, x, bv)) continue;
      for (int q = 0; q < 4; ++q)
        if (any_above<2>(r, x + q * kSkipPx, bv)) add(x + q * kSkipPx, x + (q + 1) * kSkipPx);
    }
    for (; x + kSkipPx <= xb; x += kSkipPx)
      if (any_above<2>(r, x, bv)) add(x, x + kSkipPx);
    if (x < xb) {
      bool any = false;
      if (xb >= kSkipPx) {
        any = any_above<2>(r, xb - kSkipPx, bv);
      } else {
        for (int i = x; i < xb; ++i) any |= r[i] > bound[k];
      }
      if (any) add(x, xb);
    }
  }
  return nr;
}

// Scratch for one thread's sigma-mode rows over a SplineMap.
struct SkipScratch {
  SplineMap::Row row;
  std::vector<float> bound;  // per interval: a float below k * every RMS value in it
  std::vector<int> runs;
};

// Appends to xs (in increasing x) the x in [1, w - 1) with r[x] > kscale * rms(x, y): the
// same as threshold_candidates over row y of map.plane() (s = that row), evaluating the RMS
// into s only in the runs of blocks where a pixel may pass.
// Why a skipped block has no passing pixel: the test is r > t with t = fl(kscale * s) in
// double, s a float RMS value of the block's interval. With kscale > 0 and s >= L > 0 (L the
// interval's lower bound), t >= kscale s (1 - 2^-53) >= kscale L (1 - 2^-53); the block's
// float bound B is fl(fl(kscale L) (1 - 2^-40)), rounded down to a float, so
// B <= kscale L (1 + 2^-53)^2 (1 - 2^-40) < kscale L (1 - 2^-53) <= t, and no r <= B passes.
// Where no such bound exists (kscale or L not positive and finite), B = -inf: only NaN and
// -inf values, which never pass, are then skipped.
void spline_threshold_candidates(const float* r, const SplineMap& map, int y, double kscale, int w,
                                 float* s, SkipScratch& sc, std::vector<int>& xs) {
  map.prepare_row(y, sc.row);
  const SplineMap::Row& row = sc.row;
  const int n = static_cast<int>(row.begin.size());
  constexpr float kInf = std::numeric_limits<float>::infinity();
  sc.bound.resize(static_cast<std::size_t>(n));
  const bool scale_ok = kscale > 0 && kscale <= std::numeric_limits<double>::max();
  for (int k = 0; k < n; ++k) {
    const double lower = row.lower[k];
    const double bd = (kscale * lower) * (1.0 - 0x1p-40);
    float bf = static_cast<float>(bd);
    // Rounded down: bf is positive here (bd > 0), so the next float below is one less in bits.
    if (static_cast<double>(bf) > bd)
      bf = std::bit_cast<float>(std::bit_cast<std::uint32_t>(bf) - 1);
    const bool ok = scale_ok && lower > 0 && bd <= std::numeric_limits<double>::max();
    sc.bound[k] = ok ? bf : -kInf;
  }
  sc.runs.resize(2 * (static_cast<std::size_t>(w) / kSkipPx + n + 1));
  const int nr =
      may_pass_runs(r, row.begin.data(), row.end.data(), sc.bound.data(), n, sc.runs.data());
  for (int i = 0; i < nr; ++i) {
    const int x0 = std::max(1, sc.runs[2 * i]), x1 = std::min(w - 1, sc.runs[2 * i + 1]);
    if (x0 >= x1) continue;
    map.eval(row, x0, x1, s);
    threshold_candidates(r, s, kscale, 0.0, x0, x1, xs);
  }
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
      threshold_candidates(r, s, cfg.k_sigma * cfg.rms_scale, cfg.absolute, 1, w - 1, xs);
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
    SkipScratch skip;
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
          spline_threshold_candidates(r, *map, yy, kscale, w, rms_row.data(), skip, xs);
        } else {
          const float* s = sigma_mode ? rms.row(yy, rms_row.data()) : nullptr;
          threshold_candidates(r, s, kscale, cfg.absolute, 1, w - 1, xs);
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
