// map_fits / map_or_read_fits (io/fits.hpp): mapped pixels decode to read_fits's values bit for
// bit for every BITPIX it maps, the cases it must leave to cfitsio are read instead, and a
// file shorter than its header says is an error naming it before anything is mapped (never a
// SIGBUS on first access).
#include <fitsio.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <vector>

#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

using test::TempDir;

struct MapCase {
  int bitpix;
  double bscale, bzero;
  bool blank;
  bool extension;
  bool mappable;  // what map_fits should do with it
};

// An image HDU whose data unit holds random big-endian bytes with the type's special values
// (NaN, infinities, signed zeros, subnormals, extremes) planted.
void write_random(const std::string& path, const MapCase& c, int w, int h) {
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
  double exptime = 12.5;
  fits_write_key(f, TDOUBLE, "EXPTIME", &exptime, nullptr, &st);
  const std::size_t n = static_cast<std::size_t>(w) * h;
  std::vector<float> zeros(n, 0.f);
  fits_set_bscale(f, 1.0, 0.0, &st);
  fits_write_img(f, TFLOAT, 1, static_cast<LONGLONG>(n), zeros.data(), &st);
  LONGLONG head = 0, data = 0, end = 0;
  fits_get_hduaddrll(f, &head, &data, &end, &st);
  fits_close_file(f, &st);
  ASSERT_EQ(st, 0);
  const int bpp = std::abs(c.bitpix) / 8;
  std::vector<unsigned char> bytes(n * bpp);
  std::mt19937_64 rng(3);
  const std::uint32_t f32_special[] = {0x7FC00000u, 0x7F800000u, 0xFF800000u, 0u,
                                       0x80000000u, 1u,          0x807FFFFFu, 0x7F800001u};
  const std::uint64_t f64_special[] = {
      0x7FF8000000000000ull, 0x7FF0000000000000ull, 0ull, 0x8000000000000000ull, 1ull,
      0x47EFFFFFE0000000ull, 0x3690000000000000ull};
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t u = rng();
    if (c.bitpix == -32) {
      float v = std::uniform_real_distribution<float>(-1e3f, 7e4f)(rng);
      std::uint32_t b;
      std::memcpy(&b, &v, 4);
      if (i % 37 < std::size(f32_special)) b = f32_special[i % 37];
      u = b;
    } else if (c.bitpix == -64) {
      double v = std::uniform_real_distribution<double>(-1e3, 7e4)(rng);
      std::memcpy(&u, &v, 8);
      if (i % 37 < std::size(f64_special)) u = f64_special[i % 37];
    }
    for (int b = 0; b < bpp; ++b) bytes[i * bpp + b] = (u >> (8 * (bpp - 1 - b))) & 0xFF;
  }
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(data);
  io.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(io.good());
}

// Every pixel of `v`, decoded a piece of a row at a time (as the calibration does).
std::vector<float> decode_all(EncodedImageView v) {
  std::vector<float> out(v.size()), scratch(64);
  for (int y = 0; y < v.height(); ++y)
    for (int x0 = 0; x0 < v.width(); x0 += 64) {
      const int n = std::min(64, v.width() - x0);
      const float* p = v.row(y, x0, n, scratch.data());
      std::memcpy(out.data() + static_cast<std::size_t>(y) * v.width() + x0, p, n * sizeof(float));
    }
  return out;
}

class FitsMap : public ::testing::TestWithParam<MapCase> {};

