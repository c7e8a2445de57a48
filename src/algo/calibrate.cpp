#include "psfphot/algo/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "psfphot/algo/stats.hpp"
#include "psfphot/core/simd.hpp"

namespace psfphot {
namespace {
std::string shape(int w, int h) {
  return std::to_string(w) + "x" + std::to_string(h);
}
}  // namespace

namespace {

// One row of the normalised flat: r * inv where r is finite and > 0, else NaN and, if m is
// given, mask::kFlatInvalid in m (0 elsewhere); returns the number of invalid pixels. & and
// selects instead of a branch per pixel, so that it vectorises; the NaN goes through the
// multiplication (NaN x inv is that same quiet NaN): a product computed only where the
// select keeps it was moved under a branch, which GCC does not vectorise. o may be r.
PSFPHOT_VECTOR_CLONES std::size_t response_row(const float* r, float inv, float* o, MaskBits* m,
                                               int w) {
  constexpr float kMax = std::numeric_limits<float>::max();
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  unsigned bad = 0;
  if (m) {
    for (int x = 0; x < w; ++x) {
      const float v = r[x];
      const bool ok = (v > 0) & (v <= kMax);
      o[x] = (ok ? v : kNaN) * inv;
      m[x] = static_cast<MaskBits>(mask::kFlatInvalid * static_cast<unsigned>(!ok));
      bad += !ok;
    }
  } else {
    for (int x = 0; x < w; ++x) {
      const float v = r[x];
      const bool ok = (v > 0) & (v <= kMax);
      o[x] = (ok ? v : kNaN) * inv;
      bad += !ok;
    }
  }
  return bad;
}

struct RowMax {
  float max;
  std::size_t n_good;
};

// GCC vector types for the pixel loops below that GCC would not vectorise by itself.
typedef float V8f __attribute__((vector_size(32)));
typedef std::int32_t V8i __attribute__((vector_size(32)));

// Maximum and count of the good (finite, > 0) pixels of a row, 8 at a time (GCC compiled the
// scalar lane loop of the single-threaded version scalar once it sat in an OpenMP loop).
PSFPHOT_VECTOR_CLONES RowMax row_max(const float* r, int w) {
  constexpr float kMax = std::numeric_limits<float>::max();
  const V8f vmax = V8f{} + kMax, vzero = V8f{};
  V8f lane_max = V8f{} - std::numeric_limits<float>::infinity();
  V8i lane_n = {};
  int x = 0;
  for (; x + 8 <= w; x += 8) {
    V8f v;
    std::memcpy(&v, r + x, sizeof v);
    const V8i ok = (v > vzero) & (v <= vmax);  // finite and > 0 (NaN compares false)
    lane_max = (ok & (v > lane_max)) ? v : lane_max;
    lane_n -= ok;  // comparisons give -1 for true
  }
  RowMax m{-std::numeric_limits<float>::infinity(), 0};
  for (int l = 0; l < 8; ++l) {
    m.max = std::max(m.max, lane_max[l]);
    m.n_good += static_cast<std::size_t>(lane_n[l]);
  }
  for (; x < w; ++x) {
    const float v = r[x];
    if (v > 0 && v <= kMax) {
      m.max = std::max(m.max, v);
      ++m.n_good;
    }
  }
  return m;
}

// Fills out.response (already sized, may share flat's buffer: each pixel is read before
// it is written), out.invalid, out.norm, out.n_invalid.
void normalise_into(ImageView<const float> flat, FlatNorm how, NormalisedFlat& out,
                    bool with_invalid_mask) {
  if (with_invalid_mask) out.invalid = Image<MaskBits>(flat.width(), flat.height(), 0);
  MaskBits* const inv_px = with_invalid_mask ? out.invalid.data() : nullptr;
  // The good pixels are copied only for the median: for max and mean the copy (a
  // frame-sized buffer, page faults included) cost more than the rest of the pass.
  std::vector<float> good;
  if (how == FlatNorm::kMedian) good.reserve(flat.size());
  double sum = 0, mx = -std::numeric_limits<double>::infinity();
  std::size_t n_good = 0;
  if (how == FlatNorm::kMax) {
    // The maximum and the count need no ordered double sum (the mean's serial chain of
    // additions was most of this pass): kLanes independent float maxima and counts that
    // the compiler vectorises. Rows are split over the threads (a serial pass over the flat
    // was a visible part of a two-thread frame). A maximum is exact in any order, so the norm
    // is the same.
    float frame_max = -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(dynamic, 64) reduction(max : frame_max) reduction(+ : n_good)
    for (int y = 0; y < flat.height(); ++y) {
      const RowMax m = row_max(flat.row(y), flat.width());
      frame_max = std::max(frame_max, m.max);
      n_good += m.n_good;
    }
    mx = frame_max;
  } else {
    for (int y = 0; y < flat.height(); ++y) {
      const float* r = flat.row(y);
      for (int x = 0; x < flat.width(); ++x) {
        if (std::isfinite(r[x]) && r[x] > 0) {
          if (how == FlatNorm::kMedian) good.push_back(r[x]);
          sum += r[x];
          ++n_good;
        }
      }
    }
  }
  if (n_good == 0) throw CalibrationError("flat has no positive finite pixel");
  switch (how) {
    case FlatNorm::kMax: out.norm = mx; break;
    case FlatNorm::kMean: out.norm = sum / static_cast<double>(n_good); break;
    case FlatNorm::kMedian: out.norm = median_inplace(good); break;
  }
  const float inv = static_cast<float>(1.0 / out.norm);
  std::size_t n_invalid = 0;
  const std::size_t w = static_cast<std::size_t>(flat.width());
// Dynamic chunks of rows (here and in calibrate): the cores are shared with other processes,
// and a static split waits for the slowest thread; the integer counts do not depend on it.
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : n_invalid)
  for (int y = 0; y < flat.height(); ++y) {
    // integer reduction: order-independent, deterministic
    n_invalid += response_row(flat.row(y), inv, out.response.data() + y * w,
                              inv_px ? inv_px + y * w : nullptr, flat.width());
  }
  out.n_invalid = n_invalid;
}

}  // namespace

