// Step 6 of the background (the bicubic spline maps) and the subtraction: see
// include/psfphot/algo/background.hpp.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

#include "psfphot/algo/background.hpp"
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

// The interval of nodes c (size >= 2) that serves coordinate t: the first seg >= 1 with
// t <= c[seg], the last one beyond (outside the nodes the end intervals' cubics continue:
// linear extrapolation with the end slope would amplify noise; SExtractor extends the spline
// itself).
std::size_t segment_of(const std::vector<double>& c, double t) {
  const std::size_t n = c.size();
  std::size_t seg = static_cast<std::size_t>(std::lower_bound(c.begin(), c.end(), t) - c.begin());
  return std::clamp<std::size_t>(seg, 1, n - 1);
}

// The cubic of interval seg in the local coordinate t = (x - c[seg-1]) / h, from the end
// values y0, y1 and second derivatives d0, d1:
//   a y0 + b y1 + ((a^3 - a) d0 + (b^3 - b) d1) h^2 / 6, a = 1 - t, b = t
//   = y0 + t (y1 - y0 - (2 d0 + d1) h^2/6) + t^2 (3 d0 h^2/6) + t^3 ((d1 - d0) h^2/6).
struct Cubic {
  float p0, p1, p2, p3;
};
Cubic cubic(double y0, double y1, double d0, double d1, double h) {
  const double k = h * h / 6.0;
  return {static_cast<float>(y0), static_cast<float>(y1 - y0 - (2 * d0 + d1) * k),
          static_cast<float>(3 * d0 * k), static_cast<float>((d1 - d0) * k)};
}
inline float eval(const Cubic& c, float t) {
  return c.p0 + t * (c.p1 + t * (c.p2 + t * c.p3));
}
float local_t(const std::vector<double>& c, std::size_t seg, int x) {
  return static_cast<float>((x - c[seg - 1]) / (c[seg] - c[seg - 1]));
}

// The y spline of the four node grids at row y: its weights, found once per row, and per node
// i the value and the x second derivative of the row's x spline there.
struct RowWeights {
  std::size_t lo = 0, hi = 0;
  double a = 0, b = 0, a3 = 0, b3 = 0;
  RowWeights(const MeshSpline& s, int y) {
    if (s.ny == 1) return;  // one grid row: its own values
    hi = segment_of(s.cy, y);
    lo = hi - 1;
    const double h = s.cy[hi] - s.cy[lo];
    a = (s.cy[hi] - y) / h;
    b = (y - s.cy[lo]) / h;
    a3 = (a * a * a - a) * (h * h) / 6.0;
    b3 = (b * b * b - b) * (h * h) / 6.0;
  }
  void node(const MeshSpline& s, int i, double& val, double& d2) const {
    if (s.ny == 1) {
      val = s.g[i];
      d2 = s.gxx[i];
      return;
    }
    const std::size_t r0 = lo * s.nx + i, r1 = hi * s.nx + i;
    val = a * s.g[r0] + b * s.g[r1] + (a3 * s.gyy[r0] + b3 * s.gyy[r1]);
    d2 = a * s.gxx[r0] + b * s.gxx[r1] + (a3 * s.gxxyy[r0] + b3 * s.gxxyy[r1]);
  }
};

// Every node of row y.
void row_nodes(const MeshSpline& s, int y, std::vector<double>& val, std::vector<double>& d2) {
  val.resize(s.nx);
  d2.resize(s.nx);
  const RowWeights rw(s, y);
  for (int i = 0; i < s.nx; ++i) rw.node(s, i, val[i], d2[i]);
}

// p0 + t (p1 + t (p2 + t p3)) for the pixels of every interval (interval k's cubic c[k] up to
// pixel end[k]), written to out, or subtracted from it (the subtraction fused with the
// evaluation): the same operations per pixel as eval(), 8 floats at a time. One call per row:
// the clone dispatch is an indirect call.
PSFPHOT_VECTOR_CLONES void eval_row(const Cubic* c, const int* end, int n, const float* t,
                                    float* out, bool subtract) {
  int x = 0;
  for (int k = 0; k < n; ++k) {
    const float p0 = c[k].p0, p1 = c[k].p1, p2 = c[k].p2, p3 = c[k].p3;
    const int xe = end[k];
    if (subtract)
      for (; x < xe; ++x) out[x] -= p0 + t[x] * (p1 + t[x] * (p2 + t[x] * p3));
    else
      for (; x < xe; ++x) out[x] = p0 + t[x] * (p1 + t[x] * (p2 + t[x] * p3));
  }
}

