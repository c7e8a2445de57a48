#pragma once
// EncodedImageView: a read-only view of pixels that are either native floats (an
// ImageView<const float>) or still in the big-endian encoding of a FITS data unit, decoded to
// float a piece of a row at a time where they are used. It lets a pass read a file's pixels
// where they lie (io/fits.hpp, map_fits: the page cache's pages, no float copy of the whole
// image) and convert them on the way, e.g. inside the calibration (algo/calibrate.hpp).
//
// Decoding is exactly cfitsio's fits_read_pix(TFLOAT, nulval = NaN), bit for bit (the io/ tests
// compare it with cfitsio): integers (BITPIX 8 unsigned, 16, 32) as (float)(v * bscale + bzero)
// computed in double, or (float)v when bscale = 1 and bzero = 0 (no BLANK handling: such
// images are not given as encoded views); BITPIX -32 and -64 unscaled with cfitsio's null check
// (exponent all ones: NaN; exponent zero, i.e. +-0 and subnormals: +0; doubles rounded to float).
//
// Thread-safety: a plain value over read-only bytes; concurrent decoding is safe.
#include <cstddef>
#include <cstdint>

#include "psfphot/core/image.hpp"

namespace psfphot {

enum class PixelEncoding : std::uint8_t {
  kFloat,        // native float
  kFitsUint8,    // BITPIX 8
  kFitsInt16,    // BITPIX 16, big-endian
  kFitsInt32,    // BITPIX 32, big-endian
  kFitsFloat32,  // BITPIX -32, big-endian
  kFitsFloat64,  // BITPIX -64, big-endian
};

// Bytes per pixel of an encoding.
constexpr std::size_t encoded_pixel_bytes(PixelEncoding e) {
  switch (e) {
    case PixelEncoding::kFitsUint8: return 1;
    case PixelEncoding::kFitsInt16: return 2;
    case PixelEncoding::kFitsFloat64: return 8;
    default: return 4;
  }
}

// Decodes n pixels of encoding `e` (not kFloat) at `bytes` into out (the rule above).
void decode_pixels(const unsigned char* bytes, std::size_t n, PixelEncoding e, double bscale,
                   double bzero, float* out);

class EncodedImageView {
 public:
  EncodedImageView() = default;
  // Native floats (any stride). Implicit: a float image view is an encoded view.
  EncodedImageView(ImageView<const float> v)  // NOLINT(google-explicit-constructor)
      : data_(reinterpret_cast<const unsigned char*>(v.data())),
        width_(v.width()),
        height_(v.height()),
        row_bytes_(v.stride() * static_cast<std::ptrdiff_t>(sizeof(float))) {}
  EncodedImageView(ImageView<float> v)  // NOLINT(google-explicit-constructor)
      : EncodedImageView(ImageView<const float>(v)) {}
  // Encoded rows of `width` pixels, one after the other (a FITS data unit).
  EncodedImageView(const unsigned char* data, int width, int height, PixelEncoding e,
                   double bscale = 1.0, double bzero = 0.0)
      : data_(data),
        width_(width),
        height_(height),
        row_bytes_(static_cast<std::ptrdiff_t>(width) *
                   static_cast<std::ptrdiff_t>(encoded_pixel_bytes(e))),
        encoding_(e),
        bscale_(bscale),
        bzero_(bzero) {}

  int width() const { return width_; }
  int height() const { return height_; }
  bool empty() const { return width_ == 0 || height_ == 0; }
  std::size_t size() const { return static_cast<std::size_t>(width_) * height_; }
  PixelEncoding encoding() const { return encoding_; }
  bool is_float() const { return encoding_ == PixelEncoding::kFloat; }
  // The float view (only when is_float()).
  ImageView<const float> float_view() const {
    return ImageView<const float>(reinterpret_cast<const float*>(data_), width_, height_,
                                  row_bytes_ / static_cast<std::ptrdiff_t>(sizeof(float)));
  }

  // A pass that reads each row once may say it is done with rows [y0, y1): where the view
  // was given a release function (io/: mapped files drop those pages from the process's
  // mapping, so its resident size does not grow by the whole file; they stay in the page
  // cache), it is called with their bytes; else nothing happens. Reading them again is still
  // valid (the pages come back).
  using ReleaseFn = void (*)(const unsigned char* bytes, std::size_t n);
  void set_release(ReleaseFn f) { release_ = f; }
  void release_rows(int y0, int y1) const {
    if (release_ && y1 > y0)
      release_(data_ + static_cast<std::ptrdiff_t>(y0) * row_bytes_,
               static_cast<std::size_t>(y1 - y0) * static_cast<std::size_t>(row_bytes_));
  }

  // Pixels [x0, x0 + n) of row y as floats: a pointer into the image when it holds floats,
  // else those pixels decoded into `scratch` (room for n floats), which is returned.
  const float* row(int y, int x0, int n, float* scratch) const {
    const unsigned char* p = data_ + static_cast<std::ptrdiff_t>(y) * row_bytes_;
    if (encoding_ == PixelEncoding::kFloat) return reinterpret_cast<const float*>(p) + x0;
    const std::size_t bpp = encoded_pixel_bytes(encoding_);
    decode_pixels(p + static_cast<std::size_t>(x0) * bpp, static_cast<std::size_t>(n), encoding_,
                  bscale_, bzero_, scratch);
    return scratch;
  }

 private:
  const unsigned char* data_ = nullptr;
  int width_ = 0;
  int height_ = 0;
  std::ptrdiff_t row_bytes_ = 0;
  PixelEncoding encoding_ = PixelEncoding::kFloat;
  double bscale_ = 1.0;
  double bzero_ = 0.0;
  ReleaseFn release_ = nullptr;
};

}  // namespace psfphot
