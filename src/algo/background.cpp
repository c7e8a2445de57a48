#include "psfphot/algo/background.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "background_mesh.hpp"
#include "psfphot/algo/stats.hpp"
#include "psfphot/core/simd.hpp"

namespace psfphot {
namespace {

// Second derivatives of the natural cubic spline through (x[i], y[i]) (Numerical
// Recipes' tridiagonal "spline" with y''=0 at both ends).
std::vector<double> spline_second_derivs(const std::vector<double>& x,
                                         const std::vector<double>& y) {
  const std::size_t n = x.size();
  std::vector<double> y2(n, 0.0), u(n, 0.0);
  for (std::size_t i = 1; i + 1 < n; ++i) {
    double sig = (x[i] - x[i - 1]) / (x[i + 1] - x[i - 1]);
    double p = sig * y2[i - 1] + 2.0;
    y2[i] = (sig - 1.0) / p;
    u[i] = (y[i + 1] - y[i]) / (x[i + 1] - x[i]) - (y[i] - y[i - 1]) / (x[i] - x[i - 1]);
    u[i] = (6.0 * u[i] / (x[i + 1] - x[i - 1]) - sig * u[i - 1]) / p;
  }
  if (n >= 2) y2[n - 1] = 0.0;
  for (std::size_t k = n - 1; k-- > 0;) y2[k] = y2[k] * y2[k + 1] + u[k];
  return y2;
}

double spline_eval(const std::vector<double>& x, const std::vector<double>& y,
                   const std::vector<double>& y2, double t) {
  const std::size_t n = x.size();
  if (n == 1) return y[0];
  // Outside the nodes: linear extrapolation with the end slope would amplify noise; SExtractor
  // extends the spline itself. We follow the spline's end interval (natural: zero curvature).
  std::size_t hi = std::upper_bound(x.begin(), x.end(), t) - x.begin();
  hi = std::clamp<std::size_t>(hi, 1, n - 1);
  const std::size_t lo = hi - 1;
  const double h = x[hi] - x[lo];
  const double a = (x[hi] - t) / h, b = (t - x[lo]) / h;
  return a * y[lo] + b * y[hi] +
         ((a * a * a - a) * y2[lo] + (b * b * b - b) * y2[hi]) * (h * h) / 6.0;
}

// Appends the usable pixels of one image row to the meshes' buffers: segment i (pixels
// [i m, min(w, (i + 1) m))) goes to buf + i * cap + nv[i]. A segment with no unusable
// pixel (most of them; counted in a loop that vectorises) is copied whole; others are
// compacted without a branch per pixel: every pixel is stored and the count advances only for
// usable ones. One call per row rather than per segment: the clone dispatch is an indirect
// call.
PSFPHOT_VECTOR_CLONES void gather_row(const float* r, const MaskBits* mr, MaskBits excl, int w,
                                      int m, float* buf, std::size_t cap, std::size_t* nv) {
  constexpr float kMax = std::numeric_limits<float>::max();
  for (int i = 0, x0 = 0; x0 < w; ++i, x0 += m) {
    const int n = std::min(m, w - x0);
    const float* src = r + x0;
    const MaskBits* ms = mr ? mr + x0 : nullptr;
    float* dst = buf + static_cast<std::size_t>(i) * cap + nv[i];
    int bad = 0;
    if (ms) {
      for (int k = 0; k < n; ++k) bad += !(std::fabs(src[k]) <= kMax) | ((ms[k] & excl) != 0);
    } else {
      for (int k = 0; k < n; ++k) bad += !(std::fabs(src[k]) <= kMax);
    }
    if (bad == 0) {
      std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
      nv[i] += static_cast<std::size_t>(n);
      continue;
    }
    std::size_t k2 = 0;
    for (int k = 0; k < n; ++k) {
      dst[k2] = src[k];
      k2 += (std::fabs(src[k]) <= kMax) & !(ms && (ms[k] & excl));
    }
    nv[i] += k2;
  }
}

// Near the grid edges the window shrinks symmetrically (half-width min(r, distance to the
// edge)) so it stays centred on the mesh, as SExtractor's filterback does. A window merely
// truncated by the edge is lopsided towards the interior and drags edge meshes towards it:
// on the SEP/EMMI reference image that alone put our edges 0.19 RMS (level) and 6% (RMS)
// away from SExtractor's maps, against 0.015 RMS and 0.05% with the centred window.
void median_filter_grid(Image<float>& g, int size) {
  if (size <= 1) return;
  const int r = size / 2;
  const int nx = g.width(), ny = g.height();
  Image<float> out(nx, ny);
  std::vector<float> v;
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      const int rx = std::min({r, x, nx - 1 - x}), ry = std::min({r, y, ny - 1 - y});
      v.clear();
      for (int dy = -ry; dy <= ry; ++dy)
        for (int dx = -rx; dx <= rx; ++dx) v.push_back(g(x + dx, y + dy));
      out(x, y) = static_cast<float>(median_inplace(v));
    }
  g = std::move(out);
}

}  // namespace

