#include "background_mesh.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "psfphot/core/simd.hpp"

namespace psfphot::detail {
namespace {

// GCC/Clang vector types: + - * and comparisons are the IEEE operations lane by lane. GCC
// does not vectorise float or double sum reductions without -ffast-math (it may not
// reassociate them), so the sums below keep one partial sum per lane explicitly.
typedef float V8 __attribute__((vector_size(32)));
typedef int I8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));
typedef double D4 __attribute__((vector_size(32)));

// Count, sum and sum of squares of (x - c) over the x strictly inside (lo, hi), in float.
// Only the bucket scale comes from these, and it decides how fast the statistics are
// found, never what they are.
PSFPHOT_VECTOR_CLONES void float_moments(const float* v, std::size_t n, float c, float lo, float hi,
                                         double* out) {
  const V8 cv = V8{} + c, lov = V8{} + lo, hiv = V8{} + hi;
  V8 s1 = {}, s2 = {};
  I8 cnt = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V8 x;
    std::memcpy(&x, v + i, sizeof x);
    const I8 keep = (x > lov) & (x < hiv);
    const V8 d = reinterpret_cast<V8>(reinterpret_cast<I8>(x - cv) & keep);
    s1 += d;
    s2 += d * d;
    cnt -= keep;
  }
  double t0 = 0, t1 = 0, t2 = 0;
  for (int l = 0; l < 8; ++l) {
    t0 += cnt[l];
    t1 += s1[l];
    t2 += s2[l];
  }
  for (; i < n; ++i)
    if (v[i] > lo && v[i] < hi) {
      const float d = v[i] - c;
      t0 += 1;
      t1 += d;
      t2 += d * d;
    }
  out[0] = t0;
  out[1] = t1;
  out[2] = t2;
}

// Sums of (x - c) and (x - c)^2 in double over all n values (8 partial sums).
PSFPHOT_VECTOR_CLONES void double_sums(const float* v, std::size_t n, double c, double* s1o,
                                       double* s2o) {
  const D4 cv = D4{} + c;
  D4 a1 = {}, a2 = {}, b1 = {}, b2 = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V4 x0, x1;
    std::memcpy(&x0, v + i, sizeof x0);
    std::memcpy(&x1, v + i + 4, sizeof x1);
    const D4 d0 = __builtin_convertvector(x0, D4) - cv;
    const D4 d1 = __builtin_convertvector(x1, D4) - cv;
    a1 += d0;
    a2 += d0 * d0;
    b1 += d1;
    b2 += d1 * d1;
  }
  double s1 = 0, s2 = 0;
  for (int l = 0; l < 4; ++l) {
    s1 += a1[l] + b1[l];
    s2 += a2[l] + b2[l];
  }
  for (; i < n; ++i) {
    const double d = v[i] - c;
    s1 += d;
    s2 += d * d;
  }
  *s1o = s1;
  *s2o = s2;
}

// The bucket of x: (x - z) q clamped to [0, top] and truncated. Every step is monotone
// non-decreasing in x (IEEE rounding is), so a lower bucket holds only smaller values. The
// query side (bucket_of) evaluates the very same operations. `offset` is added to every
// index stored (the counting sort's stream number times the bucket count).
PSFPHOT_VECTOR_CLONES void bucket_index(const float* v, std::size_t n, float z, float q, float top,
                                        std::uint16_t offset, std::uint16_t* o) {
  for (std::size_t i = 0; i < n; ++i) {
    float t = (v[i] - z) * q;
    t = t > 0.f ? t : 0.f;
    t = t < top ? t : top;
    o[i] = static_cast<std::uint16_t>(static_cast<int>(t) + offset);
  }
}

