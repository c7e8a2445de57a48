// measure_centroids: centroid_windowed for many peaks, four stars side by side in the lanes
// of one vector (see include/psfphot/algo/centroid.hpp).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "psfphot/algo/centroid.hpp"
#include "psfphot/core/simd.hpp"
#include "psfphot/core/star.hpp"
#include "window.hpp"

namespace psfphot {
namespace {

// GCC/Clang vector type: + and * are the IEEE double operations lane by lane (no FMA: the
// clones target AVX2 without FMA), so each lane does exactly the scalar arithmetic.
typedef double D4 __attribute__((vector_size(32)));
constexpr int kLanes = 4;

// One iteration's weighted sums for the four lanes over an n x n window: per lane, in the
// order of centroid_windowed (rows, then pixels along the row),
//   wv = wx[k] * wy[r] * v,  s += wv,  sx += wv * dx[k],  sy += wv * dy[r].
// Arrays are lane-interleaved ([index * 4 + lane]). Excluded pixels hold 0 in win: their
// terms are +0 or -0, which leave a sum unchanged (a sum that starts at +0 never becomes -0),
// so the sums equal the scalar ones that skip those pixels. A scalar star's three sums are
// chains of dependent additions, latency-bound; four independent stars fill the vector.
PSFPHOT_VECTOR_CLONES void window_sums(const double* win, const double* wx, const double* dx,
                                       const double* wy, const double* dy, int n, double* out) {
  D4 s = {}, sx = {}, sy = {};
  for (int r = 0; r < n; ++r) {
    D4 wrow, dyr;
    std::memcpy(&wrow, wy + kLanes * r, sizeof wrow);
    std::memcpy(&dyr, dy + kLanes * r, sizeof dyr);
    const double* wr = win + static_cast<std::size_t>(kLanes) * n * r;
    for (int k = 0; k < n; ++k) {
      D4 a, v, d;
      std::memcpy(&a, wx + kLanes * k, sizeof a);
      std::memcpy(&v, wr + kLanes * k, sizeof v);
      std::memcpy(&d, dx + kLanes * k, sizeof d);
      const D4 wv = a * wrow * v;
      s += wv;
      sx += wv * d;
      sy += wv * dyr;
    }
  }
  std::memcpy(out, &s, sizeof s);
  std::memcpy(out + kLanes, &sx, sizeof sx);
  std::memcpy(out + 2 * kLanes, &sy, sizeof sy);
}

struct Lane {
  bool active = false;
  std::size_t star = 0;  // index into the output
  int px = 0, py = 0;
  Centroid c;  // current estimate, with the flags of the starting box centroid
  std::uint32_t masked = 0;
  int it = 0;  // iterations done
};

}  // namespace

void measure_centroids(ImageView<const float> image, ImageView<const MaskBits> mask,
                       const int* peak_x, const int* peak_y, std::size_t n,
                       const CentroidConfig& cfg, Centroid* out) {
  if (cfg.method == CentroidMethod::kLab || cfg.max_iter <= 0) {
    for (std::size_t i = 0; i < n; ++i)
      out[i] = measure_centroid(image, mask, peak_x[i], peak_y[i], cfg);
    return;
  }
  const double sw = cfg.window_sigma_px;
  const int half = static_cast<int>(std::ceil(4.0 * sw));
  const int nw = 2 * half + 1;
  const double inv2s2 = 0.5 / (sw * sw);
  const std::size_t npx = static_cast<std::size_t>(nw) * nw;
  std::vector<double> win(npx * kLanes, 0.0);
  std::vector<double> wx(static_cast<std::size_t>(nw) * kLanes, 0.0), wy(wx.size(), 0.0),
      dx(wx.size(), 0.0), dy(wx.size(), 0.0);
  double sums[3 * kLanes];
  Lane lanes[kLanes];
  std::size_t next = 0;

  // Stars that need no iteration are answered at once (centroid_windowed itself: edge
  // windows); the next iterating star is loaded into lane l: its window copied (excluded and
  // non-finite pixels as 0) and its starting point taken as centroid_windowed takes it.
  // The window copy is where a star's pixels first come from memory, a cache miss per
  // window row, waited for one by one: the windows of the stars kAhead further on are
  // requested in advance (prefetches change no value).
  constexpr std::size_t kAhead = 8;
  auto prefetch = [&](std::size_t i) {
    if (i < n) detail::prefetch_window(image, mask, peak_x[i], peak_y[i], half);
  };
  for (std::size_t i = 0; i < kAhead; ++i) prefetch(i);
  auto load = [&](int l) {
    Lane& ln = lanes[l];
    ln.active = false;
    while (next < n) {
      const std::size_t i = next++;
      prefetch(i + kAhead);
      const int px = peak_x[i], py = peak_y[i];
      if (!detail::window_inside(image, px, py, half)) {
        out[i] = centroid_windowed(image, mask, px, py, cfg);
        continue;
      }
      Centroid c = centroid_lab(image, mask, px, py, 3, cfg.exclude_bits);
      if (!std::isfinite(c.x)) {
        c.x = px;
        c.y = py;
        c.flags = 0;
      }
      std::uint32_t masked = 0;
      for (int r = 0; r < nw; ++r) {
        const int y = py - half + r;
        const float* row = image.row(y) + (px - half);
        const MaskBits* mrow = mask.empty() ? nullptr : mask.row(y) + (px - half);
        double* dst = win.data() + static_cast<std::size_t>(r) * nw * kLanes + l;
        for (int k = 0; k < nw; ++k) {
          const float v = row[k];
          const bool bad = !std::isfinite(v) || (mrow && (mrow[k] & cfg.exclude_bits));
          dst[static_cast<std::size_t>(k) * kLanes] = bad ? 0.0 : static_cast<double>(v);
          if (bad) masked = star_flag::kMaskedPixel;
        }
      }
      ln = Lane{true, i, px, py, c, masked, 0};
      return;
    }
  };
  // The scalar function's ending for a star that did not converge.
  auto fallback = [&](const Lane& ln) {
    Centroid fb = centroid_lab(image, mask, ln.px, ln.py, cfg.window_px, cfg.exclude_bits);
    fb.flags |= star_flag::kCentroidNoConverge | ln.masked;
    out[ln.star] = fb;
  };

  bool any = false;
  for (int l = 0; l < kLanes; ++l) {
    load(l);
    any |= lanes[l].active;
  }
  const double tol2 = cfg.tolerance_px * cfg.tolerance_px;
  while (any) {
    for (int l = 0; l < kLanes; ++l) {
      const Lane& ln = lanes[l];
      if (!ln.active) continue;
      for (int k = 0; k < nw; ++k) {
        // The same expressions as centroid_windowed's weights and offsets.
        const double ddx = ln.px - half + k - ln.c.x, ddy = ln.py - half + k - ln.c.y;
        wx[static_cast<std::size_t>(k) * kLanes + l] = std::exp(-ddx * ddx * inv2s2);
        wy[static_cast<std::size_t>(k) * kLanes + l] = std::exp(-ddy * ddy * inv2s2);
        dx[static_cast<std::size_t>(k) * kLanes + l] = (ln.px - half + k) - ln.c.x;
        dy[static_cast<std::size_t>(k) * kLanes + l] = (ln.py - half + k) - ln.c.y;
      }
    }
    window_sums(win.data(), wx.data(), dx.data(), wy.data(), dy.data(), nw, sums);
    any = false;
    for (int l = 0; l < kLanes; ++l) {
      Lane& ln = lanes[l];
      if (!ln.active) continue;
      const double s = sums[l], sx = sums[kLanes + l], sy = sums[2 * kLanes + l];
      bool done = false;
      if (!(s > 0)) {
        fallback(ln);
        done = true;
      } else {
        const double stepx = 2.0 * sx / s, stepy = 2.0 * sy / s;
        ln.c.x += stepx;
        ln.c.y += stepy;
        if (std::abs(ln.c.x - ln.px) > 2.0 || std::abs(ln.c.y - ln.py) > 2.0) {
          fallback(ln);
          done = true;
        } else if (stepx * stepx + stepy * stepy < tol2) {
          Centroid c = ln.c;
          c.iterations = ln.it + 1;
          c.flags |= ln.masked;
          out[ln.star] = c;
          done = true;
        } else if (++ln.it >= cfg.max_iter) {
          fallback(ln);
          done = true;
        }
      }
      if (done) {
        // A fresh lane's window is written over the old one; its weights are recomputed
        // before the next sums.
        load(l);
      }
      any |= ln.active;
    }
  }
}

}  // namespace psfphot