NormalisedFlat normalise_flat(ImageView<const float> flat, FlatNorm how) {
  NormalisedFlat out;
  out.response = Image<float>(flat.width(), flat.height());
  normalise_into(flat, how, out, true);
  return out;
}

NormalisedFlat normalise_flat(Image<float>&& flat, FlatNorm how, bool with_invalid_mask) {
  NormalisedFlat out;
  out.response = std::move(flat);
  normalise_into(out.response.cview(), how, out, with_invalid_mask);
  return out;
}

namespace {

// The calibration of the pixel loop below (dark and flat given), 8 pixels at a time with GCC
// vector types: the loop with a branch per pixel ran scalar, and GCC does not vectorise it
// even branch-free (it will not compute a division whose result a select may drop). Every
// lane does the scalar loop's operations: v - ds * dark, then v / flat where the flat is
// finite, NaN where it is not; the same mask bits (sat = +inf when there is no saturation
// level). Returns the first pixel not done; adds the saturated, non-finite and flat-invalid
// counts to c[0..2]. r and o may be the same row. (__builtin_bit_cast rather than
// std::bit_cast: a function returning a vector type would change with the clone's ABI.)
PSFPHOT_VECTOR_CLONES int calibrate_row_dark_flat(const float* r, const float* d, float ds,
                                                  const float* f, float sat, float* o, MaskBits* m,
                                                  int w, std::size_t* c) {
  constexpr float kMax = std::numeric_limits<float>::max();
  const V8i abs_bits = V8i{} + 0x7FFFFFFF;
  const V8f vmax = V8f{} + kMax, vnan = V8f{} + std::numeric_limits<float>::quiet_NaN();
  const V8f vsat = V8f{} + sat;
  V8i n_sat = {}, n_nf = {}, n_fi = {};
  int x = 0;
  for (; x + 8 <= w; x += 8) {
    V8f v0, dk, fl;
    std::memcpy(&v0, r + x, sizeof v0);
    std::memcpy(&dk, d + x, sizeof dk);
    std::memcpy(&fl, f + x, sizeof fl);
    const V8i fin0 = __builtin_bit_cast(V8f, __builtin_bit_cast(V8i, v0) & abs_bits) <= vmax;
    const V8i saturated = fin0 & (v0 >= vsat);
    V8f v = v0 - ds * dk;
    const V8i flat_bad = ~(__builtin_bit_cast(V8f, __builtin_bit_cast(V8i, fl) & abs_bits) <= vmax);
    const V8f q = v / fl;
    v = flat_bad ? vnan : q;
    const V8i fin_v = __builtin_bit_cast(V8f, __builtin_bit_cast(V8i, v) & abs_bits) <= vmax;
    const V8i nonfinite = ~fin0 | (~fin_v & ~flat_bad);
    std::memcpy(o + x, &v, sizeof v);
    const V8i bits = (nonfinite & mask::kNonFinite) | (saturated & mask::kSaturated) |
                     (flat_bad & mask::kFlatInvalid);
    for (int l = 0; l < 8; ++l) m[x + l] = static_cast<MaskBits>(bits[l]);
    n_sat -= saturated;  // comparisons give -1 for true
    n_nf -= nonfinite;
    n_fi -= flat_bad;
  }
  for (int l = 0; l < 8; ++l) {
    c[0] += static_cast<std::size_t>(n_sat[l]);
    c[1] += static_cast<std::size_t>(n_nf[l]);
    c[2] += static_cast<std::size_t>(n_fi[l]);
  }
  return x;
}

// raw and out may be the same buffer (in-place calibration): each pixel is read before
// it is written.
CalibratedImage calibrate_into(ImageView<const float> raw, ImageView<float> out_px,
                               double sci_exptime_s, double saturation_adu,
                               const CalibrationInputs& in, const CalibrationConfig& cfg) {
  const int w = raw.width(), h = raw.height();
  if (w == 0 || h == 0) throw CalibrationError("science frame is empty");
  const bool has_dark = !in.dark.empty();
  if (has_dark && (in.dark.width() != w || in.dark.height() != h)) {
    throw CalibrationError("dark is " + shape(in.dark.width(), in.dark.height()) +
                           " but the science frame is " + shape(w, h));
  }
  if (in.flat && (in.flat->response.width() != w || in.flat->response.height() != h)) {
    throw CalibrationError("flat is " +
                           shape(in.flat->response.width(), in.flat->response.height()) +
                           " but the science frame is " + shape(w, h));
  }
  CalibratedImage out;
  out.dark_scale = 1.0;
  if (has_dark && cfg.scale_dark_by_exptime) {
    if (!(sci_exptime_s > 0) || !(in.dark_exptime_s > 0)) {
      throw CalibrationError(
          "dark scaling by exposure time needs EXPTIME in both science frame and dark "
          "(set calibration.scale_dark = false to subtract the dark as it is)");
    }
    out.dark_scale = sci_exptime_s / in.dark_exptime_s;
  }
  out.mask = Image<MaskBits>(w, h, 0);
  const float ds = static_cast<float>(out.dark_scale);
  const bool has_sat = std::isfinite(saturation_adu);
  const float sat = static_cast<float>(saturation_adu);
  std::size_t n_sat = 0, n_nf = 0, n_fi = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : n_sat, n_nf, n_fi)
  for (int y = 0; y < h; ++y) {
    const float* r = raw.row(y);
    const float* d = has_dark ? in.dark.row(y) : nullptr;
    const float* f = in.flat ? in.flat->response.data() + static_cast<std::size_t>(y) * w : nullptr;
    float* o = out_px.row(y);
    MaskBits* m = out.mask.data() + static_cast<std::size_t>(y) * w;
    int x0 = 0;
    if (d && f) {
      std::size_t c[3] = {0, 0, 0};
      x0 = calibrate_row_dark_flat(
          r, d, ds, f, has_sat ? sat : std::numeric_limits<float>::infinity(), o, m, w, c);
      n_sat += c[0];
      n_nf += c[1];
      n_fi += c[2];
    }
    for (int x = x0; x < w; ++x) {
      float v = r[x];
      MaskBits bits = 0;
      if (!std::isfinite(v)) {
        bits |= mask::kNonFinite;
        ++n_nf;
      } else if (has_sat && v >= sat) {
        bits |= mask::kSaturated;
        ++n_sat;
      }
      if (d) v -= ds * d[x];
      if (f) {
        if (std::isfinite(f[x])) {
          v /= f[x];
        } else {
          bits |= mask::kFlatInvalid;
          ++n_fi;
          v = std::numeric_limits<float>::quiet_NaN();
        }
      }
      if (!std::isfinite(v) && !(bits & mask::kFlatInvalid)) {
        if (!(bits & mask::kNonFinite)) ++n_nf;
        bits |= mask::kNonFinite;
      }
      o[x] = v;
      m[x] = bits;
    }
  }
  out.n_saturated = n_sat;
  out.n_nonfinite = n_nf;
  out.n_flat_invalid = n_fi;
  if (n_nf + n_fi == static_cast<std::size_t>(w) * h) {
    throw CalibrationError("no usable pixel after calibration (all NaN/inf or flat invalid)");
  }
  return out;
}

}  // namespace