// The counting sort's count and scatter (see Arranged): the n values v into w bucket by
// bucket, quarter q's bucket indices in bin stored as q nb + bucket; st[k] the first
// position of bucket k. Count is the counters' type: 16 bits when n fits (the four streams'
// counters then take 8 KiB instead of 16 of the L1 cache that the values, their bucket
// indices and w share).
template <class Count>
void scatter_by_bucket(const float* v, std::size_t n, const std::uint16_t* bin, std::size_t nb,
                       std::vector<Count>& cur, std::uint32_t* st, float* w) {
  const std::size_t qn = n / 4;
  const std::size_t q3 = 3 * qn;  // quarter 3 takes the rest
  cur.assign(4 * nb, 0);
  Count* k = cur.data();
  const std::uint16_t *b0 = bin, *b2 = bin + 2 * qn;
  for (std::size_t i = 0, j = qn; i < qn; ++i, ++j) {
    ++k[b0[i]];
    ++k[b0[j]];
    ++k[b2[i]];
    ++k[b2[j]];
  }
  for (std::size_t i = q3 + qn; i < n; ++i) ++k[bin[i]];
  // Counts -> each stream's first position per bucket; st[] the buckets' starts.
  std::uint32_t pos = 0;
  std::size_t b = 0;
#if defined(__SSE2__)
  // Eight buckets at a time for 16-bit counters (every mesh under 65536 values): the one-by-one
  // loop below, a chain through pos with four loads and five stores per bucket, was ~20% of
  // clip_mesh's samples (nb = n / 4 buckets: 1024 for a 64 x 64 mesh). The same integers: the
  // buckets' totals, their running sum in the vector (three shifted adds) plus the carry, and
  // each stream's start that plus the counts of the streams before it (all < 65536, no wrap).
  if constexpr (sizeof(Count) == 2) {
    for (; b + 8 <= nb; b += 8) {
      const __m128i n0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + b));
      const __m128i n1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + nb + b));
      const __m128i n2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 2 * nb + b));
      const __m128i n3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 3 * nb + b));
      const __m128i s01 = _mm_add_epi16(n0, n1), s012 = _mm_add_epi16(s01, n2);
      const __m128i t = _mm_add_epi16(s012, n3);
      __m128i inc = _mm_add_epi16(t, _mm_slli_si128(t, 2));
      inc = _mm_add_epi16(inc, _mm_slli_si128(inc, 4));
      inc = _mm_add_epi16(inc, _mm_slli_si128(inc, 8));
      const __m128i ex =
          _mm_add_epi16(_mm_set1_epi16(static_cast<short>(pos)), _mm_sub_epi16(inc, t));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(k + b), ex);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(k + nb + b), _mm_add_epi16(ex, n0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(k + 2 * nb + b), _mm_add_epi16(ex, s01));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(k + 3 * nb + b), _mm_add_epi16(ex, s012));
      const __m128i zero = _mm_setzero_si128();
      _mm_storeu_si128(reinterpret_cast<__m128i*>(st + b), _mm_unpacklo_epi16(ex, zero));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(st + b + 4), _mm_unpackhi_epi16(ex, zero));
      pos += static_cast<std::uint32_t>(_mm_extract_epi16(inc, 7));
    }
  }
#endif
  for (; b < nb; ++b) {
    st[b] = pos;
    const std::uint32_t n0 = k[b], n1 = k[nb + b], n2 = k[2 * nb + b], n3 = k[3 * nb + b];
    k[b] = static_cast<Count>(pos);
    k[nb + b] = static_cast<Count>(pos + n0);
    k[2 * nb + b] = static_cast<Count>(pos + n0 + n1);
    k[3 * nb + b] = static_cast<Count>(pos + n0 + n1 + n2);
    pos += n0 + n1 + n2 + n3;
  }
  const float *v0 = v, *v2 = v + 2 * qn;
  for (std::size_t i = 0, j = qn; i < qn; ++i, ++j) {
    w[k[b0[i]]++] = v0[i];
    w[k[b0[j]]++] = v0[j];
    w[k[b2[i]]++] = v2[i];
    w[k[b2[j]]++] = v2[j];
  }
  for (std::size_t i = q3 + qn; i < n; ++i) w[k[bin[i]]++] = v[i];
}

// Largest float <= x, and largest float < x (clamped to the finite range: they only locate
// a bucket, the comparisons themselves are made with x).
float float_at_or_below(double x) {
  constexpr float kMax = std::numeric_limits<float>::max();
  if (x >= kMax) return kMax;
  if (x <= -kMax) return -kMax;
  float f = static_cast<float>(x);
  if (static_cast<double>(f) > x) f = std::nextafter(f, -kMax);
  return f;
}
float float_below(double x) {
  constexpr float kMax = std::numeric_limits<float>::max();
  if (x > kMax) return kMax;
  if (x <= -kMax) return -kMax;
  float f = static_cast<float>(x);
  if (static_cast<double>(f) >= x) f = std::nextafter(f, -kMax);
  return f;
}