namespace {

// First stage of the 2-D spline: along y for every mesh column, at every pixel row.
Image<float> spline_columns(ImageView<const float> grid, const std::vector<double>& cy,
                            int height) {
  const int nx = grid.width(), ny = grid.height();
  Image<float> cols(nx, height);
  for (int i = 0; i < nx; ++i) {
    std::vector<double> yv(ny);
    for (int j = 0; j < ny; ++j) yv[j] = grid(i, j);
    auto y2 = spline_second_derivs(cy, yv);
    for (int y = 0; y < height; ++y) cols(i, y) = static_cast<float>(spline_eval(cy, yv, y2, y));
  }
  return cols;
}

// Second stage: along x through one row of `cols`, at pixels [x0, x1) of that row.
PSFPHOT_VECTOR_CLONES void spline_row(const float* col_row, int nx, const std::vector<double>& cx,
                                      int x0, int x1, float* o) {
  std::vector<double> xv(col_row, col_row + nx);
  if (nx == 1) {
    std::fill(o, o + (x1 - x0), static_cast<float>(xv[0]));
    return;
  }
  auto x2 = spline_second_derivs(cx, xv);
  // Pixel x belongs to the first segment seg >= 1 with x <= cx[seg] (the last one beyond).
  // Looping over segments outside and pixels inside, with the segment's constants hoisted,
  // lets the compiler vectorise the pixel loop; every pixel still computes the
  // same expression in the same order, so the values are bit-identical.
  const std::size_t n = cx.size();
  int x = x0;
  for (std::size_t seg = 1; seg < n && x < x1; ++seg) {
    int xe = x1;
    if (seg + 1 < n) {
      const double edge = std::floor(cx[seg]) + 1.0;  // first pixel with x > cx[seg]
      xe = edge >= x1 ? x1 : std::max(x, static_cast<int>(edge));
    }
    const double c_lo = cx[seg - 1], c_hi = cx[seg];
    const double h = c_hi - c_lo, hh = h * h;
    const double y_lo = xv[seg - 1], y_hi = xv[seg], d_lo = x2[seg - 1], d_hi = x2[seg];
    for (int xi = x; xi < xe; ++xi) {
      const double xd = xi;
      const double a = (c_hi - xd) / h, b = (xd - c_lo) / h;
      o[xi - x0] = static_cast<float>(a * y_lo + b * y_hi +
                                      ((a * a * a - a) * d_lo + (b * b * b - b) * d_hi) * hh / 6.0);
    }
    x = xe;
  }
}

// The x weights of spline_row for pixels [0, width): a, b, a^3 - a and b^3 - b depend on the
// pixel and the nodes only, so they are computed once for all rows instead of once per row
// and pixel (two double divisions per pixel were most of the spline's time). Each value is
// the same expression spline_row evaluates, so the rows come out bit-identical.
struct SplineWeights {
  std::vector<int> seg_end;  // seg_end[seg]: first pixel after segment seg (seg >= 1)
  std::vector<double> a, b, a3, b3;
};

SplineWeights spline_weights(const std::vector<double>& cx, int width) {
  SplineWeights wt;
  const std::size_t n = cx.size();
  wt.seg_end.assign(n, 0);
  wt.a.resize(width);
  wt.b.resize(width);
  wt.a3.resize(width);
  wt.b3.resize(width);
  int x = 0;
  for (std::size_t seg = 1; seg < n; ++seg) {
    int xe = width;
    if (seg + 1 < n) {
      const double edge = std::floor(cx[seg]) + 1.0;
      xe = edge >= width ? width : std::max(x, static_cast<int>(edge));
    }
    const double c_lo = cx[seg - 1], c_hi = cx[seg];
    const double h = c_hi - c_lo;
    for (int xi = x; xi < xe; ++xi) {
      const double xd = xi;
      const double a = (c_hi - xd) / h, b = (xd - c_lo) / h;
      wt.a[xi] = a;
      wt.b[xi] = b;
      wt.a3[xi] = a * a * a - a;
      wt.b3[xi] = b * b * b - b;
    }
    wt.seg_end[seg] = xe;
    x = xe;
  }
  return wt;
}

// spline_row over a whole row [0, width) with precomputed weights.
PSFPHOT_VECTOR_CLONES void spline_row_weighted(const float* col_row, int nx,
                                               const std::vector<double>& cx,
                                               const SplineWeights& wt, int width, float* o) {
  std::vector<double> xv(col_row, col_row + nx);
  if (nx == 1) {
    std::fill(o, o + width, static_cast<float>(xv[0]));
    return;
  }
  auto x2 = spline_second_derivs(cx, xv);
  const std::size_t n = cx.size();
  int x = 0;
  for (std::size_t seg = 1; seg < n && x < width; ++seg) {
    const int xe = wt.seg_end[seg];
    const double h = cx[seg] - cx[seg - 1], hh = h * h;
    const double y_lo = xv[seg - 1], y_hi = xv[seg], d_lo = x2[seg - 1], d_hi = x2[seg];
    const double* a = wt.a.data();
    const double* b = wt.b.data();
    const double* a3 = wt.a3.data();
    const double* b3 = wt.b3.data();
    for (int xi = x; xi < xe; ++xi)
      o[xi] = static_cast<float>(a[xi] * y_lo + b[xi] * y_hi +
                                 (a3[xi] * d_lo + b3[xi] * d_hi) * hh / 6.0);
    x = xe;
  }
}

}  // namespace

