// Step 6 of the background (the bicubic spline maps) and the subtraction: see
// include/psfphot/algo/background.hpp.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
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
using Cubic = SplineCubic;
Cubic cubic(double y0, double y1, double d0, double d1, double h) {
  const double k = h * h / 6.0;
  return {static_cast<float>(y0), static_cast<float>(y1 - y0 - (2 * d0 + d1) * k),
          static_cast<float>(3 * d0 * k), static_cast<float>((d1 - d0) * k)};
}
inline float eval(const Cubic& c, float t) {
  return c.p0 + t * (c.p1 + t * (c.p2 + t * c.p3));
}
// Lower bounds of every value eval_row computes (in float) for cubic c[k] at a float t in
// [ta[k], ta[k] + d[k]] (d[k] >= that interval's largest t minus ta[k]), T[k] = the largest
// |t| there (+inf for an interval without pixels); -inf where none is found (non-finite
// coefficients, |t| > 4). The operations for one interval do not depend on the others, so the
// loop vectorises.
// The exact polynomial: P(t) = p0 + p1 t + p2 t^2 + p3 t^3 with c's float coefficients. With
// t = ta + d u, u in [0, 1]: P = q0 + q1 u + q2 u^2 + q3 u^3 (q0 = P(ta), q1 = d P'(ta),
// q2 = d^2 P''(ta) / 2, q3 = d^3 p3), in the Bernstein basis
// P = sum_k b_k C(3, k) u^k (1 - u)^(3 - k) with b0 = q0, b1 = q0 + q1 / 3,
// b2 = q0 + (2 q1 + q2) / 3, b3 = q0 + q1 + q2 + q3: a convex combination of the b_k, so
// P(t) >= min_k b_k for every t in [ta, ta + d].
// Rounding, so that the bound holds for the float values themselves:
//  - eval_row's Horner form in float (three products and three sums per pixel, no FMA: the
//    clones target avx2, not fma; an FMA would only shrink the error) gives
//    |fl(P(t)) - P(t)| <= gamma_6 M (Higham, Accuracy and Stability of Numerical Algorithms,
//    eq. 5.3; gamma_6 = 6u / (1 - 6u) < 3.6e-7, u = 2^-24), M = |p0| + T |p1| + T^2 |p2| +
//    T^3 |p3| >= sum |p_i| |t|^i, plus at most 2^-150 for each of its six operations that
//    underflows (< 1e-44 in all);
//  - here, in double: d was rounded up past the exact difference (SplineMap's constructor),
//    so [ta, ta + d] covers the interval's t; the terms of the q_k add up to at most
//    sum_j |p_j| (|ta| + d)^j <= sum_j |p_j| (3 T)^j <= 27 M in magnitude, and each q_k and
//    b_k is formed in at most ~10 double operations, so min b_k is within 1e-12 M of the
//    exact Bernstein minimum of the exact q_k (and M within 1e-15 relative).
// The bound, min b_k - 1e-6 M - 1e-37, is therefore below every fl(P(t)), t a float of the
// interval: 1e-6 M > 3.6e-7 M + 1e-12 M, and 1e-37 > 1e-44 covers the underflows.
// (The coefficients come in four arrays, pc[j][k] = c[k].pj: so the loop vectorises.)
PSFPHOT_VECTOR_CLONES void cubic_lower_bounds(const float* const* pc, const double* ta,
                                              const double* d, const double* tmax, int n,
                                              double* lower) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kMax = std::numeric_limits<double>::max();
  const float *c0 = pc[0], *c1 = pc[1], *c2 = pc[2], *c3 = pc[3];
  for (int k = 0; k < n; ++k) {
    const double p0 = c0[k], p1 = c1[k], p2 = c2[k], p3 = c3[k];
    const double T = tmax[k], t0 = ta[k], dk = d[k];
    const double m = std::abs(p0) + T * (std::abs(p1) + T * (std::abs(p2) + T * std::abs(p3)));
    const double q0 = p0 + t0 * (p1 + t0 * (p2 + t0 * p3));
    const double q1 = dk * (p1 + t0 * (2 * p2 + t0 * (3 * p3)));
    const double q2 = dk * dk * (p2 + t0 * (3 * p3));
    const double q3 = dk * dk * dk * p3;
    const double b01 = std::min(q0, q0 + q1 / 3);
    const double b23 = std::min(q0 + (2 * q1 + q2) / 3, q0 + q1 + q2 + q3);
    const double lb = std::min(b01, b23) - 1e-6 * m - 1e-37;
    const bool ok = (T <= 4.0) & (m <= kMax) & (std::abs(lb) <= kMax);  // no branches: vectorises
    lower[k] = ok ? lb : -kInf;
  }
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