// The values arranged by bucket (ascending buckets, any order inside one), with the parts of
// buckets that the clipping reads sorted (or split by a bound) on demand. Positions below
// the kept range [a, b) hold the values clipped off below, positions from b on those clipped
// off above; so the r-th position, once its bucket's kept part is sorted, holds the r-th
// smallest value, and the values between two bounds fill a contiguous run of positions.
class Arranged {
 public:
  Arranged(const float* v, std::size_t n, MeshScratch& s) : s_(s) {
    // Scale: mean and sd about a median of three, then again within 2 sd of that mean (a
    // star in the mesh inflates the first; the second is close to the sky's), as
    // SExtractor's first two passes. Buckets span the mean +- 5 sd of the second, about
    // n / 4 of them: ~16 values in a central bucket, under one near the 3-sigma cuts.
    std::size_t nb = n < 64 ? 1 : std::min<std::size_t>(4096, n / 4);
    const float a0 = v[0], a1 = v[n / 2], a2 = v[n - 1];
    const float c0 = std::max(std::min(a0, a1), std::min(std::max(a0, a1), a2));
    constexpr float kInf = std::numeric_limits<float>::infinity();
    double m[3];
    float_moments(v, n, c0, -kInf, kInf, m);
    double mu = c0 + m[1] / m[0];
    double sd = std::sqrt(std::max(0.0, m[2] / m[0] - (m[1] / m[0]) * (m[1] / m[0])));
    float_moments(v, n, c0, static_cast<float>(mu - 2 * sd), static_cast<float>(mu + 2 * sd), m);
    if (m[0] >= 0.25 * static_cast<double>(n)) {
      const double d = m[1] / m[0];
      mu = c0 + d;
      sd = std::sqrt(std::max(0.0, m[2] / m[0] - d * d));
    }
    z_ = static_cast<float>(mu - 5 * sd);
    q_ = static_cast<float>(static_cast<double>(nb) / (10 * sd));
    if (!(sd > 0) || !std::isfinite(z_) || !std::isfinite(q_) || !(q_ > 0)) nb = 1;
    nb_ = nb;
    top_ = static_cast<float>(nb - 1);
    s.w.resize(n);
    s.start.assign(nb + 1, 0);
    s.sorted.assign(nb, 0);
    if (nb == 1) {
      std::copy(v, v + n, s.w.begin());
    } else {
      s.bin.resize(n);
      // A stable counting sort in four interleaved streams: the input's four quarters, each
      // with its own counts and cursors, quarter q's values of a bucket placed after those
      // of quarters < q. That is the one-stream order exactly (bucket by bucket, input order
      // inside), but the four read-modify-write chains on the counters overlap instead of
      // waiting on each other (the one-stream scatter and count were ~90% of this
      // function, stalled on their counter updates). Quarter q's bucket indices are stored
      // as q nb + bucket, so all four streams address one counter array from one base (with
      // a base per stream the loops ran out of registers and reloaded pointers from the
      // stack every round).
      const std::size_t qn = n / 4;
      std::uint16_t* bin = s.bin.data();
      for (std::size_t q = 0; q < 4; ++q) {
        const std::size_t b = q * qn, e = q == 3 ? n : b + qn;
        bucket_index(v + b, e - b, z_, q_, top_, static_cast<std::uint16_t>(q * nb), bin + b);
      }
      if (n <= 0xFFFF)
        scatter_by_bucket(v, n, bin, nb, s.cur16, s.start.data(), s.w.data());
      else
        scatter_by_bucket(v, n, bin, nb, s.cur, s.start.data(), s.w.data());
    }
    s.start[nb] = static_cast<std::uint32_t>(n);
  }

  const float* data() const { return s_.w.data(); }

  // The r-th smallest value, a <= r < b.
  float value_at(std::size_t r, std::size_t a, std::size_t b) {
    const auto* st = s_.start.data();
    const std::size_t k = static_cast<std::size_t>(std::upper_bound(st, st + nb_ + 1, r) - st) - 1;
    if (!s_.sorted[k]) {
      std::sort(s_.w.data() + std::max<std::size_t>(st[k], a),
                s_.w.data() + std::min<std::size_t>(st[k + 1], b));
      s_.sorted[k] = 1;
    }
    return s_.w[r];
  }