Image<float> spline_upsample(ImageView<const float> grid, const std::vector<double>& cx,
                             const std::vector<double>& cy, int width, int height) {
  const Image<float> cols = spline_columns(grid, cy, height);
  Image<float> out(width, height, kNoInit);  // every pixel is written below
  const SplineWeights wt = spline_weights(cx, width);
#pragma omp parallel for schedule(static)
  for (int y = 0; y < height; ++y)
    spline_row_weighted(&cols(0, y), grid.width(), cx, wt, width,
                        out.data() + static_cast<std::size_t>(y) * width);
  return out;
}

float Background::level_at(int x, int y) const {
  if (!level.empty()) return level(x, y);
  float v = 0;
  spline_row(&level_columns(0, y), level_columns.width(), node_x_px, x, x + 1, &v);
  return v;
}

void subtract_background(ImageView<float> image, const Background& bg) {
  const int w = image.width(), h = image.height();
  const SplineWeights wt = bg.level.empty() ? spline_weights(bg.node_x_px, w) : SplineWeights{};
#pragma omp parallel
  {
    std::vector<float> row(bg.level.empty() ? w : 0);
#pragma omp for schedule(static)
    for (int y = 0; y < h; ++y) {
      const float* lv = bg.level.empty() ? row.data() : &bg.level(0, y);
      if (bg.level.empty())
        spline_row_weighted(&bg.level_columns(0, y), bg.level_columns.width(), bg.node_x_px, wt, w,
                            row.data());
      float* px = image.row(y);
      for (int x = 0; x < w; ++x) px[x] -= lv[x];
    }
  }
}