// RowWeights::node's value for nodes [0, n) of row y from the rows of the two grids: the same
// operations per node, in a loop that vectorises (prepare_row).
PSFPHOT_VECTOR_CLONES void row_node_values(const double* g0, const double* g1, const double* y0,
                                           const double* y1, const RowWeights& rw, int n,
                                           double* out) {
  const double a = rw.a, b = rw.b, a3 = rw.a3, b3 = rw.b3;
  for (int i = 0; i < n; ++i) out[i] = a * g0[i] + b * g1[i] + (a3 * y0[i] + b3 * y1[i]);
}

// cubic() of every interval k from nodes k and k + 1 (k6[k] = its h * h / 6.0): the same
// operations per interval.
// The coefficients go to four arrays (pc[j][k] = coefficient j of interval k), so that the
// loop vectorises; prepare_row interleaves them.
PSFPHOT_VECTOR_CLONES void row_cubics(const double* val, const double* d2, const double* k6, int n,
                                      float* const* pc) {
  float *c0 = pc[0], *c1 = pc[1], *c2 = pc[2], *c3 = pc[3];
  for (int k = 0; k < n; ++k) {
    const double y0 = val[k], y1 = val[k + 1], d0 = d2[k], d1 = d2[k + 1], kk = k6[k];
    c0[k] = static_cast<float>(y0);
    c1[k] = static_cast<float>(y1 - y0 - (2 * d0 + d1) * kk);
    c2[k] = static_cast<float>(3 * d0 * kk);
    c3[k] = static_cast<float>((d1 - d0) * kk);
  }
}

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
  std::vector<int> end;    // end[seg]: first pixel after interval seg (seg >= 1)
  std::vector<double> k6;  // k6[seg - 1]: h * h / 6.0 of interval seg (cubic()'s k)
};
XGrid x_grid(const std::vector<double>& cx, int width) {
  XGrid g;
  g.t.assign(width, 0.f);
  const std::size_t n = cx.size();
  g.end.assign(n, 0);
  if (n < 2) return g;
  g.k6.resize(n - 1);
  for (std::size_t seg = 1; seg < n; ++seg) {
    const double h = cx[seg] - cx[seg - 1];
    g.k6[seg - 1] = h * h / 6.0;
  }
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
  std::vector<float> pc;  // the cubics' coefficients, coefficient by coefficient
  std::vector<Cubic> c;
  std::vector<int> end;
};
void spline_row(const MeshSpline& s, const XGrid& xg, int y, int width, float* out, bool subtract,
                RowScratch& rs) {
  rs.c.clear();
  rs.end.clear();
  if (s.nx == 1) {
    row_nodes(s, y, rs.val, rs.d2);
    rs.c.push_back({static_cast<float>(rs.val[0]), 0.f, 0.f, 0.f});
    rs.end.push_back(width);
  } else {
    // row_nodes' values and cubic()'s coefficients (the same operations per node and
    // interval) in loops that vectorise: one node or cubic at a time, they were ~1/3 of a
    // subtracted row's instructions.
    const int n = s.nx - 1;
    rs.val.resize(s.nx);
    rs.d2.resize(s.nx);
    if (s.ny == 1) {
      std::copy(s.g.begin(), s.g.end(), rs.val.begin());
      std::copy(s.gxx.begin(), s.gxx.end(), rs.d2.begin());
    } else {
      const RowWeights rw(s, y);
      const std::size_t r0 = rw.lo * s.nx, r1 = rw.hi * s.nx;
      row_node_values(s.g.data() + r0, s.g.data() + r1, s.gyy.data() + r0, s.gyy.data() + r1, rw,
                      s.nx, rs.val.data());
      row_node_values(s.gxx.data() + r0, s.gxx.data() + r1, s.gxxyy.data() + r0,
                      s.gxxyy.data() + r1, rw, s.nx, rs.d2.data());
    }
    rs.pc.resize(4 * static_cast<std::size_t>(n));
    float* const pc[4] = {rs.pc.data(), rs.pc.data() + n, rs.pc.data() + 2 * n,
                          rs.pc.data() + 3 * n};
    row_cubics(rs.val.data(), rs.d2.data(), xg.k6.data(), n, pc);
    rs.c.resize(n);
    rs.end.resize(n);
    for (int k = 0; k < n; ++k) {
      rs.c[k] = Cubic{pc[0][k], pc[1][k], pc[2][k], pc[3][k]};
      rs.end[k] = std::min(width, xg.end[k + 1]);
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
  // Per interval k (0-based): h^2 / 6 of its cubic (cubic()'s k, the same expression), and the
  // range of t over its pixels for prepare_row's bounds: the smallest t, the width rounded up
  // past the exact difference (d (1 + 2^-50), rounded, exceeds it: d is within 2^-53
  // relative of it) and the largest |t| (+inf without pixels: no bound).
  const int n = end_.size() < 2 ? 1 : static_cast<int>(end_.size()) - 1;
  k6_.assign(n, 0.0);
  ta_.assign(n, 0.0);
  td_.assign(n, 0.0);
  tmax_.assign(n, std::numeric_limits<double>::infinity());
  for (int k = 0; k < n; ++k) {
    const int xa = end_.size() < 2 || k == 0 ? 0 : end_[k],
              xb = end_.size() < 2 ? width : end_[k + 1];
    if (end_.size() >= 2) {
      const double h = s_.cx[k + 1] - s_.cx[k];
      k6_[k] = h * h / 6.0;
    }
    if (xa >= xb) continue;
    const double lo = *std::min_element(t_.begin() + xa, t_.begin() + xb);
    const double hi = *std::max_element(t_.begin() + xa, t_.begin() + xb);
    double d = hi - lo;
    d += d * 0x1p-50;
    ta_[k] = lo;
    td_[k] = d;
    tmax_[k] = std::max(std::abs(lo), std::abs(hi));
  }
}

void SplineMap::prepare_row(int y, Row& out) const {
  // row()'s nodes and cubics (the same operations per node and interval), for every interval
  // at once, then their bounds.
  assert(y >= 0 && y < h_);
  out.y = y;
  const RowWeights rw(s_, y);
  const int nodes = s_.nx;
  const int n = nodes == 1 ? 1 : nodes - 1;
  out.begin.resize(n);
  out.end.resize(n);
  out.lower.resize(n);
  out.pc.resize(4 * static_cast<std::size_t>(n));
  float* const pc[4] = {out.pc.data(), out.pc.data() + n, out.pc.data() + 2 * n,
                        out.pc.data() + 3 * n};
  if (nodes == 1) {
    double v0 = 0, d0 = 0;
    rw.node(s_, 0, v0, d0);
    for (int j = 0; j < 4; ++j) pc[j][0] = j == 0 ? static_cast<float>(v0) : 0.f;
    out.begin[0] = 0;
    out.end[0] = w_;
  } else {
    out.val.resize(nodes);
    out.d2.resize(nodes);
    if (s_.ny == 1) {
      std::copy(s_.g.begin(), s_.g.end(), out.val.begin());
      std::copy(s_.gxx.begin(), s_.gxx.end(), out.d2.begin());
    } else {
      const std::size_t r0 = rw.lo * s_.nx, r1 = rw.hi * s_.nx;
      row_node_values(s_.g.data() + r0, s_.g.data() + r1, s_.gyy.data() + r0, s_.gyy.data() + r1,
                      rw, nodes, out.val.data());
      row_node_values(s_.gxx.data() + r0, s_.gxx.data() + r1, s_.gxxyy.data() + r0,
                      s_.gxxyy.data() + r1, rw, nodes, out.d2.data());
    }
    row_cubics(out.val.data(), out.d2.data(), k6_.data(), n, pc);
    out.begin[0] = 0;
    for (int k = 0; k < n; ++k) {
      out.end[k] = end_[k + 1];
      if (k > 0) out.begin[k] = end_[k];
    }
  }
  cubic_lower_bounds(pc, ta_.data(), td_.data(), tmax_.data(), n, out.lower.data());
}

void SplineMap::eval(const Row& r, int x0, int x1, float* dst) const {
  // eval_row over the part, as row() does (the same operations per pixel).
  if (x1 <= x0) return;
  assert(x0 >= 0 && x1 <= w_ && r.y >= 0);
  const std::size_t n = r.begin.size();
  const float* pc = r.pc.data();
  const auto cubic_of = [&](std::size_t k) {
    return Cubic{pc[k], pc[n + k], pc[2 * n + k], pc[3 * n + k]};
  };
  if (s_.nx == 1) {
    const int e = x1 - x0;
    const Cubic c = cubic_of(0);
    eval_row(&c, &e, 1, t_.data() + x0, dst + x0, false);
    return;
  }
  const int s0 = seg_[x0], s1 = seg_[x1 - 1];
  const int count = s1 - s0 + 1;
  Cubic c[64];
  int end[64];
  std::vector<Cubic> cv;
  std::vector<int> ev;
  Cubic* cp = c;
  int* ep = end;
  if (count > 64) {
    cv.resize(count);
    ev.resize(count);
    cp = cv.data();
    ep = ev.data();
  }
  for (int seg = s0; seg <= s1; ++seg) {
    cp[seg - s0] = cubic_of(static_cast<std::size_t>(seg) - 1);
    ep[seg - s0] = std::min(end_[seg], x1) - x0;
  }
  eval_row(cp, ep, count, t_.data() + x0, dst + x0, false);
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