CalibratedImage calibrate(ImageView<const float> raw, double sci_exptime_s, double saturation_adu,
                          const CalibrationInputs& in, const CalibrationConfig& cfg) {
  if (raw.width() == 0 || raw.height() == 0) throw CalibrationError("science frame is empty");
  Image<float> px(raw.width(), raw.height());
  CalibratedImage out = calibrate_into(raw, px.view(), sci_exptime_s, saturation_adu, in, cfg);
  out.pixels = std::move(px);
  return out;
}

CalibratedImage calibrate_in_place(ImageView<float> pixels, double sci_exptime_s,
                                   double saturation_adu, const CalibrationInputs& in,
                                   const CalibrationConfig& cfg) {
  return calibrate_into(pixels, pixels, sci_exptime_s, saturation_adu, in, cfg);
}

namespace {

// Scratch vectors of the per-pixel reference combination, one set per thread.
struct CombineScratch {
  std::vector<float> v, work;
  std::vector<double> dev;
};

// One pixel of combine_frames, the general way: any number of frames, non-finite values
// dropped. rows[i] is frame i's row; scales nullptr = none.
float combine_pixel(const float* const* rows, std::size_t n, int x, const CombineConfig& cfg,
                    const double* scales, CombineScratch& s) {
  std::vector<float>& v = s.v;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    float p = rows[i][x];
    if (scales) p = static_cast<float>(p * scales[i]);
    if (std::isfinite(p)) v[k++] = p;
  }
  if (k == 0) return std::numeric_limits<float>::quiet_NaN();
  s.work.assign(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k));
  const double med = median_inplace(s.work);
  if (cfg.method == CombineMethod::kMedian || k < 3) return static_cast<float>(med);
  // Clip about the median with a MAD sigma: robust to the hot pixels and cosmic
  // rays single frames carry, which a plain stddev would let through.
  std::vector<double>& dev = s.dev;
  dev.resize(k);
  for (std::size_t i = 0; i < k; ++i) dev[i] = v[i];
  const double sigma = mad_std_inplace(dev);
  double centre = med;
  double mean = med;
  // A MAD of 0 (more than half the frames agree exactly, common for integer-valued
  // bias/dark frames) clips to the values equal to the median; those always exist
  // then, so a hit in one frame is still rejected instead of averaged in.
  for (int it = 0; it < cfg.clip_iterations; ++it) {
    double sum = 0;
    std::size_t m = 0;
    for (std::size_t i = 0; i < k; ++i) {
      if (std::abs(v[i] - centre) <= cfg.clip_kappa * sigma) {
        sum += v[i];
        ++m;
      }
    }
    if (m == 0) break;
    mean = sum / static_cast<double>(m);
    centre = mean;
  }
  return static_cast<float>(mean);
}

