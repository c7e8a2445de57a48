#pragma once
// A read-only frame-sized plane of floats held either as an image in memory or as a FITS
// file's BITPIX -32 data unit mapped from the file (big-endian IEEE floats in the page
// cache), converted pixel by pixel as it is read. The masters of `psfphot frame` (dark and
// flat) are read this way: a copy of each into the process's own memory is a frame-sized
// first touch, which on a virtual machine costs ~1-2 ms per MiB (more than everything the
// calibration computes with it; docs/performance.md), while the file's pages are already in
// memory, shared with every other process reading them.
//
// Kinds:
//  - an image (ImageView<const float>): its values as they are;
//  - FITS float32: cfitsio's conversion with nulls as NaN (fits_read_pix, TFLOAT, nulval
//    NaN), bit for bit: exponent all ones (NaN, +-inf) -> NaN, exponent zero (+-0,
//    subnormals) -> +0, else the value;
//  - FITS float32 as a flat response: normalise_flat's response of that value v, bit for
//    bit: v * inv_norm (float) where v > 0 and finite, else NaN;
//  - computed: values a PlaneSource evaluates when asked (the background RMS map from its
//    mesh spline, algo/background.hpp: a frame-sized image less per frame).
// Thread-safety: a plain value (pointers into memory owned elsewhere: the image, the
// mapping or the source, which must outlive every copy); any number of threads may read it.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "psfphot/core/image.hpp"

namespace psfphot {

// A plane computed on demand. Implementations must be safe to call from many threads and
// give the same value for a pixel however it is asked for.
class PlaneSource {
 public:
  virtual ~PlaneSource() = default;
  // The value at (x, y), 0 <= x < width, 0 <= y < height of the source's plane.
  virtual float at(int x, int y) const = 0;
  // Pixels [x0, x0 + n) of row y into out (n >= 1, within the plane).
  virtual void row(int y, int x0, int n, float* out) const = 0;
};

class FloatPlane {
 public:
  enum class Kind : std::uint8_t { kImage, kFitsFloat32, kFitsFlatResponse, kComputed };

  FloatPlane() = default;
  // An image's values (implicitly: wherever a view was taken, a view still does).
  FloatPlane(ImageView<const float> image)  // NOLINT(google-explicit-constructor)
      : image_(image), w_(image.width()), h_(image.height()) {}
  // A FITS BITPIX -32 data unit at `big_endian` (w x h pixels, rows of `stride_px`).
  static FloatPlane fits_float32(const unsigned char* big_endian, int w, int h,
                                 std::ptrdiff_t stride_px) {
    FloatPlane p;
    p.kind_ = Kind::kFitsFloat32;
    p.be_ = big_endian;
    p.w_ = w;
    p.h_ = h;
    p.stride_ = stride_px;
    return p;
  }
  // The same data unit read as the response of a flat normalised by 1 / inv_norm.
  static FloatPlane fits_flat_response(const unsigned char* big_endian, int w, int h,
                                       std::ptrdiff_t stride_px, float inv_norm) {
    FloatPlane p = fits_float32(big_endian, w, h, stride_px);
    p.kind_ = Kind::kFitsFlatResponse;
    p.inv_norm_ = inv_norm;
    return p;
  }

  // The w x h plane of `source` (which must outlive the plane and its copies).
  static FloatPlane computed(const PlaneSource* source, int w, int h) {
    FloatPlane p;
    p.kind_ = Kind::kComputed;
    p.src_ = source;
    p.w_ = w;
    p.h_ = h;
    return p;
  }
  // A FITS float32 plane read as the response of that flat normalised by 1 / inv_norm.
  FloatPlane as_flat_response(float inv_norm) const {
    FloatPlane p = *this;
    p.kind_ = Kind::kFitsFlatResponse;
    p.inv_norm_ = inv_norm;
    return p;
  }

  Kind kind() const { return kind_; }
  int width() const { return w_; }
  int height() const { return h_; }
  bool empty() const { return w_ == 0 || h_ == 0; }
  std::size_t size() const { return static_cast<std::size_t>(w_) * static_cast<std::size_t>(h_); }

  // The value at (x, y), 0 <= x < width, 0 <= y < height.
  float operator()(int x, int y) const {
    if (kind_ == Kind::kImage) return image_(x, y);
    if (kind_ == Kind::kComputed) return src_->at(x + ox_, y + oy_);
    std::uint32_t u;
    std::memcpy(&u, be_ + 4 * (static_cast<std::ptrdiff_t>(y) * stride_ + x), 4);
    return convert(__builtin_bswap32(u), kind_, inv_norm_);
  }
  // Where (x, y) is stored (for prefetch hints only); nullptr for a computed plane.
  const void* address(int x, int y) const {
    if (kind_ == Kind::kImage) return &image_(x, y);
    if (kind_ == Kind::kComputed) return nullptr;
    return be_ + 4 * (static_cast<std::ptrdiff_t>(y) * stride_ + x);
  }
  // Row y: a pointer to the image's row, or the row converted (or computed) into `scratch`
  // (width() floats) and `scratch`.
  const float* row(int y, float* scratch) const { return row_part(y, 0, w_, scratch); }
  // Pixels [x0, x0 + n) of row y (within the plane): a pointer to them in the image, or to
  // `scratch` (n floats) holding them; n <= 0 reads nothing.
  const float* row_part(int y, int x0, int n, float* scratch) const;
  // Pixels [x0, x0 + w) x [y0, y0 + h), clipped to the plane (local coordinates from 0).
  FloatPlane subview(int x0, int y0, int w, int h) const;
  // The factor of a kFitsFlatResponse plane (1 for the other kinds).
  float inv_norm() const { return inv_norm_; }
  // Row y's big-endian words for the FITS kinds (width() of them), nullptr for the others.
  const unsigned char* fits_row(int y) const {
    return (kind_ == Kind::kFitsFloat32 || kind_ == Kind::kFitsFlatResponse)
               ? be_ + 4 * static_cast<std::ptrdiff_t>(y) * stride_
               : nullptr;
  }