TEST_P(FitsMap, MappedPixelsDecodeToReadFitsBitForBit) {
  const MapCase c = GetParam();
  TempDir dir;
  const std::string path = dir.file("img.fits");
  write_random(path, c, 203, 67);
  const std::string spec = c.extension ? path + "[1]" : path;
  const FitsImage ref = read_fits(spec);

  const std::optional<MappedFits> m = map_fits(spec);
  ASSERT_EQ(m.has_value(), c.mappable);
  const MappedOrRead mr = map_or_read_fits(spec);
  ASSERT_EQ(mr.is_mapped(), c.mappable);
  for (const FitsImage* info : {&mr.info(), m ? &m->info() : &mr.info()}) {
    EXPECT_EQ(info->width, 203);
    EXPECT_EQ(info->height, 67);
    EXPECT_EQ(info->bitpix, ref.bitpix);
    EXPECT_EQ(info->hdu_number, ref.hdu_number);
    EXPECT_EQ(info->header.exptime_s, 12.5);
    ASSERT_EQ(info->header.cards.size(), ref.header.cards.size());
    for (std::size_t i = 0; i < ref.header.cards.size(); ++i)
      EXPECT_EQ(info->header.cards[i].value, ref.header.cards[i].value);
  }
  std::vector<std::vector<float>> got{decode_all(mr.pixels())};
  if (m) got.push_back(decode_all(m->pixels()));
  // A pass may release rows it is done with (their pages leave the mapping): read again,
  // they are the same.
  if (m) {
    m->pixels().release_rows(0, 30);
    m->pixels().release_rows(30, 67);
    got.push_back(decode_all(m->pixels()));
  }
  for (const auto& px : got) {
    ASSERT_EQ(px.size(), ref.pixels.size());
    EXPECT_EQ(0, std::memcmp(px.data(), ref.pixels.data(), px.size() * sizeof(float)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryBitpix, FitsMap,
    ::testing::Values(MapCase{16, 1, 32768, false, false, true},  // uint16 camera
                      MapCase{16, 1, 0, false, true, true},
                      MapCase{16, 2.5, -11, false, false, true},
                      MapCase{16, 1, 32768, true, false, false},  // BLANK: cfitsio
                      MapCase{-32, 1, 0, false, false, true}, MapCase{-32, 1, 0, false, true, true},
                      MapCase{-32, 0.5, 10, false, false, false},  // scaled floats: cfitsio
                      MapCase{8, 1, 0, false, false, true}, MapCase{32, 1, 0, false, false, true},
                      MapCase{32, 1, 2147483648.0, false, true, true},
                      MapCase{-64, 1, 0, false, false, true},
                      MapCase{-64, 2, 1, false, false, false}),
    [](const ::testing::TestParamInfo<MapCase>& i) {
      const MapCase& c = i.param;
      return "bitpix" + std::string(c.bitpix < 0 ? "m" : "") + std::to_string(std::abs(c.bitpix)) +
             (c.bzero == 32768 || c.bzero == 2147483648.0 ? "_uint" : "") +
             (c.bscale != 1 ? "_scaled" : "") + (c.blank ? "_blank" : "") +
             (c.extension ? "_ext" : "");
    });

TEST(FitsMap, CompressedFilesAreReadNotMapped) {
  TempDir dir;
  Image<float> img(64, 40);
  for (std::size_t i = 0; i < img.size(); ++i) img.data()[i] = static_cast<float>(i % 1000);
  FitsWriteOptions o;
  o.bitpix = 16;
  o.bzero = 32768;
  o.compress = true;
  write_fits(dir.file("c.fits.fz"), img.cview(), {}, o);
  const std::string spec = dir.file("c.fits.fz");
  EXPECT_FALSE(map_fits(spec).has_value());
  const MappedOrRead mr = map_or_read_fits(spec);
  ASSERT_FALSE(mr.is_mapped());
  EXPECT_EQ(0, std::memcmp(mr.read.pixels.data(), img.data(), img.size() * sizeof(float)));
}

// The file's size is checked against the header's data size before mapping: a truncated
// file is an error naming it, from map_fits as from read_fits, not a SIGBUS when the missing
// pages are touched.
TEST(FitsMap, TruncatedFilesAreErrorsNamingTheFileNotSigbus) {
  TempDir dir;
  Image<float> img(300, 200, 5.f);
  write_fits(dir.file("good.fits"), img.cview());
  const auto size = std::filesystem::file_size(dir.file("good.fits"));
  // Cut by one byte (the last page of the mapping would be past the end), by a page and more,
  // and to the header alone.
  for (std::uintmax_t keep : {size - 2880 - 1, size - 4096 - 2880, std::uintmax_t{2880}}) {
    const std::string p = dir.file("cut" + std::to_string(keep) + ".fits");
    std::filesystem::copy_file(dir.file("good.fits"), p);
    std::filesystem::resize_file(p, keep);
    for (int how = 0; how < 2; ++how) {
      try {
        if (how == 0)
          (void)map_fits(p);
        else
          (void)map_or_read_fits(p);
        ADD_FAILURE() << "no error for " << p << " cut to " << keep << " bytes";
      } catch (const FitsError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(p), std::string::npos) << msg;
        EXPECT_NE(msg.find("file truncated"), std::string::npos) << msg;
      }
    }
  }
  // The whole file maps, and every pixel (the last page included) can be read.
  const auto m = map_fits(dir.file("good.fits"));
  ASSERT_TRUE(m.has_value());
  const std::vector<float> px = decode_all(m->pixels());
  EXPECT_EQ(px.back(), 5.f);
}

TEST(FitsMap, MissingFilesAreErrorsNamingTheFile) {
  TempDir dir;
  try {
    (void)map_or_read_fits(dir.file("nope.fits"));
    ADD_FAILURE() << "no error";
  } catch (const FitsError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("nope.fits") + ": file does not exist"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace psfphot::io
