// read_fits' own pixel decoding (BITPIX 8, 16, 32, -32, -64 with scaling, BLANK, extensions)
// against cfitsio, bit for bit; split from fits_test.cpp.
#include <fitsio.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

using test::TempDir;

// read_fits converts the pixels of uncompressed BITPIX 16 and -32 images itself (fits.cpp,
// read_pixels_direct); they must be cfitsio's values bit for bit, the special floats
// (NaN, infinities, signed zeros, subnormals) included, in the primary HDU and in an
// extension, and across the reader's 256 KiB chunks.
struct RawCase {
  int bitpix;
  double bscale, bzero;
  bool blank;
  bool extension;
};

// Writes an image HDU whose data bytes are exactly `bytes` (big-endian, as on disk).
void write_raw(const std::string& path, const RawCase& c, int w, int h,
               const std::vector<unsigned char>& bytes) {
  int st = 0;
  fitsfile* f = nullptr;
  fits_create_file(&f, path.c_str(), &st);
  long naxes[2] = {w, h};
  if (c.extension) {
    long none[2] = {0, 0};
    fits_create_img(f, 8, 0, none, &st);
  }
  fits_create_img(f, c.bitpix, 2, naxes, &st);
  if (c.bscale != 1.0 || c.bzero != 0.0) {
    double bs = c.bscale, bz = c.bzero;
    fits_write_key(f, TDOUBLE, "BSCALE", &bs, nullptr, &st);
    fits_write_key(f, TDOUBLE, "BZERO", &bz, nullptr, &st);
  }
  if (c.blank) {
    long blank = -7;
    fits_write_key(f, TLONG, "BLANK", &blank, nullptr, &st);
  }
  std::vector<float> zeros(static_cast<std::size_t>(w) * h, 0.f);
  fits_set_bscale(f, 1.0, 0.0, &st);
  fits_write_img(f, TFLOAT, 1, static_cast<LONGLONG>(zeros.size()), zeros.data(), &st);
  LONGLONG head = 0, data = 0, end = 0;
  fits_get_hduaddrll(f, &head, &data, &end, &st);
  fits_close_file(f, &st);
  ASSERT_EQ(st, 0);
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(data);
  io.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(io.good());
}

class FitsDirectRead : public ::testing::TestWithParam<RawCase> {};

