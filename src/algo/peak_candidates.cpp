// The threshold test of find_peaks_smoothed's rows (peak_candidates.hpp), split from peaks.cpp:
// the vectorised candidate test against an RMS row, and the SplineMap version that skips
// blocks where no pixel can pass.
#include "peak_candidates.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "psfphot/core/simd.hpp"

namespace psfphot::detail {
namespace {

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

}  // namespace

PSFPHOT_VECTOR_CLONES void threshold_candidates(const float* r, const float* s, double kscale,
                                                double absolute, int x0, int x1,
                                                std::vector<int>& xs) {
  if (s)
    threshold_candidates_impl<true>(r, s, kscale, absolute, x0, x1, xs);
  else
    threshold_candidates_impl<false>(r, nullptr, kscale, absolute, x0, x1, xs);
}

namespace {

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

}  // namespace

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

}  // namespace psfphot::detail
