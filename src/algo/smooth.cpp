#include "psfphot/algo/smooth.hpp"

#include "psfphot/core/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace psfphot {
namespace {

constexpr int kChunk = 16;  // pixels per register-held accumulator block

// 8 floats (GCC/Clang vector extension): +, -, * are the IEEE operations lane by lane.
// (Loaded and stored with memcpy in place: functions taking or returning them would
// change with the clone's ABI.)
typedef float V8 __attribute__((vector_size(32)));

// One row of both horizontal passes over a zero-padded row (in[x] for x in [-rad, w + rad),
// 0 outside [0, w)), the Gaussian's symmetric taps (k[rad - i] == k[rad + i], the same
// expression) taken in pairs: with p_i = in[x - i] + in[x + i],
//   og[x] = k[rad] in[x] + k[rad + 1] p_1 + ... + k[2 rad] p_rad,
//   ob[x] = in[x] + p_1 + ... + p_rad   (the box sum, when ob is given),
// in float, in that order. The pair sums serve both: 3 rad additions (rad pair sums, rad
// accumulations, rad box additions; 2 rad without the box) and rad + 1 multiplications per
// pixel instead of 4 rad additions and 2 rad + 1 multiplications.
// 8 pixels at a time in registers. Written with GCC/Clang vector types because the plain
// loop nest was vectorised across the taps, with shuffles and spills; the operations per
// pixel are the same as the scalar tail's.
template <bool kBox, int kRad>
[[gnu::always_inline]] inline void row_pass_impl(const float* in, float* og, float* ob, int w,
                                                 const float* k, int rad_rt) {
  const int rad = kRad > 0 ? kRad : rad_rt;
  const float* kc = k + rad;  // kc[i] = k[rad + i]
  int x = 0;
  for (; x + 8 <= w; x += 8) {
    V8 c;
    std::memcpy(&c, in + x, sizeof c);
    V8 a = kc[0] * c, b = c;
#pragma GCC unroll 16
    for (int i = 1; i <= rad; ++i) {
      V8 l, r;
      std::memcpy(&l, in + x - i, sizeof l);
      std::memcpy(&r, in + x + i, sizeof r);
      const V8 pr = l + r;
      a += kc[i] * pr;
      if constexpr (kBox) b += pr;
    }
    std::memcpy(og + x, &a, sizeof a);
    if constexpr (kBox) std::memcpy(ob + x, &b, sizeof b);
  }
  for (; x < w; ++x) {
    float a = kc[0] * in[x], b = in[x];
    for (int i = 1; i <= rad; ++i) {
      const float pr = in[x - i] + in[x + i];
      a += kc[i] * pr;
      if constexpr (kBox) b += pr;
    }
    og[x] = a;
    if constexpr (kBox) ob[x] = b;
  }
}

// (Forced inline: a helper left out of line is compiled for the default target, SSE2, and the
// vector types lowered through memory, 5x slower.)
// The kernel half-widths of the usual filter widths (sigma 0.34 .. 2.67 px) get their own
// fully unrolled loops; others the same loops with a run-time count.
template <bool kBox>
[[gnu::always_inline]] inline void row_pass_rad(const float* in, float* og, float* ob, int w,
                                                const float* k, int rad) {
  switch (rad) {
    case 2: return row_pass_impl<kBox, 2>(in, og, ob, w, k, rad);
    case 3: return row_pass_impl<kBox, 3>(in, og, ob, w, k, rad);
    case 4: return row_pass_impl<kBox, 4>(in, og, ob, w, k, rad);
    case 5: return row_pass_impl<kBox, 5>(in, og, ob, w, k, rad);
    case 6: return row_pass_impl<kBox, 6>(in, og, ob, w, k, rad);
    case 7: return row_pass_impl<kBox, 7>(in, og, ob, w, k, rad);
    case 8: return row_pass_impl<kBox, 8>(in, og, ob, w, k, rad);
    default: return row_pass_impl<kBox, 0>(in, og, ob, w, k, rad);
  }
}

PSFPHOT_VECTOR_CLONES void row_pass(const float* in, float* og, float* ob, int w, const float* k,
                                    int rad) {
  if (ob)
    row_pass_rad<true>(in, og, ob, w, k, rad);
  else
    row_pass_rad<false>(in, og, nullptr, w, k, rad);
}

// Non-finite pixels and those with an `excl` bit in m (if given) become 0, without a
// branch per pixel so that the loop vectorises (|v| <= FLT_MAX is false for NaN and inf).
PSFPHOT_VECTOR_CLONES void clean_pixels(const float* r, const MaskBits* m, MaskBits excl, float* o,
                                        int w) {
  constexpr float kMax = std::numeric_limits<float>::max();
  if (m) {
    for (int x = 0; x < w; ++x) {
      const bool bad = (!(std::fabs(r[x]) <= kMax)) | ((m[x] & excl) != 0);
      o[x] = bad ? 0.f : r[x];
    }
  } else {
    for (int x = 0; x < w; ++x) o[x] = std::fabs(r[x]) <= kMax ? r[x] : 0.f;
  }
}

// One output row: sum over the n rows g[j] with taps kt[j] (in order from 0); when b is
// given (the lowered kernel K = G - 1/n, DAOFIND), minus inv_n times the sum of the box rows
// b[j] (0 + b[0] + b[1] + ..., in order), one multiplication for all of them.
template <int kw>
inline void column_chunk(const float* const* g, const float* const* b, int n, const float* kt,
                         float inv_n, float* o, int xs) {
  float acc[kw] = {};
  for (int j = 0; j < n; ++j) {
    const float kv = kt[j];
    const float* src = g[j] + xs;
    for (int l = 0; l < kw; ++l) acc[l] += kv * src[l];
  }
  if (b) {
    float bs[kw] = {};
    for (int j = 0; j < n; ++j) {
      const float* src = b[j] + xs;
      for (int l = 0; l < kw; ++l) bs[l] += src[l];
    }
    for (int l = 0; l < kw; ++l) acc[l] -= inv_n * bs[l];
  }
  std::copy(acc, acc + kw, o + xs);
}

PSFPHOT_VECTOR_CLONES void column_sums(const float* const* g, const float* const* b, int n,
                                       const float* kt, float inv_n, float* o, int w) {
  int x = 0;
  for (; x + kChunk <= w; x += kChunk) column_chunk<kChunk>(g, b, n, kt, inv_n, o, x);
  for (; x < w; ++x) column_chunk<1>(g, b, n, kt, inv_n, o, x);
}

// One 16-pixel chunk of an output row from its nk rows g[j] (and box rows b[j]): the same
// operations in the same order as column_chunk, in two vectors of 8.
template <int kNk>
[[gnu::always_inline]] inline void column_chunk16(const float* const* g, const float* const* b,
                                                  int nk_rt, const float* kt, float inv_n, float* o,
                                                  int x) {
  const int nk = kNk > 0 ? kNk : nk_rt;
  V8 a0 = {}, a1 = {};
#pragma GCC unroll 17
  for (int j = 0; j < nk; ++j) {
    V8 s0, s1;
    std::memcpy(&s0, g[j] + x, sizeof s0);
    std::memcpy(&s1, g[j] + x + 8, sizeof s1);
    a0 += kt[j] * s0;
    a1 += kt[j] * s1;
  }
  if (b) {
    V8 b0 = {}, b1 = {};
#pragma GCC unroll 17
    for (int j = 0; j < nk; ++j) {
      V8 s0, s1;
      std::memcpy(&s0, b[j] + x, sizeof s0);
      std::memcpy(&s1, b[j] + x + 8, sizeof s1);
      b0 += s0;
      b1 += s1;
    }
    a0 -= inv_n * b0;
    a1 -= inv_n * b1;
  }
  std::memcpy(o + x, &a0, sizeof a0);
  std::memcpy(o + x + 8, &a1, sizeof a1);
}

// Four consecutive output rows, all with full windows: g[i], b[i] (i < nk + 3) are the rows
// from the first output row's first input row on, o[q] output row q. The four rows go chunk
// by chunk, so a chunk's nk + 3 input rows are loaded from L2 once and reused from L1 by the
// other three rows (summing whole rows one at a time moved 2 nk rows from L2 per output row).
// Every output pixel is the same arithmetic in the same order as column_sums (0 + tap 0 +
// tap 1 + ..., then minus inv_n times 0 + box 0 + box 1 + ...), so the bits are the same.
template <int kNk>
[[gnu::always_inline]] inline void column_sums4_nk(const float* const* g, const float* const* b,
                                                   int nk, const float* kt, float inv_n,
                                                   float* const* o, int w) {
  constexpr int kRows = 4;
  int x = 0;
  for (; x + kChunk <= w; x += kChunk)
    for (int q = 0; q < kRows; ++q)
      column_chunk16<kNk>(g + q, b ? b + q : nullptr, nk, kt, inv_n, o[q], x);
  for (; x < w; ++x)
    for (int q = 0; q < kRows; ++q)
      column_chunk<1>(g + q, b ? b + q : nullptr, nk, kt, inv_n, o[q], x);
}

PSFPHOT_VECTOR_CLONES void column_sums4(const float* const* g, const float* const* b, int nk,
                                        const float* kt, float inv_n, float* const* o, int w) {
  switch (nk) {
    case 5: return column_sums4_nk<5>(g, b, nk, kt, inv_n, o, w);
    case 7: return column_sums4_nk<7>(g, b, nk, kt, inv_n, o, w);
    case 9: return column_sums4_nk<9>(g, b, nk, kt, inv_n, o, w);
    case 11: return column_sums4_nk<11>(g, b, nk, kt, inv_n, o, w);
    case 13: return column_sums4_nk<13>(g, b, nk, kt, inv_n, o, w);
    case 15: return column_sums4_nk<15>(g, b, nk, kt, inv_n, o, w);
    case 17: return column_sums4_nk<17>(g, b, nk, kt, inv_n, o, w);
    default: return column_sums4_nk<0>(g, b, nk, kt, inv_n, o, w);
  }
}

}  // namespace

