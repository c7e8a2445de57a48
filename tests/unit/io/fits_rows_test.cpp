#include "psfphot/io/fits_rows.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

using test::TempDir;

// A camera-like frame: uint16 stored as BITPIX 16 with BZERO 32768.
Image<float> camera_frame(int w, int h, unsigned seed) {
  Image<float> img(w, h);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, 65535);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img(x, y) = static_cast<float>(u(rng));
  return img;
}

std::string write_camera(const TempDir& dir, const std::string& name, const Image<float>& img) {
  FitsWriteOptions opt;
  opt.bitpix = 16;
  opt.bzero = 32768;
  const std::string path = dir.file(name);
  write_fits(path, img.cview(), {card("EXPTIME", 12.5)}, opt);
  return path;
}

TEST(FitsRowReader, BlocksOfRowsEqualTheWholeImage) {
  TempDir dir;
  const Image<float> img = camera_frame(37, 150, 3);
  const std::string path = write_camera(dir, "cam.fits", img);
  FitsRowReader r(path);
  EXPECT_EQ(r.width(), 37);
  EXPECT_EQ(r.height(), 150);
  EXPECT_DOUBLE_EQ(r.info().header.exptime_s, 12.5);
  // Blocks of 64 rows (150 is not a multiple), read out of order.
  std::vector<float> rows(static_cast<std::size_t>(37) * 64);
  for (int y0 : {128, 0, 64}) {
    const int n = std::min(64, 150 - y0);
    r.read_rows(y0, n, rows.data());
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < 37; ++x)
        ASSERT_EQ(rows[static_cast<std::size_t>(y) * 37 + x], img(x, y0 + y)) << x << "," << y0 + y;
  }
}

TEST(FitsRowReader, RowsOutsideTheImageAreAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = write_camera(dir, "small.fits", camera_frame(8, 10, 1));
  FitsRowReader r(path);
  std::vector<float> buf(8 * 10);
  EXPECT_NO_THROW(r.read_rows(9, 1, buf.data()));
  try {
    r.read_rows(5, 6, buf.data());
    FAIL() << "expected FitsError";
  } catch (const FitsError& e) {
    EXPECT_NE(std::string(e.what()).find("small.fits"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("outside the image"), std::string::npos) << e.what();
  }
}

TEST(FitsRowReader, TruncatedFileIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = write_camera(dir, "cut.fits", camera_frame(200, 200, 2));
  // Keep the header and a third of the data.
  std::filesystem::resize_file(path, 2880 + 200 * 200 * 2 / 3);
  try {
    FitsRowReader r(path);
    std::vector<float> buf(200 * 200);
    r.read_rows(0, 200, buf.data());
    FAIL() << "expected FitsError";
  } catch (const FitsError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.fits"), std::string::npos) << e.what();
  }
}

TEST(FitsRowReader, MissingFileIsAnErrorNamingTheFile) {
  TempDir dir;
  try {
    FitsRowReader r(dir.file("nope.fits"));
    FAIL() << "expected FitsError";
  } catch (const FitsError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.fits"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace psfphot::io
