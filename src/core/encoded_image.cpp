#include "psfphot/core/encoded_image.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#include "psfphot/core/simd.hpp"

namespace psfphot {
namespace {

// One loop per encoding, each vectorised (AVX2 clone): the images are decoded a piece of a row
// at a time inside other passes, so these loops run at the speed of the bytes they read.

PSFPHOT_VECTOR_CLONES void int16_to_float(const unsigned char* b, std::size_t n, double bscale,
                                          double bzero, float* o) {
  auto value = [b](std::size_t i) {
    std::uint16_t u;
    std::memcpy(&u, b + 2 * i, 2);
    return static_cast<std::int16_t>(__builtin_bswap16(u));
  };
  // An unscaled integer zero point (BZERO 32768 of uint16 cameras): v + bzero is an integer
  // of less than 2^31, exact in int32 as in double, and int32 -> float rounds as double ->
  // float does (to nearest): the same float, 8 at a time instead of 4 doubles (v * 1.0 = v).
  if (bscale == 1.0 && std::abs(bzero) < 2147450880.0 &&
      bzero == static_cast<double>(static_cast<std::int32_t>(bzero))) {
    const auto z = static_cast<std::int32_t>(bzero);
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(value(i) + z);
  } else {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(value(i) * bscale + bzero);
  }
}

PSFPHOT_VECTOR_CLONES void uint8_to_float(const unsigned char* b, std::size_t n, double bscale,
                                          double bzero, float* o) {
  if (bscale != 1.0 || bzero != 0.0) {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(b[i] * bscale + bzero);
  } else {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(b[i]);
  }
}

PSFPHOT_VECTOR_CLONES void int32_to_float(const unsigned char* b, std::size_t n, double bscale,
                                          double bzero, float* o) {
  auto value = [b](std::size_t i) {
    std::uint32_t u;
    std::memcpy(&u, b + 4 * i, 4);
    return static_cast<std::int32_t>(__builtin_bswap32(u));
  };
  if (bscale != 1.0 || bzero != 0.0) {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(value(i) * bscale + bzero);
  } else {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(value(i));
  }
}

PSFPHOT_VECTOR_CLONES void float64_to_float(const unsigned char* b, std::size_t n, float* o) {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t u;
    std::memcpy(&u, b + 8 * i, 8);
    u = __builtin_bswap64(u);
    const std::uint64_t e = u & 0x7FF0000000000000ull;
    const double d = std::bit_cast<double>(e == 0 ? 0ull : u);
    o[i] = e == 0x7FF0000000000000ull ? std::bit_cast<float>(0x7FC00000u) : static_cast<float>(d);
  }
}

PSFPHOT_VECTOR_CLONES void float32_to_float(const unsigned char* b, std::size_t n, float* o) {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, b + 4 * i, 4);
    u = __builtin_bswap32(u);
    const std::uint32_t e = u & 0x7F800000u;
    u = e == 0x7F800000u ? 0x7FC00000u : (e == 0 ? 0u : u);
    o[i] = std::bit_cast<float>(u);
  }
}

}  // namespace

void decode_pixels(const unsigned char* bytes, std::size_t n, PixelEncoding e, double bscale,
                   double bzero, float* out) {
  switch (e) {
    case PixelEncoding::kFitsUint8: uint8_to_float(bytes, n, bscale, bzero, out); break;
    case PixelEncoding::kFitsInt16: int16_to_float(bytes, n, bscale, bzero, out); break;
    case PixelEncoding::kFitsInt32: int32_to_float(bytes, n, bscale, bzero, out); break;
    case PixelEncoding::kFitsFloat32: float32_to_float(bytes, n, out); break;
    case PixelEncoding::kFitsFloat64: float64_to_float(bytes, n, out); break;
    case PixelEncoding::kFloat: std::memcpy(out, bytes, n * sizeof(float)); break;
  }
}

}  // namespace psfphot
