#include "psfphot/algo/smooth.hpp"

#include "psfphot/core/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace psfphot {
namespace {

constexpr int kChunk = 16;  // pixels per register-held accumulator block

// 8 floats (GCC/Clang vector extension): +, -, * are the IEEE operations lane by lane.
// (Loaded and stored with memcpy in place: functions taking or returning them would
// change with the clone's ABI.)
typedef float V8 __attribute__((vector_size(32)));

// Running box sums (2 rad + 1 wide, zero padding) of G consecutive rows of width w
// (input row g at in + g * stride, output row g at out[g]).
template <int G>
void box_rows(const float* in, std::size_t stride, float* const* out, int w, int rad) {
  double run[G];
  for (int g = 0; g < G; ++g) {
    run[g] = 0;
    for (int i = 0; i <= std::min(rad, w - 1); ++i) run[g] += in[g * stride + i];
  }
  for (int x = 0; x < w; ++x) {
    for (int g = 0; g < G; ++g) out[g][x] = static_cast<float>(run[g]);
    if (x + rad + 1 < w)
      for (int g = 0; g < G; ++g) run[g] += in[g * stride + x + rad + 1];
    if (x - rad >= 0)
      for (int g = 0; g < G; ++g) run[g] -= in[g * stride + x - rad];
  }
}

// Interior pixels [xa, xb) of a row convolution (every tap inside the row), in chunks of
// kChunk pixels held in registers; returns the first pixel not done (the caller finishes
// the row). Each pixel sums 0 + tap 0 + tap 1 + ... in that order. Written with GCC/Clang
// vector types because the plain loop nest was vectorised across the taps, with shuffles and
// spills (1.6x slower); the operations per pixel are the same.
PSFPHOT_VECTOR_CLONES int row_taps_interior(const float* in, float* o, int xa, int xb,
                                            const float* k, int rad) {
  int x = xa;
  for (; x + kChunk <= xb; x += kChunk) {
    V8 a0 = {}, a1 = {};
    for (int i = -rad; i <= rad; ++i) {
      const float kv = k[i + rad];
      const float* src = in + x + i;
      V8 s0, s1;
      std::memcpy(&s0, src, sizeof s0);
      std::memcpy(&s1, src + 8, sizeof s1);
      a0 += kv * s0;
      a1 += kv * s1;
    }
    std::memcpy(o + x, &a0, sizeof a0);
    std::memcpy(o + x + 8, &a1, sizeof a1);
  }
  return x;
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

// One output row: sum over the n rows g[j] with taps kt[j] (in order from 0), then minus
// inv_n times each box row b[j] when b is given (the lowered kernel K = G - 1/n, DAOFIND).
template <int kw>
inline void column_chunk(const float* const* g, const float* const* b, int n, const float* kt,
                         float inv_n, float* o, int xs) {
  float acc[kw] = {};
  for (int j = 0; j < n; ++j) {
    const float kv = kt[j];
    const float* src = g[j] + xs;
    for (int l = 0; l < kw; ++l) acc[l] += kv * src[l];
  }
  if (b)
    for (int j = 0; j < n; ++j) {
      const float* src = b[j] + xs;
      for (int l = 0; l < kw; ++l) acc[l] -= inv_n * src[l];
    }
  std::copy(acc, acc + kw, o + xs);
}

PSFPHOT_VECTOR_CLONES void column_sums(const float* const* g, const float* const* b, int n,
                                       const float* kt, float inv_n, float* o, int w) {
  int x = 0;
  for (; x + kChunk <= w; x += kChunk) column_chunk<kChunk>(g, b, n, kt, inv_n, o, x);
  for (; x < w; ++x) column_chunk<1>(g, b, n, kt, inv_n, o, x);
}

// Four consecutive output rows at once, all with full windows: g[i], b[i] (i < nk + 3) are
// the rows from the first output row's first input row on, o[q] output row q. Each input row
// chunk is loaded once for the four rows instead of once per row: the rings live in L2, and
// summing one output row at a time moved 2 nk rows from L2 per output row, the filter's
// bottleneck. Every output pixel is the same arithmetic in the same order as column_sums
// (0 + tap 0 + tap 1 + ..., then minus the box terms), so the bits are the same.
PSFPHOT_VECTOR_CLONES void column_sums4(const float* const* g, const float* const* b, int nk,
                                        const float* kt, float inv_n, float* const* o, int w) {
  constexpr int kRows = 4;
  int x = 0;
  for (; x + kChunk <= w; x += kChunk) {
    V8 acc[kRows][2] = {};
    for (int i = 0; i < nk + kRows - 1; ++i) {
      V8 s0, s1;
      std::memcpy(&s0, g[i] + x, sizeof s0);
      std::memcpy(&s1, g[i] + x + 8, sizeof s1);
      for (int q = 0; q < kRows; ++q) {
        const int j = i - q;
        if (j < 0 || j >= nk) continue;
        acc[q][0] += kt[j] * s0;
        acc[q][1] += kt[j] * s1;
      }
    }
    if (b)
      for (int i = 0; i < nk + kRows - 1; ++i) {
        V8 s0, s1;
        std::memcpy(&s0, b[i] + x, sizeof s0);
        std::memcpy(&s1, b[i] + x + 8, sizeof s1);
        for (int q = 0; q < kRows; ++q) {
          const int j = i - q;
          if (j < 0 || j >= nk) continue;
          acc[q][0] -= inv_n * s0;
          acc[q][1] -= inv_n * s1;
        }
      }
    for (int q = 0; q < kRows; ++q) {
      std::memcpy(o[q] + x, &acc[q][0], sizeof acc[q][0]);
      std::memcpy(o[q] + x + 8, &acc[q][1], sizeof acc[q][1]);
    }
  }
  for (; x < w; ++x)
    for (int q = 0; q < kRows; ++q)
      column_chunk<1>(g + q, b ? b + q : nullptr, nk, kt, inv_n, o[q], x);
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
  // Room for the rows of four output rows (nk + 3) while the next box group is being made.
  ring_ = nk + 2 * kGroup;
  // Ring rows one cache line longer than the image row: a column sum reads the same x of up
  // to 2 x nk rows, and at a power-of-two width (4096 floats = 16 KiB) those all map to one
  // L1 set, more lines than it has ways, so every load missed L1. Padding spreads them over
  // consecutive sets. Only the layout changes, not the arithmetic.
  stride_ = static_cast<std::size_t>(w) + kRowPad;
  cl_.resize(static_cast<std::size_t>(kGroup) * stride_);
  if (sigma_px > 0) {
    hg_.resize(static_cast<std::size_t>(ring_) * stride_);
    if (lowered) hb_.resize(static_cast<std::size_t>(ring_) * stride_);
    row_.resize(static_cast<std::size_t>(4) * w);
  }
  gp_.resize(nk + 3);
  bp_.resize(nk + 3);
}

// Excluded and non-finite pixels count as 0.
void SmoothRowStreamer::clean_row(int y, float* o) const {
  clean_pixels(image_.row(y), mask_.empty() ? nullptr : mask_.row(y), exclude_bits_, o,
               image_.width());
}

// The input rows are convolved horizontally (and box-summed) once each, in order, into rings
// of nk + 2 kGroup rows that stay in cache; each output row is summed from the ring as soon as
// the rows it needs are there. Every output pixel is the same arithmetic in the same order
// as the plain two-pass convolution (0 + tap 0 + tap 1 + ..., then minus the box terms),
// whatever the range of rows asked for: gaussian_smooth's blocks and threads, and callers
// that stream overlapping ranges, all see the same bits. The tap loops run over chunks of
// kChunk pixels held in registers (one load per tap and pixel, one store per pixel)
// rather than over whole rows.
void SmoothRowStreamer::run(int y0, int y1, const std::function<void(int, const float*)>& sink) {
  const int w = image_.width(), h = image_.height();
  if (taps_.empty()) {
    for (int y = y0; y < y1; ++y) {
      clean_row(y, cl_.data());
      sink(y, cl_.data());
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
  int ready = t0 - 1;  // input rows [t0, ready] are in both rings
  int y = y0;          // next output row
  for (int t = t0; t < t1; ++t) {
    const int q = (t - t0) % kGroup;
    float* in = cl_.data() + static_cast<std::size_t>(q) * stride_;
    clean_row(t, in);
    // Rows: taps beyond the border are dropped (zero padding), as SExtractor does.
    float* o = slot(hg_, t);
    auto edge = [&](int x) {
      float s = 0;
      const int lo = std::max(-rad, -x), hi = std::min(rad, w - 1 - x);
      for (int i = lo; i <= hi; ++i) s += k[i + rad] * in[x + i];
      o[x] = s;
    };
    const int xa = std::min(rad, w), xb = std::max(xa, w - rad);
    for (int x = 0; x < xa; ++x) edge(x);
    int x = row_taps_interior(in, o, xa, xb, k.data(), rad);
    for (; x < w; ++x) edge(x);
    // Box sums over the same window (zero padding), with running sums: O(1) per pixel.
    // A running sum is a chain of dependent double additions (latency-bound), so the
    // rows go kGroup at a time, interleaved: independent chains, same bits per row.
    const bool group_done = q + 1 == kGroup || t + 1 == t1;
    if (lowered && group_done) {
      const int first = t - q;
      float* dst[kGroup];
      for (int g = 0; g <= q; ++g) dst[g] = slot(hb_, first + g);
      if (q + 1 == kGroup) {
        box_rows<kGroup>(cl_.data(), stride_, dst, w, rad);
      } else {
        for (int g = 0; g <= q; ++g)
          box_rows<1>(cl_.data() + static_cast<std::size_t>(g) * stride_, stride_, dst + g, w, rad);
      }
    }
    if (!lowered || group_done) ready = t;
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
        for (int r4 = 0; r4 < 4; ++r4) o4[r4] = row_.data() + static_cast<std::size_t>(r4) * w;
        column_sums4(gp_.data(), lowered ? bp_.data() : nullptr, nk, k.data(), inv_n, o4, w);
        for (int r4 = 0; r4 < 4; ++r4) sink(y + r4, o4[r4]);
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
      column_sums(gp_.data(), lowered ? bp_.data() : nullptr, n, k.data() + lo + rad, inv_n,
                  row_.data(), w);
      sink(y, row_.data());
      ++y;
    }
  }
}

Image<float> gaussian_smooth(ImageView<const float> image, ImageView<const MaskBits> mask,
                             MaskBits exclude_bits, double sigma_px, bool lowered) {
  const int w = image.width(), h = image.height();
  Image<float> out(w, h);
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
      st.run(b * kBlock, std::min(h, (b + 1) * kBlock), [&](int y, const float* row) {
        std::copy(row, row + w, out.data() + static_cast<std::size_t>(y) * w);
      });
  }
  return out;
}

}  // namespace psfphot