Background estimate_background(ImageView<const float> image, ImageView<const MaskBits> mask,
                               const BackgroundConfig& cfg, bool keep_level_image) {
  if (cfg.mesh_px < 2) throw BackgroundError("background.mesh_px must be >= 2");
  const int w = image.width(), h = image.height();
  if (!mask.empty() && (mask.width() != w || mask.height() != h)) {
    throw BackgroundError("mask shape differs from image shape");
  }
  const int m = std::min(cfg.mesh_px, std::max(w, h));
  const int nx = (w + m - 1) / m, ny = (h + m - 1) / m;
  Image<float> lev(nx, ny), rms(nx, ny);
  Image<std::uint8_t> good(nx, ny, 0);
  // A local copy: read through cfg, the bits were reloaded for every pixel (the stores to v
  // might have changed them, as far as the compiler knew).
  const MaskBits excl = cfg.exclude_bits;
  // One mesh row (a strip of m image rows) at a time, read row by row: gathering each mesh
  // on its own read 64 rows 16 KiB apart, a new page per row that the hardware prefetchers
  // do not follow, and stalled on memory. The strip's meshes are gathered into one buffer
  // each, then reduced one by one; the statistics are per mesh, so the same for any thread
  // count.
#pragma omp parallel
  {
    const std::size_t cap = static_cast<std::size_t>(m) * m;
    std::vector<float> buf(cap * nx);
    std::vector<std::size_t> nv(nx);
    detail::MeshScratch scratch;
#pragma omp for schedule(dynamic, 1)
    for (int j = 0; j < ny; ++j) {
      const int y0 = j * m, y1 = std::min(h, y0 + m);
      std::fill(nv.begin(), nv.end(), 0);
      for (int y = y0; y < y1; ++y)
        gather_row(image.row(y), mask.empty() ? nullptr : mask.row(y), excl, w, m, buf.data(), cap,
                   nv.data());
      for (int i = 0; i < nx; ++i) {
        const int x0 = i * m, x1 = std::min(w, x0 + m);
        const std::size_t npix = static_cast<std::size_t>(x1 - x0) * (y1 - y0);
        if (nv[i] <
            std::max<std::size_t>(3, static_cast<std::size_t>(cfg.min_good_fraction * npix)))
          continue;
        const ClippedStats s = detail::clip_mesh(buf.data() + i * cap, nv[i], scratch,
                                                 cfg.clip_kappa, cfg.clip_max_iter);
        if (s.n < 3) continue;
        const bool skewed = s.stddev > 0 && (s.mean - s.median) / s.stddev >= 0.3;
        lev(i, j) = static_cast<float>(skewed ? s.median : 2.5 * s.median - 1.5 * s.mean);
        rms(i, j) = static_cast<float>(s.stddev);
        good(i, j) = 1;
      }
    }
  }
  int n_good = 0;
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) n_good += good(i, j);
  const int n_bad = nx * ny - n_good;
  if (n_good == 0 || n_bad > cfg.max_bad_mesh_fraction * nx * ny) {
    throw BackgroundError("only " + std::to_string(n_good) + " of " + std::to_string(nx * ny) +
                          " background meshes have enough usable pixels");
  }
  // Fill bad meshes from the nearest good ones, ring by ring (deterministic order).
  while (true) {
    bool any_bad = false;
    Image<std::uint8_t> next = good.clone();
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        if (good(i, j)) continue;
        any_bad = true;
        double sl = 0, sr = 0;
        int c = 0;
        for (int dj = -1; dj <= 1; ++dj)
          for (int di = -1; di <= 1; ++di)
            if (good.contains(i + di, j + dj) && good(i + di, j + dj)) {
              sl += lev(i + di, j + dj);
              sr += rms(i + di, j + dj);
              ++c;
            }
        if (c) {
          lev(i, j) = static_cast<float>(sl / c);
          rms(i, j) = static_cast<float>(sr / c);
          next(i, j) = 1;
        }
      }
    good = std::move(next);
    if (!any_bad) break;
  }
  median_filter_grid(lev, cfg.filter_size);
  median_filter_grid(rms, cfg.filter_size);

  std::vector<double> cx(nx), cy(ny);
  for (int i = 0; i < nx; ++i) cx[i] = 0.5 * (i * m + std::min(w, (i + 1) * m)) - 0.5;
  for (int j = 0; j < ny; ++j) cy[j] = 0.5 * (j * m + std::min(h, (j + 1) * m)) - 0.5;

  Background out;
  if (keep_level_image) {
    out.level = spline_upsample(lev.cview(), cx, cy, w, h);
  } else {
    out.level_columns = spline_columns(lev.cview(), cy, h);
    out.node_x_px = cx;
  }
  out.rms = spline_upsample(rms.cview(), cx, cy, w, h);
  std::vector<float> lv(lev.data(), lev.data() + lev.size()),
      rv(rms.data(), rms.data() + rms.size());
  out.global_level = median_inplace(lv);
  out.global_rms = median_inplace(rv);
  out.mesh_level = std::move(lev);
  out.mesh_rms = std::move(rms);
  out.n_bad_meshes = n_bad;
  return out;
}

}  // namespace psfphot