typedef float V4f __attribute__((vector_size(16)));
typedef std::int32_t V4i __attribute__((vector_size(16)));
typedef double V4d __attribute__((vector_size(32)));
typedef std::int64_t V4l __attribute__((vector_size(32)));

// Stacks up to this many frames take the vector path (its sorting network is n(n-1)/2
// compare-exchanges); deeper stacks the per-pixel one.
constexpr std::size_t kMaxVectorStack = 48;

// Sorts a[0..n) lane by lane (an insertion network: no branch on the data, so four pixels
// sort at once). No NaN may be present.
inline void sort_lanes(V4d* a, std::size_t n) {
  for (std::size_t i = 1; i < n; ++i) {
    for (std::size_t j = i; j > 0; --j) {
      const V4d lo = a[j - 1], hi = a[j];
      const V4l lt = lo < hi;
      a[j - 1] = lt ? lo : hi;
      a[j] = lt ? hi : lo;
    }
  }
}

// Median of sorted lanes into *m, as median_inplace computes it (mean of the two middle
// values). (Through a pointer: a function returning a vector type would change with the
// clone's ABI.)
inline void median_sorted(const V4d* s, std::size_t n, V4d* m) {
  *m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

// combine_frames over one row, four pixels at a time, with the operations of combine_pixel
// in the same order and precision, so the same bits: the median is the same multiset's
// middle (a sorting network instead of nth_element), the MAD the median of the same
// deviations, the clipped sums add the kept values in frame order (adding +0.0 for a clipped
// one changes no sum: a sum that starts at +0 never becomes -0), and a lane whose clipping
// keeps nothing keeps its mean, as the loop's `break` does (the next iterations find nothing
// again). A group of four with a non-finite value or a -0 (whose rank among equal values
// nth_element leaves open) goes through combine_pixel. n <= kMaxVectorStack.
PSFPHOT_VECTOR_CLONES void combine_row(const float* const* rows, std::size_t n, int w,
                                       const CombineConfig& cfg, const double* scales, float* out,
                                       CombineScratch& scratch) {
  V4d v[kMaxVectorStack], s[kMaxVectorStack];
  constexpr float kMax = std::numeric_limits<float>::max();
  const V4i abs_bits = V4i{} + 0x7FFFFFFF;
  const V4i neg_zero = V4i{} + static_cast<std::int32_t>(0x80000000u);
  const V4f vmax = V4f{} + kMax;
  const V4l abs64 = V4l{} + 0x7FFFFFFFFFFFFFFFll;
  const bool median_only = cfg.method == CombineMethod::kMedian || n < 3;
  const double kappa = cfg.clip_kappa;
  int x = 0;
  for (; x + 4 <= w; x += 4) {
    V4i good = V4i{} - 1;
    for (std::size_t i = 0; i < n; ++i) {
      V4f p;
      std::memcpy(&p, rows[i] + x, sizeof p);
      if (scales) {
        p = __builtin_convertvector(__builtin_convertvector(p, V4d) * scales[i], V4f);
      }
      const V4i bits = __builtin_bit_cast(V4i, p);
      good &= (__builtin_bit_cast(V4f, bits & abs_bits) <= vmax) & (bits != neg_zero);
      v[i] = __builtin_convertvector(p, V4d);
    }
    if (!(good[0] & good[1] & good[2] & good[3])) {
      for (int l = 0; l < 4; ++l) out[x + l] = combine_pixel(rows, n, x + l, cfg, scales, scratch);
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) s[i] = v[i];
    sort_lanes(s, n);
    V4d med;
    median_sorted(s, n, &med);
    V4d mean = med;
    if (!median_only) {
      for (std::size_t i = 0; i < n; ++i)
        s[i] = __builtin_bit_cast(V4d, __builtin_bit_cast(V4l, v[i] - med) & abs64);
      sort_lanes(s, n);
      V4d mad;
      median_sorted(s, n, &mad);
      const V4d sigma = 1.482602218505602 * mad;
      const V4d limit = kappa * sigma;
      for (int it = 0; it < cfg.clip_iterations; ++it) {
        V4d sum = V4d{}, m = V4d{};
        for (std::size_t i = 0; i < n; ++i) {
          const V4d d = __builtin_bit_cast(V4d, __builtin_bit_cast(V4l, v[i] - mean) & abs64);
          const V4l keep = d <= limit;
          sum += keep ? v[i] : V4d{};
          m += keep ? V4d{} + 1.0 : V4d{};
        }
        mean = m > 0 ? sum / m : mean;
      }
    }
    const V4f o = __builtin_convertvector(mean, V4f);
    std::memcpy(out + x, &o, sizeof o);
  }
  for (; x < w; ++x) out[x] = combine_pixel(rows, n, x, cfg, scales, scratch);
}

}  // namespace