// Per pixel of a row of `width`: its interval's local coordinate; per interval, where its
// pixels end. The same for every row, so computed once per map.
struct XGrid {
  std::vector<float> t;
  std::vector<int> end;  // end[seg]: first pixel after interval seg (seg >= 1)
};
XGrid x_grid(const std::vector<double>& cx, int width) {
  XGrid g;
  g.t.assign(width, 0.f);
  const std::size_t n = cx.size();
  g.end.assign(n, 0);
  if (n < 2) return g;
  int x = 0;
  for (std::size_t seg = 1; seg < n; ++seg) {
    int xe = width;
    if (seg + 1 < n) xe = std::clamp(static_cast<int>(std::floor(cx[seg])) + 1, x, width);
    for (int xi = x; xi < xe; ++xi) g.t[xi] = local_t(cx, seg, xi);
    g.end[seg] = xe;
    x = xe;
  }
  return g;
}

// Row y of the spline over [0, width): `subtract` = false writes it to out, true subtracts it
// from out.
struct RowScratch {
  std::vector<double> val, d2;
  std::vector<Cubic> c;
  std::vector<int> end;
};
void spline_row(const MeshSpline& s, const XGrid& xg, int y, int width, float* out, bool subtract,
                RowScratch& rs) {
  row_nodes(s, y, rs.val, rs.d2);
  rs.c.clear();
  rs.end.clear();
  if (s.nx == 1) {
    rs.c.push_back({static_cast<float>(rs.val[0]), 0.f, 0.f, 0.f});
    rs.end.push_back(width);
  } else {
    for (int seg = 1; seg < s.nx; ++seg) {
      rs.c.push_back(cubic(rs.val[seg - 1], rs.val[seg], rs.d2[seg - 1], rs.d2[seg],
                           s.cx[seg] - s.cx[seg - 1]));
      rs.end.push_back(std::min(width, xg.end[seg]));
    }
  }
  eval_row(rs.c.data(), rs.end.data(), static_cast<int>(rs.c.size()), xg.t.data(), out, subtract);
}

}  // namespace

MeshSpline make_mesh_spline(ImageView<const float> grid, std::vector<double> cx,
                            std::vector<double> cy) {
  MeshSpline s;
  s.nx = grid.width();
  s.ny = grid.height();
  s.cx = std::move(cx);
  s.cy = std::move(cy);
  const std::size_t n = static_cast<std::size_t>(s.nx) * s.ny;
  s.g.resize(n);
  s.gxx.assign(n, 0.0);
  for (int j = 0; j < s.ny; ++j)
    for (int i = 0; i < s.nx; ++i) s.g[i + static_cast<std::size_t>(s.nx) * j] = grid(i, j);
  // Along x in every grid row, then along y in every column of the grid and of its x
  // second derivatives.
  std::vector<double> v;
  if (s.nx >= 2)
    for (int j = 0; j < s.ny; ++j) {
      v.assign(s.g.begin() + static_cast<std::ptrdiff_t>(s.nx) * j,
               s.g.begin() + static_cast<std::ptrdiff_t>(s.nx) * (j + 1));
      const auto d = spline_second_derivs(s.cx, v);
      std::copy(d.begin(), d.end(), s.gxx.begin() + static_cast<std::ptrdiff_t>(s.nx) * j);
    }
  s.gyy.assign(n, 0.0);
  s.gxxyy.assign(n, 0.0);
  if (s.ny >= 2)
    for (int i = 0; i < s.nx; ++i)
      for (int pass = 0; pass < 2; ++pass) {
        const std::vector<double>& src = pass == 0 ? s.g : s.gxx;
        std::vector<double>& dst = pass == 0 ? s.gyy : s.gxxyy;
        v.resize(s.ny);
        for (int j = 0; j < s.ny; ++j) v[j] = src[i + static_cast<std::size_t>(s.nx) * j];
        const auto d = spline_second_derivs(s.cy, v);
        for (int j = 0; j < s.ny; ++j) dst[i + static_cast<std::size_t>(s.nx) * j] = d[j];
      }
  return s;
}

void MeshSpline::row(int y, int width, float* out) const {
  const XGrid xg = x_grid(cx, width);
  RowScratch rs;
  spline_row(*this, xg, y, width, out, false, rs);
}

float MeshSpline::at(int x, int y) const {
  // row_nodes' values at the two nodes of x's interval only (the same operations per node):
  // all of the row's nodes, in two vectors made per call, were most of a star's background
  // look-up in the photometry step.
  const RowWeights rw(*this, y);
  double v0 = 0, d0 = 0;
  if (nx == 1) {
    rw.node(*this, 0, v0, d0);
    return eval(Cubic{static_cast<float>(v0), 0.f, 0.f, 0.f}, 0.f);
  }
  // The interval x_grid assigns to pixel x.
  std::size_t seg = 1;
  while (seg + 1 < cx.size() && x >= static_cast<int>(std::floor(cx[seg])) + 1) ++seg;
  double v1 = 0, d1 = 0;
  rw.node(*this, static_cast<int>(seg) - 1, v0, d0);
  rw.node(*this, static_cast<int>(seg), v1, d1);
  const Cubic c = cubic(v0, v1, d0, d1, cx[seg] - cx[seg - 1]);
  return eval(c, local_t(cx, seg, x));
}

