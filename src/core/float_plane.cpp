#include "psfphot/core/float_plane.hpp"

#include <algorithm>

#include "psfphot/core/simd.hpp"

namespace psfphot {
namespace {

typedef std::int32_t V8i __attribute__((vector_size(32)));
typedef unsigned char V32b __attribute__((vector_size(32)));

// A row's conversion, the same operations as FloatPlane::convert per pixel, 8 pixels at a
// time with GCC vector types (detail::convert8; the scalar loop did not vectorise: a row is
// converted into a small buffer that stays in cache for the code that reads it next, and that
// buffer should cost no more than the copy it replaces).
PSFPHOT_VECTOR_CLONES void convert_row(const unsigned char* b, std::size_t n, bool response,
                                       float inv_norm, float* out) {
  std::size_t i = 0;
  if (response) {
    for (; i + 8 <= n; i += 8) {
      detail::FitsV8f v;
      detail::convert8(b + 4 * i, true, inv_norm, v);
      std::memcpy(out + i, &v, sizeof v);
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      detail::FitsV8f v;
      detail::convert8(b + 4 * i, false, inv_norm, v);
      std::memcpy(out + i, &v, sizeof v);
    }
  }
  for (; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, b + 4 * i, 4);
    out[i] = FloatPlane::convert(
        __builtin_bswap32(u),
        response ? FloatPlane::Kind::kFitsFlatResponse : FloatPlane::Kind::kFitsFloat32, inv_norm);
  }
}

// The integer form of the scan (float_plane.hpp): 8 words per step, a masked integer maximum
// (0 where a value is not counted: below every counted value's bits) and a count per lane.
// Used by the flat's normalisation on a mapped master flat, where the converted row was a
// row-sized store and reload per row beside the page-cache read that bounds the scan.
PSFPHOT_VECTOR_CLONES PositiveMax positive_max_row(const unsigned char* b, std::size_t n) {
  constexpr std::int32_t kLow = 0x00800000, kHigh = 0x7F800000;
  const V8i low = V8i{} + kLow, high = V8i{} + kHigh;
  V8i lane_max = {}, lane_n = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V32b raw;
    std::memcpy(&raw, b + 4 * i, sizeof raw);
    raw = __builtin_shufflevector(raw, raw, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                                  19, 18, 17, 16, 23, 22, 21, 20, 27, 26, 25, 24, 31, 30, 29, 28);
    const V8i s = __builtin_bit_cast(V8i, raw);
    const V8i ok = (s >= low) & (s < high);  // -1 where counted
    const V8i v = s & ok;
    lane_max = v > lane_max ? v : lane_max;
    lane_n -= ok;
  }
  std::int32_t m = 0;
  std::size_t count = 0;
  for (int l = 0; l < 8; ++l) {
    m = std::max(m, lane_max[l]);
    count += static_cast<std::size_t>(lane_n[l]);
  }
  for (; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, b + 4 * i, 4);
    const auto s = static_cast<std::int32_t>(__builtin_bswap32(u));
    if (s >= kLow && s < kHigh) {
      m = std::max(m, s);
      ++count;
    }
  }
  if (count == 0) return {-std::numeric_limits<float>::infinity(), 0};
  return {std::bit_cast<float>(m), count};
}

}  // namespace

PositiveMax fits_float32_positive_max(const unsigned char* big_endian, std::size_t n) {
  return positive_max_row(big_endian, n);
}

void convert_fits_float32(const unsigned char* big_endian, std::size_t n, float* out) {
  convert_row(big_endian, n, false, 1.0f, out);
}

const float* FloatPlane::row_part(int y, int x0, int n, float* scratch) const {
  if (n <= 0) return scratch;  // nothing to read (and nothing a computed plane may be asked)
  switch (kind_) {
    case Kind::kImage: return image_.row(y) + x0;
    case Kind::kComputed: src_->row(y + oy_, x0 + ox_, n, scratch); return scratch;
    default:
      convert_row(be_ + 4 * (static_cast<std::ptrdiff_t>(y) * stride_ + x0),
                  static_cast<std::size_t>(n), kind_ == Kind::kFitsFlatResponse, inv_norm_,
                  scratch);
      return scratch;
  }
}

FloatPlane FloatPlane::subview(int x0, int y0, int w, int h) const {
  if (kind_ == Kind::kImage) return FloatPlane(image_.subview(x0, y0, w, h));
  const int cx0 = std::clamp(x0, 0, w_), cy0 = std::clamp(y0, 0, h_);
  const int cx1 = std::clamp(x0 + w, cx0, w_), cy1 = std::clamp(y0 + h, cy0, h_);
  FloatPlane p = *this;
  if (kind_ == Kind::kComputed) {
    p.ox_ = ox_ + cx0;
    p.oy_ = oy_ + cy0;
  } else {
    p.be_ = be_ + 4 * (static_cast<std::ptrdiff_t>(cy0) * stride_ + cx0);
  }
  p.w_ = cx1 - cx0;
  p.h_ = cy1 - cy0;
  return p;
}

}  // namespace psfphot