Image<float> combine_frames(const std::vector<ImageView<const float>>& frames,
                            const CombineConfig& cfg, const std::vector<double>& scales) {
  if (frames.empty()) throw CalibrationError("no frames to combine");
  const int w = frames[0].width(), h = frames[0].height();
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].width() != w || frames[i].height() != h) {
      throw CalibrationError("frame " + std::to_string(i) + " is " +
                             shape(frames[i].width(), frames[i].height()) + ", frame 0 is " +
                             shape(w, h));
    }
  }
  if (!scales.empty() && scales.size() != frames.size()) {
    throw CalibrationError("combine_frames: one scale per frame expected");
  }
  Image<float> out(w, h);
  const std::size_t n = frames.size();
  const double* sc = scales.empty() ? nullptr : scales.data();
#pragma omp parallel
  {
    CombineScratch scratch;
    scratch.v.resize(n);
    std::vector<const float*> rows(n);
#pragma omp for schedule(static)
    for (int y = 0; y < h; ++y) {
      for (std::size_t i = 0; i < n; ++i) rows[i] = frames[i].row(y);
      float* o = out.data() + static_cast<std::size_t>(y) * w;
      if (n <= kMaxVectorStack) {
        combine_row(rows.data(), n, w, cfg, sc, o, scratch);
      } else {
        for (int x = 0; x < w; ++x) o[x] = combine_pixel(rows.data(), n, x, cfg, sc, scratch);
      }
    }
  }
  return out;
}

}  // namespace psfphot