TEST_P(FitsDirectRead, PixelsAreCfitsiosBitForBit) {
  const RawCase c = GetParam();
  const int w = 301, h = 257;  // 77357 pixels: 302 kB as floats, over one 256 KiB chunk
  const std::size_t n = static_cast<std::size_t>(w) * h;
  const int bpp = std::abs(c.bitpix) / 8;
  std::vector<unsigned char> bytes(n * bpp);
  std::mt19937 rng(7);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t u = rng();
    if (c.bitpix == -64) {
      // Every special class of double, and doubles that do not fit a float's range or
      // precision (rounding, overflow to infinity, underflow to subnormal floats).
      const double specials[] = {std::numeric_limits<double>::quiet_NaN(),
                                 std::numeric_limits<double>::infinity(),
                                 -std::numeric_limits<double>::infinity(),
                                 0.0,
                                 -0.0,
                                 std::numeric_limits<double>::denorm_min(),
                                 -1e-310,
                                 1e-40,
                                 1e300,
                                 -1e39,
                                 0.1,
                                 16777217.0};
      double v = std::uniform_real_distribution<double>(-1e4, 6e4)(rng);
      if (i % 97 < std::size(specials)) v = specials[i % 97];
      std::memcpy(&u, &v, 8);
      if (i % 89 == 0) u = 0x7FF0000000000001ull + (rng() & 0xFFFFFu);  // signalling NaNs
    }
    if (c.bitpix == -32) {
      // Mostly ordinary values, with every special class planted.
      const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(),
                                0.0f,
                                -0.0f,
                                std::numeric_limits<float>::denorm_min(),
                                -1e-40f,
                                std::numeric_limits<float>::min(),
                                std::numeric_limits<float>::max(),
                                -123.25f};
      float v = std::uniform_real_distribution<float>(-1e4f, 6e4f)(rng);
      if (i % 97 < std::size(specials)) v = specials[i % 97];
      std::memcpy(&u, &v, 4);
      if (i % 89 == 0) u = 0x7F800001u + (rng() & 0x3FFFFFu);  // signalling NaN payloads
    }
    if (c.bitpix == 32 && i % 61 == 0) u = i % 2 ? 0x7FFFFFFFu : 0x80000000u;  // extremes
    if (c.blank && i % 50 == 0)  // BLANK = -7 in the type's width
      u = bpp == 2 ? std::uint64_t{static_cast<std::uint16_t>(-7)}
                   : std::uint64_t{static_cast<std::uint32_t>(-7)};
    for (int b = 0; b < bpp; ++b) bytes[i * bpp + b] = (u >> (8 * (bpp - 1 - b))) & 0xFF;
  }
  TempDir dir;
  const std::string path = dir.file("raw.fits");
  write_raw(path, c, w, h, bytes);
  const std::string spec = c.extension ? path + "[1]" : path;

  // The reference: cfitsio's own conversion, as read_fits called it before.
  int st = 0;
  fitsfile* f = nullptr;
  ASSERT_EQ(fits_open_image(&f, spec.c_str(), READONLY, &st), 0);
  std::vector<float> ref(n);
  long first[2] = {1, 1};
  float nul = std::numeric_limits<float>::quiet_NaN();
  int anynul = 0;
  fits_read_pix(f, TFLOAT, first, static_cast<LONGLONG>(n), &nul, ref.data(), &anynul, &st);
  fits_close_file(f, &st);
  ASSERT_EQ(st, 0);

  const FitsImage img = read_fits(spec);
  ASSERT_EQ(img.pixels.size(), n);
  std::size_t differ = 0, nan_count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    differ += std::memcmp(&ref[i], img.pixels.data() + i, 4) != 0;
    nan_count += std::isnan(ref[i]);
  }
  EXPECT_EQ(differ, 0u);
  if (c.bitpix < 0 || (c.blank && c.bitpix != 8)) {
    EXPECT_GT(nan_count, 0u);  // the special cases were there
  }

  // read_fits_mapped (the masters of `psfphot frame`): unscaled BITPIX -32 is mapped and
  // converted as it is read, through single pixels and whole rows (8 at a time plus a tail:
  // 301 = 37 x 8 + 5), also as a flat's response; everything else is read as read_fits reads it.
  const MappedFits m = read_fits_mapped(spec);
  const bool mappable = c.bitpix == -32 && c.bscale == 1.0 && c.bzero == 0.0;
  ASSERT_EQ(m.is_mapped(), mappable);
  if (!mappable) {
    ASSERT_EQ(m.image.pixels.size(), n);
    EXPECT_EQ(0, std::memcmp(m.image.pixels.data(), ref.data(), n * 4));
    return;
  }
  EXPECT_TRUE(m.image.pixels.empty());
  ASSERT_EQ(m.mapped.width(), w);
  ASSERT_EQ(m.mapped.height(), h);
  const float inv = 1.0f / 3.0f;
  const FloatPlane resp = m.mapped.as_flat_response(inv);
  std::vector<float> row(w), rrow(w);
  std::size_t differ_px = 0, differ_row = 0, differ_resp = 0, valid = 0;
  for (int y = 0; y < h; ++y) {
    const float* r = m.mapped.row(y, row.data());
    const float* rr = resp.row(y, rrow.data());
    for (int x = 0; x < w; ++x) {
      const float want = ref[static_cast<std::size_t>(y) * w + x];
      const float got = m.mapped(x, y);
      differ_px += std::memcmp(&got, &want, 4) != 0;
      differ_row += std::memcmp(&r[x], &want, 4) != 0;
      // normalise_flat's rule: v * inv where v > 0 and finite, else NaN.
      const bool ok = want > 0 && want <= std::numeric_limits<float>::max();
      valid += ok;
      const float want_r = ok ? want * inv : std::numeric_limits<float>::quiet_NaN();
      const float got_r = resp(x, y);
      differ_resp += std::memcmp(&got_r, &want_r, 4) != 0;
      differ_resp += std::memcmp(&rr[x], &want_r, 4) != 0;
    }
  }
  // Subviews (the residual search's boxes of the flat response): single pixels and row parts.
  const int sx = 5, sy = 7, sw = 117, sh = 60;
  const FloatPlane sub = m.mapped.subview(sx, sy, sw, sh), rsub = resp.subview(sx, sy, sw, sh);
  ASSERT_EQ(sub.width(), sw);
  ASSERT_EQ(rsub.height(), sh);
  for (int y = 0; y < sh; ++y) {
    const float* r = sub.row_part(y, 3, 101, row.data());
    const float* rr = rsub.row_part(y, 3, 101, rrow.data());
    for (int x = 0; x < sw; ++x) {
      const float want = ref[static_cast<std::size_t>(sy + y) * w + sx + x];
      const bool ok = want > 0 && want <= std::numeric_limits<float>::max();
      const float want_r = ok ? want * inv : std::numeric_limits<float>::quiet_NaN();
      const float got = sub(x, y), got_r = rsub(x, y);
      differ_px += std::memcmp(&got, &want, 4) != 0;
      differ_resp += std::memcmp(&got_r, &want_r, 4) != 0;
      if (x >= 3 && x < 104) {
        differ_row += std::memcmp(&r[x - 3], &want, 4) != 0;
        differ_resp += std::memcmp(&rr[x - 3], &want_r, 4) != 0;
      }
    }
  }
  EXPECT_EQ(differ_px, 0u);
  EXPECT_EQ(differ_row, 0u);
  EXPECT_EQ(differ_resp, 0u);
  EXPECT_GT(valid, n / 2);
  EXPECT_LT(valid, n);
}

INSTANTIATE_TEST_SUITE_P(
    RawFrameAndMasters, FitsDirectRead,
    ::testing::Values(
        RawCase{16, 1, 0, false, false}, RawCase{16, 1, 32768, false, false},  // uint16 camera
        RawCase{16, 1, 32768, false, true}, RawCase{16, 2.92273835509, 3713.66692596, false, false},
        RawCase{16, 1, 32768, true, false}, RawCase{16, 1, -1000, false, false},
        RawCase{-32, 1, 0, false, false}, RawCase{-32, 1, 0, false, true},
        RawCase{-32, 0.5, 10, false, false}, RawCase{8, 1, 0, false, false},
        RawCase{8, 0.25, -3, false, true}, RawCase{32, 1, 0, false, false},
        RawCase{32, 1, 2147483648.0, false, false}, RawCase{32, 1.5, -20, false, true},
        RawCase{32, 1, 0, true, false}, RawCase{-64, 1, 0, false, false},
        RawCase{-64, 1, 0, false, true}, RawCase{-64, 2, 1, false, false}),
    [](const ::testing::TestParamInfo<RawCase>& i) {
      const RawCase& c = i.param;
      return "bitpix" + std::string(c.bitpix < 0 ? "m" : "") + std::to_string(std::abs(c.bitpix)) +
             (c.bzero == 32768 || c.bzero == 2147483648.0 ? "_uint" : "") +
             (c.bscale != 1 ? "_scaled" : (c.bzero < 0 ? "_offset" : "")) +
             (c.blank ? "_blank" : "") + (c.extension ? "_ext" : "");
    });

}  // namespace
}  // namespace psfphot::io
