#include "fits_pixels.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "psfphot/core/simd.hpp"

namespace psfphot::io::detail {

PSFPHOT_VECTOR_CLONES void be_int16_to_float(const unsigned char* b, std::size_t n, double bscale,
                                             double bzero, float* o) {
  auto value = [b](std::size_t i) {
    std::uint16_t u;
    std::memcpy(&u, b + 2 * i, 2);
    return static_cast<std::int16_t>(__builtin_bswap16(u));
  };
  // An unscaled integer zero point (BZERO 32768 of uint16 cameras, or none): v + bzero is an
  // integer below 2^31, exact in int32 as in double (v * 1.0 = v), and int32 -> float rounds
  // to nearest as double -> float does: the same floats, 8 per AVX2 instruction instead of 4
  // doubles, and no double round trip.
  if (bscale == 1.0 && std::abs(bzero) < 2147450880.0 &&
      bzero == static_cast<double>(static_cast<std::int32_t>(bzero))) {
    const auto z = static_cast<std::int32_t>(bzero);
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(value(i) + z);
  } else {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(value(i) * bscale + bzero);
  }
}

PSFPHOT_VECTOR_CLONES void be_uint8_to_float(const unsigned char* b, std::size_t n, double bscale,
                                             double bzero, float* o) {
  if (bscale != 1.0 || bzero != 0.0) {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(b[i] * bscale + bzero);
  } else {
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<float>(b[i]);
  }
}

PSFPHOT_VECTOR_CLONES void be_int32_to_float(const unsigned char* b, std::size_t n, double bscale,
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

// 4 doubles at a time with GCC vector types (the scalar loop, with its byte swap and two
// selects, did not vectorise: 5.6x a memory copy against 2.8x for BITPIX -32). Every lane does
// the scalar rule: exponent all ones (NaN, +-Inf) -> NaN, exponent zero (+-0, subnormals) ->
// +0, else the double rounded to float (the vector conversion rounds to nearest as the scalar
// one does). (__builtin_bit_cast as in calibrate.cpp: a vector std::bit_cast would change
// with the clone's ABI.)
PSFPHOT_VECTOR_CLONES void be_float64_to_float(const unsigned char* b, std::size_t n, float* o) {
  typedef std::uint64_t V4u __attribute__((vector_size(32)));
  typedef double V4d __attribute__((vector_size(32)));
  typedef float V4f __attribute__((vector_size(16)));
  typedef std::int32_t V4i __attribute__((vector_size(16)));
  typedef unsigned char V32b __attribute__((vector_size(32)));
  const V4u exp_bits = V4u{} + 0x7FF0000000000000ull, zero = V4u{};
  const V4f nan = V4f{} + std::bit_cast<float>(0x7FC00000u);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V32b raw;
    std::memcpy(&raw, b + 8 * i, sizeof raw);
    raw = __builtin_shufflevector(raw, raw, 7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,
                                  23, 22, 21, 20, 19, 18, 17, 16, 31, 30, 29, 28, 27, 26, 25, 24);
    const V4u u = __builtin_bit_cast(V4u, raw);
    const V4u e = u & exp_bits;
    const V4d d = __builtin_bit_cast(V4d, e == zero ? zero : u);
    const V4f f = __builtin_convertvector(d, V4f);
    // The NaN lanes, narrowed to the float lanes' width.
    const V4i is_nan = __builtin_convertvector(e == exp_bits, V4i);
    const V4f v = is_nan ? nan : f;
    std::memcpy(o + i, &v, sizeof v);
  }
  for (; i < n; ++i) {
    std::uint64_t u;
    std::memcpy(&u, b + 8 * i, 8);
    u = __builtin_bswap64(u);
    const std::uint64_t e = u & 0x7FF0000000000000ull;
    const double d = std::bit_cast<double>(e == 0 ? 0ull : u);
    o[i] = e == 0x7FF0000000000000ull ? std::bit_cast<float>(0x7FC00000u) : static_cast<float>(d);
  }
}

}  // namespace psfphot::io::detail