  // The count of values satisfying pred, a predicate true below some bound and false above
  // it (x <= L, or x < H), where `at` is the largest float satisfying it and the count is
  // known to lie in [a, b]. Leaves the kept values of the bound's bucket that satisfy pred
  // first.
  template <class Pred>
  std::size_t count(float at, Pred pred, std::size_t a, std::size_t b) {
    const std::size_t k = bucket_of(at);
    const std::size_t bs = s_.start[k], be = s_.start[k + 1];
    const std::size_t lo = std::max(bs, a), hi = std::min(be, b);
    if (lo >= hi) return std::clamp(bs, a, b);
    float* w = s_.w.data();
    constexpr std::size_t kSortUpTo = 32;  // small kept parts are sorted for later medians
    if (!s_.sorted[k] && hi - lo <= kSortUpTo) {
      std::sort(w + lo, w + hi);
      s_.sorted[k] = 1;
    }
    if (s_.sorted[k])
      return static_cast<std::size_t>(std::partition_point(w + lo, w + hi, pred) - w);
    return static_cast<std::size_t>(std::partition(w + lo, w + hi, pred) - w);
  }

 private:
  std::size_t bucket_of(float x) const {
    if (nb_ == 1) return 0;
    float t = (x - z_) * q_;
    t = t > 0.f ? t : 0.f;
    t = t < top_ ? t : top_;
    return static_cast<std::size_t>(static_cast<int>(t));
  }
  MeshScratch& s_;
  std::size_t nb_ = 1;
  float z_ = 0, q_ = 0, top_ = 0;
};

}  // namespace

// The pixels kept after any number of iterations are those strictly inside the intersection
// (L, H) of the clipping intervals so far: a contiguous run of the ordered values, whose
// middle is the median. Instead of sorting the mesh, the values are put in buckets of value
// (one counting pass and one scatter), and only the buckets where a median or a bound falls
// are sorted (or split at the bound): a few dozen values per iteration. The sums of (x - c)
// and (x - c)^2 about the first median c are taken once and the values clipped off either
// end subtracted, so an iteration costs only the values it removes. Same kept sets and
// medians as clipping a sorted array; the sums differ from sorted-order sums in rounding
// only (~1e-16 relative).
ClippedStats clip_mesh(const float* v, std::size_t n0, MeshScratch& scratch, double kappa,
                       int max_iter) {
  ClippedStats s;
  if (n0 == 0) return s;
  Arranged ar(v, n0, scratch);
  std::size_t a = 0, b = n0;
  const double c = ar.value_at(n0 / 2, a, b);
  double s1 = 0, s2 = 0;
  double_sums(ar.data(), n0, c, &s1, &s2);
  double lo_bound = -std::numeric_limits<double>::infinity();
  double hi_bound = std::numeric_limits<double>::infinity();
  for (int it = 0; it < max_iter && b > a; ++it) {
    const std::size_t n = b - a;
    const double dm = s1 / static_cast<double>(n);
    const double mean = c + dm;
    const double sd = std::sqrt(std::max(0.0, s2 / static_cast<double>(n) - dm * dm));
    const std::size_t mid = n / 2;
    const double upper = ar.value_at(a + mid, a, b);
    const double med = n % 2 == 1 ? upper : 0.5 * (double(ar.value_at(a + mid - 1, a, b)) + upper);
    s.mean = mean;
    s.median = med;
    s.stddev = sd;
    s.n = n;
    s.iterations = it + 1;
    if (sd == 0) break;
    lo_bound = std::max(lo_bound, med - kappa * sd);
    hi_bound = std::min(hi_bound, med + kappa * sd);
    // lo_bound < med < hi_bound, so the new kept range lies inside the old one.
    const std::size_t new_a = ar.count(
        float_at_or_below(lo_bound), [&](float x) { return !(x > lo_bound); }, a, b);
    const std::size_t new_b = ar.count(
        float_below(hi_bound), [&](float x) { return x < hi_bound; }, new_a, b);
    if (new_a == a && new_b == b) break;
    if (new_b <= new_a) {
      a = b = new_a;
      break;
    }
    const float* w = ar.data();
    const double s2_before = s2;
    for (std::size_t i = a; i < new_a; ++i) {
      const double d = w[i] - c;
      s1 -= d;
      s2 -= d * d;
    }
    for (std::size_t i = new_b; i < b; ++i) {
      const double d = w[i] - c;
      s1 -= d;
      s2 -= d * d;
    }
    a = new_a;
    b = new_b;
    // Subtracting loses the digits of what is left once the clipped values held nearly all
    // of the sum (a pixel ~1e38 among sky values): then sum the kept values afresh.
    if (!(s2 > 1e-6 * s2_before)) double_sums(w + a, b - a, c, &s1, &s2);
  }
  if (b == a) s.n = 0;
  return s;
}

}  // namespace psfphot::detail