std::vector<float> gaussian_taps(double sigma_px) {
  const int r = std::max(1, static_cast<int>(std::ceil(3.0 * sigma_px)));
  std::vector<double> t(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += t[i + r] = std::exp(-0.5 * i * i / (sigma_px * sigma_px));
  std::vector<float> out(t.size());
  for (std::size_t i = 0; i < t.size(); ++i) out[i] = static_cast<float>(t[i] / sum);
  return out;
}

double smoothing_noise_factor(double sigma_px, bool lowered) {
  if (sigma_px <= 0) return 1.0;
  double s2 = 0;
  const auto taps = gaussian_taps(sigma_px);
  for (float v : taps) s2 += double(v) * v;
  // Separable: sum over 2-D of (a_i b_j)^2 = (sum a^2)^2. The lowered kernel
  // K = G - 1/n has sum K^2 = sum G^2 - 1/n (since sum G = 1).
  const double n = double(taps.size()) * double(taps.size());
  return lowered ? std::sqrt(s2 * s2 - 1.0 / n) : s2;
}

SmoothRowStreamer::SmoothRowStreamer(ImageView<const float> image, ImageView<const MaskBits> mask,
                                     MaskBits exclude_bits, double sigma_px, bool lowered)
    : image_(image), mask_(mask), exclude_bits_(exclude_bits), lowered_(lowered) {
  const int w = image.width();
  if (sigma_px > 0) {
    taps_ = gaussian_taps(sigma_px);
    rad_ = static_cast<int>(taps_.size() / 2);
  }
  const int nk = 2 * rad_ + 1;
  // Room for the rows of four output rows (nk + 3).
  ring_ = nk + kGroup;
  // Ring rows one cache line longer than the image row: a column sum reads the same x of up
  // to 2 x nk rows, and at a power-of-two width (4096 floats = 16 KiB) those all map to one
  // L1 set, more lines than it has ways, so every load missed L1. Padding spreads them over
  // consecutive sets. Only the layout changes, not the arithmetic.
  stride_ = static_cast<std::size_t>(w) + kRowPad;
  // The cleaned row, with lead_ zeros either side (the row pass's zero padding, written
  // once here: clean_row writes only [0, w)).
  lead_ = (rad_ + static_cast<int>(kRowPad) - 1) / static_cast<int>(kRowPad) *
          static_cast<int>(kRowPad);
  cl_.assign(static_cast<std::size_t>(w) + 2 * static_cast<std::size_t>(lead_), 0.f);
  if (sigma_px > 0) {
    hg_.resize(static_cast<std::size_t>(ring_) * stride_);
    if (lowered) hb_.resize(static_cast<std::size_t>(ring_) * stride_);
  }
  row_.resize(static_cast<std::size_t>(kKeep) * w);
  gp_.resize(nk + 3);
  bp_.resize(nk + 3);
}

// Excluded and non-finite pixels count as 0.
void SmoothRowStreamer::clean_row(int y, float* o) const {
  clean_pixels(image_.row(y), mask_.empty() ? nullptr : mask_.row(y), exclude_bits_, o,
               image_.width());
}

// The input rows are convolved horizontally (and box-summed) once each, in order, into rings
// of nk + kGroup rows that stay in cache; each output row is summed from the ring as soon as
// the rows it needs are there. Every output pixel is the same arithmetic in the same order
// as the plain two-pass convolution (rows: row_pass_impl's pairs; columns: 0 + tap 0 + tap 1
// + ..., then minus inv_n times the sum of the box rows), whatever the range of rows asked for:
// gaussian_smooth's blocks and threads, and callers that stream overlapping ranges, all see the
// same bits. The loops run over chunks of kChunk pixels held in registers (one load per tap and
// pixel, one store per pixel) rather than over whole rows.
void SmoothRowStreamer::run(int y0, int y1, const std::function<void(int, const float*)>& sink) {
  run_impl(y0, y1, &sink, ImageView<float>{});
}

void SmoothRowStreamer::run_into(int y0, int y1, ImageView<float> out) {
  // Rows are written whole, unchecked per pixel: refuse a view that cannot hold them.
  if (out.width() < image_.width() || y0 < 0 || y1 > out.height() || y1 > image_.height())
    throw std::invalid_argument(
        "SmoothRowStreamer::run_into: the output view (" + std::to_string(out.width()) + "x" +
        std::to_string(out.height()) + ") cannot hold rows " + std::to_string(y0) + ".." +
        std::to_string(y1 - 1) + " of a " + std::to_string(image_.width()) + "-wide image");
  run_impl(y0, y1, nullptr, out);
}

// Rows go to sink (row y in slot y % kKeep of row_, so that the kKeep - kGroup rows before
// the rows being made stay intact), or, when sink is null, straight into out's rows.
void SmoothRowStreamer::run_impl(int y0, int y1, const std::function<void(int, const float*)>* sink,
                                 ImageView<float> out) {
  const int w = image_.width(), h = image_.height();
  auto dest = [&](int y) {
    return sink ? row_.data() + static_cast<std::size_t>(y % kKeep) * w : out.row(y);
  };
  float* in = cl_.data() + lead_;
  if (taps_.empty()) {
    for (int y = y0; y < y1; ++y) {
      clean_row(y, in);
      if (sink) {
        float* o = dest(y);
        std::copy(in, in + w, o);
        (*sink)(y, o);
      } else
        std::copy(in, in + w, out.row(y));
    }
    return;
  }
  const std::vector<float>& k = taps_;
  const int rad = rad_;
  const int nk = 2 * rad + 1;
  const float inv_n = 1.0f / static_cast<float>(nk * nk);
  const bool lowered = lowered_;
  auto slot = [&](std::vector<float>& v, int t) {
    return v.data() + static_cast<std::size_t>(t % ring_) * stride_;
  };
  const int t0 = std::max(0, y0 - rad), t1 = std::min(h, y1 + rad);
  int y = y0;  // next output row
  for (int t = t0; t < t1; ++t) {
    clean_row(t, in);
    // Rows: taps beyond the border meet the padding's zeros (zero padding, as SExtractor).
    row_pass(in, slot(hg_, t), lowered ? slot(hb_, t) : nullptr, w, k.data(), rad);
    const int ready = t;  // input rows up to t are in the rings
    // Emit every output row whose input rows are all in the rings: four at a time where all
    // four have full windows (column_sums4), one at a time near the image's top and bottom
    // and the range's end.
    while (y < y1) {
      if (y - rad >= 0 && y + 3 + rad <= h - 1 && y + 3 < y1) {
        if (y + 3 + rad > ready) break;
        for (int j = 0; j < nk + 3; ++j) {
          gp_[j] = slot(hg_, y - rad + j);
          if (lowered) bp_[j] = slot(hb_, y - rad + j);
        }
        float* o4[4];
        for (int r4 = 0; r4 < 4; ++r4) o4[r4] = dest(y + r4);
        column_sums4(gp_.data(), lowered ? bp_.data() : nullptr, nk, k.data(), inv_n, o4, w);
        if (sink)
          for (int r4 = 0; r4 < 4; ++r4) (*sink)(y + r4, o4[r4]);
        y += 4;
        continue;
      }
      if (std::min(h - 1, y + rad) > ready) break;
      const int lo = std::max(-rad, -y), hi = std::min(rad, h - 1 - y);
      const int n = hi - lo + 1;
      for (int j = 0; j < n; ++j) {
        gp_[j] = slot(hg_, y + lo + j);
        if (lowered) bp_[j] = slot(hb_, y + lo + j);
      }
      float* o = dest(y);
      column_sums(gp_.data(), lowered ? bp_.data() : nullptr, n, k.data() + lo + rad, inv_n, o, w);
      if (sink) (*sink)(y, o);
      ++y;
    }
  }
}

Image<float> gaussian_smooth(ImageView<const float> image, ImageView<const MaskBits> mask,
                             MaskBits exclude_bits, double sigma_px, bool lowered) {
  const int w = image.width(), h = image.height();
  Image<float> out(w, h, kNoInit);  // every row is written below
  // Blocks of output rows, one streamer (its own ring buffers) per thread; only the output
  // is full-frame.
  constexpr int kBlock = 128;
  const int nblocks = (h + kBlock - 1) / kBlock;
#pragma omp parallel
  {
    SmoothRowStreamer st(image, mask, exclude_bits, sigma_px, lowered);
    // Dynamic: the cores are shared with other processes, and a static split of the blocks
    // waits for the slowest thread. The blocks are fixed, so the bits are too.
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < nblocks; ++b)
      st.run_into(b * kBlock, std::min(h, (b + 1) * kBlock), out.view());
  }
  return out;
}

}  // namespace psfphot
