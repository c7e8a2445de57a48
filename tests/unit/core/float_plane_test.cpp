// FloatPlane's FITS float32 helpers against their definition: the converted values.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "psfphot/core/float_plane.hpp"

namespace psfphot {
namespace {

// Big-endian words of every class cfitsio's rule treats apart: positive normals (counted),
// negative values, +-0, subnormals of both signs, +-inf, NaNs of both signs and payloads,
// the largest finite float, the smallest normal.
std::uint32_t random_word(std::mt19937& rng) {
  std::uniform_int_distribution<int> kind(0, 11);
  std::uniform_int_distribution<std::uint32_t> any;
  const std::uint32_t r = any(rng);
  switch (kind(rng)) {
    case 0: return 0x00000000u;                                    // +0
    case 1: return 0x80000000u;                                    // -0
    case 2: return r & 0x007FFFFFu;                                // +subnormal
    case 3: return 0x80000000u | (r & 0x007FFFFFu);                // -subnormal
    case 4: return 0x7F800000u | (r & 0x80000000u);                // +-inf
    case 5: return 0x7F800000u | (r & 0x807FFFFFu) | 1u;           // NaN, either sign
    case 6: return 0x7F7FFFFFu;                                    // largest finite
    case 7: return 0x00800000u;                                    // smallest normal
    case 8: return 0x80000000u | (0x00800000u + r % 0x7F000000u);  // negative normal
    default: return 0x00800000u + r % 0x7F000000u;                 // positive normal
  }
}

void put_be(std::vector<unsigned char>& b, std::size_t i, std::uint32_t w) {
  b[4 * i] = static_cast<unsigned char>(w >> 24);
  b[4 * i + 1] = static_cast<unsigned char>(w >> 16);
  b[4 * i + 2] = static_cast<unsigned char>(w >> 8);
  b[4 * i + 3] = static_cast<unsigned char>(w);
}

// The definition: convert, then keep v > 0 and finite.
PositiveMax by_conversion(const std::vector<unsigned char>& b, std::size_t n) {
  std::vector<float> f(n);
  if (n) convert_fits_float32(b.data(), n, f.data());
  PositiveMax m{-std::numeric_limits<float>::infinity(), 0};
  for (float v : f)
    if (v > 0 && v <= std::numeric_limits<float>::max()) {
      m.max = std::max(m.max, v);
      ++m.count;
    }
  return m;
}

TEST(FloatPlane, PositiveMaxOfFitsWordsIsTheMaxOfTheConvertedValues) {
  std::mt19937 rng(23);
  std::size_t cases = 0;
  for (std::size_t n : {0u, 1u, 5u, 7u, 8u, 9u, 15u, 16u, 17u, 31u, 64u, 157u, 1000u}) {
    for (int rep = 0; rep < 40; ++rep) {
      std::vector<unsigned char> b(4 * n);
      for (std::size_t i = 0; i < n; ++i) put_be(b, i, random_word(rng));
      // Half the cases: one planted maximum at a chosen position (vector body, tail, ends)
      // among smaller normals and larger-looking non-counted words (NaN, inf above it).
      if (rep % 2 == 1 && n > 0) {
        const std::size_t at = rep % 4 == 1 ? n - 1 : (static_cast<std::size_t>(rep) * 7) % n;
        put_be(b, at, 0x7F000000u + static_cast<std::uint32_t>(rep));
      }
      const PositiveMax want = by_conversion(b, n);
      const PositiveMax got = fits_float32_positive_max(b.data(), n);
      ASSERT_EQ(got.count, want.count) << "n " << n << " rep " << rep;
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got.max), std::bit_cast<std::uint32_t>(want.max))
          << "n " << n << " rep " << rep;
      ++cases;
    }
  }
  EXPECT_EQ(cases, 13u * 40u);
}

TEST(FloatPlane, PositiveMaxWithoutCountedValuesIsMinusInfinity) {
  std::vector<unsigned char> b(4 * 11);
  const std::uint32_t none[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807FFFFFu,
                                0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFFFFFFFu,
                                0xBF800000u, 0x80800000u, 0x7F800001u};
  for (std::size_t i = 0; i < 11; ++i) put_be(b, i, none[i]);
  const PositiveMax m = fits_float32_positive_max(b.data(), 11);
  EXPECT_EQ(m.count, 0u);
  EXPECT_EQ(m.max, -std::numeric_limits<float>::infinity());
  put_be(b, 9, 0x3F800000u);  // 1.0f
  const PositiveMax one = fits_float32_positive_max(b.data(), 11);
  EXPECT_EQ(one.count, 1u);
  EXPECT_EQ(one.max, 1.0f);
}

}  // namespace
}  // namespace psfphot