SplineMap::SplineMap(MeshSpline spline, int width, int height)
    : s_(std::move(spline)), w_(width), h_(height) {
  const XGrid xg = x_grid(s_.cx, width);
  t_ = xg.t;
  end_ = xg.end;
  seg_.assign(static_cast<std::size_t>(width), 0);
  for (std::size_t seg = 1; seg < end_.size(); ++seg)
    for (int x = seg == 1 ? 0 : end_[seg - 1]; x < end_[seg]; ++x) seg_[x] = static_cast<int>(seg);
}

void SplineMap::row(int y, int x0, int n, float* out) const {
  // spline_row's values for pixels [x0, x0 + n): row_nodes' y spline at the nodes of the
  // intervals those pixels lie in only (the same operations per node), their cubics, and
  // eval_row over the part (the same operations per pixel).
  if (n <= 0) return;
  assert(x0 >= 0 && x0 + n <= w_ && y >= 0 && y < h_);
  const int nodes = s_.nx;
  Cubic c[64];
  int end[64];
  std::vector<Cubic> cv;
  std::vector<int> ev;
  const RowWeights rw(s_, y);  // row_nodes' weights, for the few nodes needed here
  const auto node = [&](int i, double& val, double& d2) { rw.node(s_, i, val, d2); };
  if (nodes == 1) {
    double v = 0, d = 0;
    node(0, v, d);
    const Cubic one{static_cast<float>(v), 0.f, 0.f, 0.f};
    const int e = n;
    eval_row(&one, &e, 1, t_.data() + x0, out, false);
    return;
  }
  const int s0 = seg_[x0], s1 = seg_[x0 + n - 1];
  const int count = s1 - s0 + 1;
  Cubic* cp = c;
  int* ep = end;
  if (count > 64) {
    cv.resize(count);
    ev.resize(count);
    cp = cv.data();
    ep = ev.data();
  }
  double v0 = 0, d0 = 0;
  node(s0 - 1, v0, d0);
  for (int seg = s0; seg <= s1; ++seg) {
    double v1 = 0, d1 = 0;
    node(seg, v1, d1);
    cp[seg - s0] = cubic(v0, v1, d0, d1, s_.cx[seg] - s_.cx[seg - 1]);
    ep[seg - s0] = std::min(end_[seg], x0 + n) - x0;
    v0 = v1;
    d0 = d1;
  }
  eval_row(cp, ep, count, t_.data() + x0, out, false);
}

float SplineMap::at(int x, int y) const {
  float v = 0;
  row(y, x, 1, &v);
  return v;
}

Image<float> spline_upsample(ImageView<const float> grid, const std::vector<double>& cx,
                             const std::vector<double>& cy, int width, int height) {
  const MeshSpline s = make_mesh_spline(grid, cx, cy);
  Image<float> out(width, height, kNoInit);  // every pixel is written below
  const XGrid xg = x_grid(s.cx, width);
#pragma omp parallel
  {
    RowScratch rs;
    // Dynamic chunks of rows: the threads share the cores with other processes, and a static
    // split waits for the slowest thread. Each row's values do not depend on who makes it.
#pragma omp for schedule(dynamic, 32)
    for (int y = 0; y < height; ++y)
      spline_row(s, xg, y, width, out.data() + static_cast<std::size_t>(y) * width, false, rs);
  }
  return out;
}

float Background::level_at(int x, int y) const {
  if (!level.empty()) return level(x, y);
  return level_spline.at(x, y);
}

void subtract_background(ImageView<float> image, const Background& bg) {
  const int w = image.width(), h = image.height();
  const XGrid xg = bg.level.empty() ? x_grid(bg.level_spline.cx, w) : XGrid{};
#pragma omp parallel
  {
    RowScratch rs;
#pragma omp for schedule(dynamic, 32)
    for (int y = 0; y < h; ++y) {
      float* px = image.row(y);
      if (bg.level.empty()) {
        spline_row(bg.level_spline, xg, y, w, px, true, rs);
      } else {
        const float* lv = &bg.level(0, y);
        for (int x = 0; x < w; ++x) px[x] -= lv[x];
      }
    }
  }
}

}  // namespace psfphot
