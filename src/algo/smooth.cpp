#include "psfphot/algo/smooth.hpp"

#include <algorithm>
#include <cmath>

namespace psfphot {
namespace {

constexpr int kGroup = 4;

// Running box sums (2 rad + 1 wide, zero padding) of G consecutive rows of width w.
template <int G>
void box_rows(const float* in, float* out, int w, int rad) {
  double run[G];
  for (int g = 0; g < G; ++g) {
    run[g] = 0;
    for (int i = 0; i <= std::min(rad, w - 1); ++i) run[g] += in[g * w + i];
  }
  for (int x = 0; x < w; ++x) {
    for (int g = 0; g < G; ++g) out[g * w + x] = static_cast<float>(run[g]);
    if (x + rad + 1 < w)
      for (int g = 0; g < G; ++g) run[g] += in[g * w + x + rad + 1];
    if (x - rad >= 0)
      for (int g = 0; g < G; ++g) run[g] -= in[g * w + x - rad];
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

Image<float> gaussian_smooth(ImageView<const float> image, ImageView<const MaskBits> mask,
                             MaskBits exclude_bits, double sigma_px, bool lowered) {
  const int w = image.width(), h = image.height();
  Image<float> out(w, h);
  // Excluded and non-finite pixels count as 0.
  auto clean_row = [&](int y, float* o) {
    const float* r = image.row(y);
    const MaskBits* m = mask.empty() ? nullptr : mask.row(y);
    for (int x = 0; x < w; ++x) {
      const bool bad = !std::isfinite(r[x]) || (m && (m[x] & exclude_bits));
      o[x] = bad ? 0.f : r[x];
    }
  };
  if (sigma_px <= 0) {
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; ++y) clean_row(y, out.data() + static_cast<std::size_t>(y) * w);
    return out;
  }
  const std::vector<float> k = gaussian_taps(sigma_px);
  const int rad = static_cast<int>(k.size() / 2);
  const float inv_n = 1.0f / static_cast<float>((2 * rad + 1) * (2 * rad + 1));
  // The image is processed in blocks of rows; each block convolves the rows it needs
  // (its own plus `rad` above and below) horizontally into a small per-thread buffer and
  // then sums those vertically. Only the output is full-frame (the two-pass version held
  // three full-frame images), the buffers stay in cache, and every output row is the
  // same arithmetic in the same order whatever the block or thread: deterministic.
  constexpr int kBlock = 128;
  const int nblocks = (h + kBlock - 1) / kBlock;
#pragma omp parallel
  {
    std::vector<float> cl(static_cast<std::size_t>(kGroup) * w), hg, hb;
#pragma omp for schedule(static)
    for (int b = 0; b < nblocks; ++b) {
      const int y0 = b * kBlock, y1 = std::min(h, y0 + kBlock);  // output rows [y0, y1)
      const int t0 = std::max(0, y0 - rad), t1 = std::min(h, y1 + rad);
      const std::size_t rows = static_cast<std::size_t>(t1 - t0);
      hg.resize(rows * w);
      if (lowered) hb.resize(rows * w);
      for (int t = t0; t < t1; ++t) {
        const int q = (t - t0) % kGroup;
        float* in = cl.data() + static_cast<std::size_t>(q) * w;
        clean_row(t, in);
        // Rows: taps beyond the border are dropped (zero padding), as SExtractor does.
        float* o = hg.data() + static_cast<std::size_t>(t - t0) * w;
        auto edge = [&](int x) {
          float s = 0;
          const int lo = std::max(-rad, -x), hi = std::min(rad, w - 1 - x);
          for (int i = lo; i <= hi; ++i) s += k[i + rad] * in[x + i];
          o[x] = s;
        };
        // Interior pixels have every tap: loop over taps outside and pixels inside so the
        // compiler vectorises; each pixel still sums 0 + tap 0 + tap 1 + ...
        // in the same order as edge(), so the bits are the same.
        const int xa = std::min(rad, w), xb = std::max(xa, w - rad);
        for (int x = 0; x < xa; ++x) edge(x);
        std::fill(o + xa, o + xb, 0.f);
        for (int i = -rad; i <= rad; ++i) {
          const float kv = k[i + rad];
          const float* src = in + i;
          for (int x = xa; x < xb; ++x) o[x] += kv * src[x];
        }
        for (int x = xb; x < w; ++x) edge(x);
        if (!lowered) continue;
        // Box sums over the same window (zero padding), with running sums: O(1) per pixel.
        // A running sum is a chain of dependent double additions (latency-bound), so the
        // rows go kGroup at a time, interleaved: independent chains, same bits per row.
        if (q + 1 == kGroup || t + 1 == t1) {
          const int first = t - q;
          float* ob = hb.data() + static_cast<std::size_t>(first - t0) * w;
          if (q + 1 == kGroup) {
            box_rows<kGroup>(cl.data(), ob, w, rad);
          } else {
            for (int r = 0; r <= q; ++r)
              box_rows<1>(cl.data() + static_cast<std::size_t>(r) * w,
                          ob + static_cast<std::size_t>(r) * w, w, rad);
          }
        }
      }
      for (int y = y0; y < y1; ++y) {
        float* o = out.data() + static_cast<std::size_t>(y) * w;
        std::fill(o, o + w, 0.f);
        const int lo = std::max(-rad, -y), hi = std::min(rad, h - 1 - y);
        for (int i = lo; i <= hi; ++i) {
          const float kv = k[i + rad];
          const float* in = hg.data() + static_cast<std::size_t>(y + i - t0) * w;
          for (int x = 0; x < w; ++x) o[x] += kv * in[x];
        }
        if (!lowered) continue;
        // The lowered kernel: subtract the box mean, K = G - 1/n (DAOFIND).
        for (int i = lo; i <= hi; ++i) {
          const float* in = hb.data() + static_cast<std::size_t>(y + i - t0) * w;
          for (int x = 0; x < w; ++x) o[x] -= inv_n * in[x];
        }
      }
    }
  }
  return out;
}

}  // namespace psfphot