  // One pixel's conversion from its host-order bits (see the kinds above).
  static float convert(std::uint32_t u, Kind kind, float inv_norm) {
    const std::uint32_t e = u & 0x7F800000u;
    if (kind == Kind::kFitsFlatResponse) {
      // cfitsio's NaN and +0 are both invalid responses, as are negative values.
      const bool ok = e != 0x7F800000u && e != 0 && !(u >> 31);
      return ok ? std::bit_cast<float>(u) * inv_norm : std::numeric_limits<float>::quiet_NaN();
    }
    return std::bit_cast<float>(e == 0x7F800000u ? 0x7FC00000u : (e == 0 ? 0u : u));
  }

 private:
  ImageView<const float> image_;
  const PlaneSource* src_ = nullptr;
  int ox_ = 0, oy_ = 0;  // a computed subview's offset in its source's plane
  const unsigned char* be_ = nullptr;
  int w_ = 0, h_ = 0;
  std::ptrdiff_t stride_ = 0;  // pixels (FITS kinds)
  float inv_norm_ = 1.0f;
  Kind kind_ = Kind::kImage;
};

namespace detail {
typedef float FitsV8f __attribute__((vector_size(32)));
// Eight big-endian FITS BITPIX -32 words at b, converted as FloatPlane::convert does for the
// kFitsFloat32 kind (response = false) or the kFitsFlatResponse kind with inv_norm (true),
// lane by lane with the same operations. For vector loops that read a mapped plane in place
// (convert_row below, the calibration): always inlined, so it takes the caller's target
// clone, and `response` is a constant there. The result goes to `out` (a vector returned by
// value would change with the clone's ABI, as would a std::bit_cast to a vector type).
[[gnu::always_inline]] inline void convert8(const unsigned char* b, bool response, float inv_norm,
                                            FitsV8f& out) {
  typedef std::uint32_t V8u __attribute__((vector_size(32)));
  typedef std::int32_t V8i __attribute__((vector_size(32)));
  typedef unsigned char V32b __attribute__((vector_size(32)));
  constexpr std::uint32_t kNaNBits = 0x7FC00000u;
  const V8u exp_bits = V8u{} + 0x7F800000u, nan_bits = V8u{} + kNaNBits, zero = V8u{};
  V32b raw;
  std::memcpy(&raw, b, sizeof raw);
  raw = __builtin_shufflevector(raw, raw, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19,
                                18, 17, 16, 23, 22, 21, 20, 27, 26, 25, 24, 31, 30, 29, 28);
  const V8u u = __builtin_bit_cast(V8u, raw);
  const V8u e = u & exp_bits;
  if (response) {
    const V8i ok = (e != exp_bits) & (e != zero) & ((u >> 31) == zero);
    const V8u sel = __builtin_bit_cast(V8u, ok) ? u : nan_bits;
    out = __builtin_bit_cast(FitsV8f, sel) * inv_norm;
    return;
  }
  const V8u sel = (e == exp_bits) ? nan_bits : ((e == zero) ? zero : u);
  out = __builtin_bit_cast(FitsV8f, sel);
}
}  // namespace detail

// n big-endian FITS BITPIX -32 values converted by cfitsio's rule (the kFitsFloat32 kind),
// 8 at a time: the masters mapped here and the FITS reader's own conversion (io/) share it.
void convert_fits_float32(const unsigned char* big_endian, std::size_t n, float* out);

// Largest value and count of the values v > 0 and finite among n big-endian FITS BITPIX -32
// values read by cfitsio's rule (the kFitsFloat32 kind): exactly what converting them with
// convert_fits_float32 and scanning the floats would give (max -inf, count 0 when none is),
// without the converted row. Such a value's bits, as a signed 32-bit integer, lie in
// [0x00800000, 0x7F800000) (sign clear, exponent neither 0, which cfitsio reads as +0, nor
// all ones, NaN or inf), and positive floats order as their bits do, so the maximum is an
// integer maximum of the swapped words. Thread-safety: pure.
struct PositiveMax {
  float max;
  std::size_t count;
};
PositiveMax fits_float32_positive_max(const unsigned char* big_endian, std::size_t n);

}  // namespace psfphot
