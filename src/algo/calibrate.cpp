#include "psfphot/algo/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "psfphot/core/simd.hpp"

namespace psfphot {
namespace {
std::string shape(int w, int h) {
  return std::to_string(w) + "x" + std::to_string(h);
}
}  // namespace

namespace {

// GCC vector types for the pixel loop below, which GCC would not vectorise by itself.
typedef float V8f __attribute__((vector_size(32)));
typedef std::int32_t V8i __attribute__((vector_size(32)));

// Where the dark's or the flat's pixels come from in the pixel loop below: none, floats (an
// image's row, or a row converted into a buffer), or a mapped FITS plane's big-endian words
// read in place (detail::convert8: the values FloatPlane's row would give, bit for bit,
// without storing the converted row and loading it again: for a 4096-px row with both masters
// mapped that was 32 KiB written and read per row beside the calibration's own traffic).
enum Src { kNone, kFloats, kWords };

template <int kSrc>
[[gnu::always_inline]] inline void load8(const void* p, int x, bool response, float inv_norm,
                                         V8f& v) {
  if constexpr (kSrc == kWords) {
    detail::convert8(static_cast<const unsigned char*>(p) + 4 * static_cast<std::size_t>(x),
                     response, inv_norm, v);
  } else {
    std::memcpy(&v, static_cast<const float*>(p) + x, sizeof v);
  }
}

// The calibration of the pixel loop below, 8 pixels at a time with GCC vector types, one
// instance per combination of dark and flat sources: the loop with a branch per pixel ran
// scalar, and GCC does not vectorise it even branch-free (it will not compute a division
// whose result a select may drop). Nights without a flat, or without a dark, are common
// (the scalar loop made their calibration 1.5-2x slower than with both). Every lane does the
// scalar loop's operations: v - ds * dark (with a dark), then v / flat where the flat is
// finite, NaN where it is not (with a flat); the same mask bits (sat = +inf when there is no
// saturation level). A flat read as words is a flat response plane (factor flat_inv).
// Returns the first pixel not done; adds the saturated, non-finite and flat-invalid counts to
// c[0..2]. r and o may be the same row. (__builtin_bit_cast rather than std::bit_cast: a
// function returning a vector type would change with the clone's ABI.)
template <int kDark, int kFlat>
[[gnu::always_inline]] inline int calibrate_row_impl(const float* r, const void* d, float ds,
                                                     const void* f, float flat_inv, float sat,
                                                     float* o, MaskBits* m, int w, std::size_t* c) {
  constexpr float kMax = std::numeric_limits<float>::max();
  const V8i abs_bits = V8i{} + 0x7FFFFFFF;
  const V8f vmax = V8f{} + kMax, vnan = V8f{} + std::numeric_limits<float>::quiet_NaN();
  const V8f vsat = V8f{} + sat;
  V8i n_sat = {}, n_nf = {}, n_fi = {};
  int x = 0;
  for (; x + 8 <= w; x += 8) {
    V8f v0;
    std::memcpy(&v0, r + x, sizeof v0);
    const V8i fin0 = __builtin_bit_cast(V8f, __builtin_bit_cast(V8i, v0) & abs_bits) <= vmax;
    const V8i saturated = fin0 & (v0 >= vsat);
    V8f v = v0;
    if constexpr (kDark != kNone) {
      V8f dk;
      load8<kDark>(d, x, false, 1.0f, dk);
      v = v0 - ds * dk;
    }
    V8i flat_bad = {};
    if constexpr (kFlat != kNone) {
      V8f fl;
      load8<kFlat>(f, x, true, flat_inv, fl);
      flat_bad = ~(__builtin_bit_cast(V8f, __builtin_bit_cast(V8i, fl) & abs_bits) <= vmax);
      const V8f q = v / fl;
      v = flat_bad ? vnan : q;
    }
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

template <int kDark>
[[gnu::always_inline]] inline int calibrate_row_flat(const float* r, const void* d, float ds,
                                                     const void* f, int flat_src, float flat_inv,
                                                     float sat, float* o, MaskBits* m, int w,
                                                     std::size_t* c) {
  switch (flat_src) {
    case kFloats: return calibrate_row_impl<kDark, kFloats>(r, d, ds, f, flat_inv, sat, o, m, w, c);
    case kWords: return calibrate_row_impl<kDark, kWords>(r, d, ds, f, flat_inv, sat, o, m, w, c);
    default: return calibrate_row_impl<kDark, kNone>(r, d, ds, f, flat_inv, sat, o, m, w, c);
  }
}

// One clone-dispatched entry for the nine instances (the dispatch is an indirect call: once
// per row, not per pixel). dark_src / flat_src: Src values (d, f null for kNone).
PSFPHOT_VECTOR_CLONES int calibrate_row(const float* r, const void* d, int dark_src, float ds,
                                        const void* f, int flat_src, float flat_inv, float sat,
                                        float* o, MaskBits* m, int w, std::size_t* c) {
  switch (dark_src) {
    case kFloats:
      return calibrate_row_flat<kFloats>(r, d, ds, f, flat_src, flat_inv, sat, o, m, w, c);
    case kWords:
      return calibrate_row_flat<kWords>(r, d, ds, f, flat_src, flat_inv, sat, o, m, w, c);
    default: return calibrate_row_flat<kNone>(r, d, ds, f, flat_src, flat_inv, sat, o, m, w, c);
  }
}

// raw and out may be the same buffer (in-place calibration): each pixel is read before
// it is written.
CalibratedImage calibrate_into(ImageView<const float> raw, ImageView<float> out_px,
                               double sci_exptime_s, double saturation_adu,
                               const CalibrationInputs& in, const CalibrationConfig& cfg) {
  const int w = raw.width(), h = raw.height();
  if (w == 0 || h == 0) throw CalibrationError("science frame is empty");
  const bool has_dark = !in.dark.empty();
  const OverscanLevels* ov = in.overscan;
  if (ov && ov->level.size() != static_cast<std::size_t>(ov->per_row ? h : w))
    throw CalibrationError("overscan levels do not match the science frame's shape");
  if (has_dark && (in.dark.width() != w || in.dark.height() != h)) {
    throw CalibrationError("dark is " + shape(in.dark.width(), in.dark.height()) +
                           " but the science frame is " + shape(w, h));
  }
  const FloatPlane flat = in.flat ? in.flat->response_plane() : FloatPlane();
  if (in.flat && (flat.width() != w || flat.height() != h)) {
    throw CalibrationError("flat is " + shape(flat.width(), flat.height()) +
                           " but the science frame is " + shape(w, h));
  }
  CalibratedImage out;
  out.dark_scale = 1.0;
  if (has_dark) {
    out.dark_scale = dark_exptime_scale(sci_exptime_s, in.dark_exptime_s, cfg);
    if (std::isnan(out.dark_scale)) {
      // A missing time keeps its message of old (it is in catalogues' /frames messages);
      // times that are there but give no finite factor get one naming them.
      if (!(sci_exptime_s > 0) || !(in.dark_exptime_s > 0))
        throw CalibrationError(
            "dark scaling by exposure time needs EXPTIME in both science frame and dark "
            "(set calibration.scale_dark = false to subtract the dark as it is)");
      throw CalibrationError("dark scaling by exposure time: science EXPTIME " +
                             std::to_string(sci_exptime_s) + " s / dark EXPTIME " +
                             std::to_string(in.dark_exptime_s) +
                             " s is not a finite factor (set calibration.scale_dark = false to "
                             "subtract the dark as it is)");
    }
  }
  // Every pixel of the mask is written below: no zero fill first.
  out.mask = Image<MaskBits>(w, h, kNoInit);
  const float ds = static_cast<float>(out.dark_scale);
  const bool has_sat = std::isfinite(saturation_adu);
  const float sat = static_cast<float>(saturation_adu);
  std::size_t n_sat = 0, n_nf = 0, n_fi = 0;
  // Mapped masters (core/float_plane.hpp) are read in their words by the vector loop, and
  // converted pixel by pixel (FloatPlane's operator(): the same values) for a row's tail. A
  // mapped dark with an overscan is converted into a row buffer (it joins the bias there).
  const bool dark_words = has_dark && !ov && in.dark.kind() == FloatPlane::Kind::kFitsFloat32;
  const bool dark_rows = has_dark && !dark_words && in.dark.kind() != FloatPlane::Kind::kImage;
  const bool flat_words = in.flat && flat.kind() == FloatPlane::Kind::kFitsFlatResponse;
  const bool flat_rows = in.flat && !flat_words && flat.kind() != FloatPlane::Kind::kImage;
  const int dark_src = !has_dark ? kNone : (dark_words ? kWords : kFloats);
  const int flat_src = !in.flat ? kNone : (flat_words ? kWords : kFloats);
  const float flat_inv = flat_words ? flat.inv_norm() : 1.0f;
#pragma omp parallel reduction(+ : n_sat, n_nf, n_fi)
  {
    std::vector<float> dark_buf(dark_rows ? w : 0), flat_buf(flat_rows ? w : 0);
    std::vector<float> offset(ov ? w : 0);
#pragma omp for schedule(dynamic, 64)
    for (int y = 0; y < h; ++y) {
      const float* r = raw.row(y);
      const float* d = has_dark && !dark_words ? in.dark.row(y, dark_buf.data()) : nullptr;
      float dsc = ds;
      if (ov) {
        // The bias goes with the dark as one offset (b + s dark, subtracted at scale 1): the
        // saturation test keeps reading the raw value, and the loops below are unchanged.
        for (int x = 0; x < w; ++x) offset[x] = ov->at(x, y) + (d ? ds * d[x] : 0.0f);
        d = offset.data();
        dsc = 1.0f;
      }
      const float* f = in.flat && !flat_words ? flat.row(y, flat_buf.data()) : nullptr;
      const void* dv = dark_words ? static_cast<const void*>(in.dark.fits_row(y)) : d;
      const void* fv = flat_words ? static_cast<const void*>(flat.fits_row(y)) : f;
      float* o = out_px.row(y);
      MaskBits* m = out.mask.data() + static_cast<std::size_t>(y) * w;
      std::size_t c[3] = {0, 0, 0};
      const int x0 =
          calibrate_row(r, dv, ov ? kFloats : dark_src, dsc, fv, flat_src, flat_inv,
                        has_sat ? sat : std::numeric_limits<float>::infinity(), o, m, w, c);
      n_sat += c[0];
      n_nf += c[1];
      n_fi += c[2];
      // The row's tail (fewer than 8 pixels), one by one.
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
        if (d) v -= dsc * d[x];
        if (dark_words) v -= dsc * in.dark(x, y);
        if (in.flat) {
          const float fx = flat_words ? flat(x, y) : f[x];
          if (std::isfinite(fx)) {
            v /= fx;
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

double dark_exptime_scale(double sci_exptime_s, double dark_exptime_s,
                          const CalibrationConfig& cfg) {
  if (!cfg.scale_dark_by_exptime) return 1.0;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  // Spelled out rather than left to the division: inf / inf would give NaN, but inf / t and
  // t / inf an infinite or zero scale that calibrate() would carry into every pixel.
  if (!(sci_exptime_s > 0) || !(dark_exptime_s > 0)) return kNaN;
  if (!std::isfinite(sci_exptime_s) || !std::isfinite(dark_exptime_s)) return kNaN;
  const double s = sci_exptime_s / dark_exptime_s;
  return std::isfinite(s) && s > 0 ? s : kNaN;
}

CalibratedImage calibrate(ImageView<const float> raw, double sci_exptime_s, double saturation_adu,
                          const CalibrationInputs& in, const CalibrationConfig& cfg) {
  if (raw.width() == 0 || raw.height() == 0) throw CalibrationError("science frame is empty");
  Image<float> px(raw.width(), raw.height(), kNoInit);  // every pixel is written
  CalibratedImage out = calibrate_into(raw, px.view(), sci_exptime_s, saturation_adu, in, cfg);
  out.pixels = std::move(px);
  return out;
}

CalibratedImage calibrate_in_place(ImageView<float> pixels, double sci_exptime_s,
                                   double saturation_adu, const CalibrationInputs& in,
                                   const CalibrationConfig& cfg) {
  return calibrate_into(pixels, pixels, sci_exptime_s, saturation_adu, in, cfg);
}

}  // namespace psfphot
