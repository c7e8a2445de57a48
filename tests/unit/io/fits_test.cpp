#include "psfphot/io/fits.hpp"

#include <fitsio.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>

#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

using test::TempDir;

Image<float> ramp(int w, int h, double lo, double hi, bool integer) {
  Image<float> img(w, h);
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double v = u(rng);
      img(x, y) = static_cast<float>(integer ? std::round(v) : v);
    }
  img(0, 0) = static_cast<float>(lo);  // the extremes of the range survive
  img(w - 1, h - 1) = static_cast<float>(integer ? std::round(hi) : hi);
  return img;
}

struct RoundTripCase {
  int bitpix;
  double bscale, bzero;
  double lo, hi;
  bool integer;
  int expect_equiv;
};

class FitsRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(FitsRoundTrip, PixelsAndScalingSurvive) {
  const auto c = GetParam();
  TempDir dir;
  Image<float> img = ramp(37, 23, c.lo, c.hi, c.integer);
  // With a non-trivial BSCALE the stored values are quantised: write values on the grid.
  if (c.bscale != 1.0) {
    for (int y = 0; y < img.height(); ++y)
      for (int x = 0; x < img.width(); ++x)
        img(x, y) =
            static_cast<float>(c.bzero + c.bscale * std::round((img(x, y) - c.bzero) / c.bscale));
  }
  std::string path = dir.file("rt.fits");
  FitsWriteOptions opt;
  opt.bitpix = c.bitpix;
  opt.bscale = c.bscale;
  opt.bzero = c.bzero;
  write_fits(path, img.cview(), {card("EXPTIME", 30.0), card("FILTER", "V")}, opt);
  FitsImage back = read_fits(path);
  EXPECT_EQ(back.pixels.width(), 37);
  EXPECT_EQ(back.pixels.height(), 23);
  EXPECT_EQ(back.bitpix, c.bitpix);
  EXPECT_EQ(back.equiv_bitpix, c.expect_equiv);
  EXPECT_DOUBLE_EQ(back.bzero, c.bzero);
  EXPECT_DOUBLE_EQ(back.bscale, c.bscale);
  EXPECT_DOUBLE_EQ(back.header.exptime_s, 30.0);
  EXPECT_EQ(back.header.filter, "V");
  double maxerr = 0;
  for (int y = 0; y < 23; ++y)
    for (int x = 0; x < 37; ++x)
      maxerr = std::max(maxerr, std::abs(double(back.pixels(x, y)) - img(x, y)));
  // Float pixels hold ~7 digits; scaled integers are exact up to float rounding.
  EXPECT_LE(maxerr, std::max(std::abs(c.hi), std::abs(c.lo)) * 1e-6);
}

INSTANTIATE_TEST_SUITE_P(EveryBitpix, FitsRoundTrip,
                         ::testing::Values(RoundTripCase{8, 1, 0, 0, 255, true, BYTE_IMG},
                                           RoundTripCase{16, 1, 0, -32768, 32767, true, SHORT_IMG},
                                           RoundTripCase{16, 1, 32768, 0, 65535, true,
                                                         USHORT_IMG},  // uint16 camera
                                           RoundTripCase{32, 1, 0, -2e6, 2e6, true, LONG_IMG},
                                           RoundTripCase{-32, 1, 0, -1e3, 1e5, false, FLOAT_IMG},
                                           RoundTripCase{-64, 1, 0, -1e3, 1e5, false, DOUBLE_IMG},
                                           RoundTripCase{16, 2.92273835509, 3713.66692596, 6000,
                                                         9000, false, FLOAT_IMG}));

TEST(Fits, HeaderFactsAreParsed) {
  TempDir dir;
  Image<float> img(8, 8, 100.f);
  std::string path = dir.file("h.fits");
  write_fits(path, img.cview(),
             {card("EXPTIME", 60.0), card("EGAIN", 0.78), card("RDNOISE", 5.0),
              card("SATURATE", 60000.0), card("DATE-OBS", "2012-06-17T01:56:40"),
              card("FILTER", "Filter 2"), card("CTYPE1", "RA---TAN"), card("CRVAL1", 10.5),
              card("CD1_1", -0.0001), card("OBJECT", "test")});
  FitsImage f = read_fits(path);
  const auto& h = f.header;
  EXPECT_DOUBLE_EQ(h.exptime_s, 60.0);
  EXPECT_DOUBLE_EQ(h.gain_e_per_adu, 0.78);  // EGAIN when GAIN is absent
  EXPECT_DOUBLE_EQ(h.read_noise_e, 5.0);
  EXPECT_DOUBLE_EQ(h.saturation_adu, 60000.0);
  EXPECT_EQ(h.date_obs, "2012-06-17T01:56:40");
  // MJD of 2012-06-17 01:56:40 UTC: MJD 56095 at 0h plus 1h56m40s.
  EXPECT_NEAR(h.mjd_obs, 56095.0 + (1 + 56 / 60.0 + 40 / 3600.0) / 24.0, 1e-8);
  EXPECT_EQ(h.filter, "Filter 2");
  EXPECT_EQ(h.wcs.size(), 3u);
  EXPECT_EQ(h.card("OBJECT"), "test");
}

TEST(Fits, MissingKeysAreNaN) {
  TempDir dir;
  Image<float> img(4, 4, 1.f);
  write_fits(dir.file("n.fits"), img.cview());
  FitsImage f = read_fits(dir.file("n.fits"));
  EXPECT_FALSE(f.header.has_exptime());
  EXPECT_FALSE(f.header.has_gain());
  EXPECT_TRUE(std::isnan(f.header.mjd_obs));
}

TEST(Fits, CompressedFilesAreReadTransparently) {
  TempDir dir;
  Image<float> img = ramp(64, 48, 0, 65535, true);
  FitsWriteOptions opt;
  opt.bitpix = 16;
  opt.bzero = 32768;
  opt.compress = true;
  write_fits(dir.file("c.fits.fz"), img.cview(), {card("EXPTIME", 12.0)}, opt);
  FitsImage f = read_fits(dir.file("c.fits.fz"));
  EXPECT_TRUE(f.compressed);
  EXPECT_EQ(f.hdu_number, 1);  // the compressed image lives in the first extension
  EXPECT_DOUBLE_EQ(f.header.exptime_s, 12.0);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) ASSERT_EQ(f.pixels(x, y), img(x, y));
  // Lossless float compression too.
  Image<float> fl = ramp(32, 32, -5, 5, false);
  FitsWriteOptions fo;
  fo.compress = true;
  write_fits(dir.file("f.fits.fz"), fl.cview(), {}, fo);
  FitsImage g = read_fits(dir.file("f.fits.fz"));
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) ASSERT_EQ(g.pixels(x, y), fl(x, y));
}

// A multi-extension file: empty primary, then SCI and ERR image extensions.
std::string write_mef(const TempDir& dir) {
  std::string path = dir.file("mef.fits");
  int status = 0;
  fitsfile* f = nullptr;
  fits_create_file(&f, path.c_str(), &status);
  long ax0[2] = {0, 0};
  fits_create_img(f, 8, 0, ax0, &status);
  for (int e = 0; e < 2; ++e) {
    long ax[2] = {5, 4};
    fits_create_img(f, FLOAT_IMG, 2, ax, &status);
    const char* names[] = {"SCI", "ERR"};
    char* nm = const_cast<char*>(names[e]);
    fits_write_key(f, TSTRING, "EXTNAME", nm, nullptr, &status);
    std::vector<float> px(20, e == 0 ? 10.f : 2.f);
    long fp[2] = {1, 1};
    fits_write_pix(f, TFLOAT, fp, 20, px.data(), &status);
  }
  fits_close_file(f, &status);
  EXPECT_EQ(status, 0);
  return path;
}

TEST(Fits, ChoosesHduByNumberOrName) {
  TempDir dir;
  std::string path = write_mef(dir);
  FitsImage first = read_fits(path);  // first HDU that holds an image
  EXPECT_EQ(first.hdu_number, 1);
  EXPECT_EQ(first.pixels(0, 0), 10.f);
  FitsImage byname = read_fits(path + "[ERR]");
  EXPECT_EQ(byname.hdu_number, 2);
  EXPECT_EQ(byname.pixels(4, 3), 2.f);
  FitsImage bynum = read_fits(path + "[1]");
  EXPECT_EQ(bynum.pixels(0, 0), 10.f);
  EXPECT_THROW(read_fits(path + "[NOPE]"), FitsError);
}

// read_fits and read_fits_mapped (the masters of `psfphot frame`) fail alike.
void expect_error(const std::string& path, const std::string& needle) {
  for (bool mapped : {false, true}) {
    try {
      if (mapped)
        read_fits_mapped(path);
      else
        read_fits(path);
      ADD_FAILURE() << "no error for " << path << (mapped ? " (mapped)" : "");
    } catch (const FitsError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;    // names the file
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;  // says what is wrong
    }
  }
}

TEST(Fits, BadFilesGiveClearErrors) {
  TempDir dir;
  expect_error(dir.file("missing.fits"), "does not exist");
  { std::ofstream(dir.file("text.fits")) << "this is not a FITS file at all\n"; }
  expect_error(dir.file("text.fits"), "cannot open as a FITS image");
  { std::ofstream(dir.file("empty.fits")); }
  expect_error(dir.file("empty.fits"), "empty");
  expect_error(dir.path().string(), "directory");
  // Truncate a good file: header only, then half the data.
  Image<float> img(100, 100, 5.f);
  write_fits(dir.file("good.fits"), img.cview());
  auto size = std::filesystem::file_size(dir.file("good.fits"));
  std::filesystem::copy_file(dir.file("good.fits"), dir.file("half.fits"));
  std::filesystem::resize_file(dir.file("half.fits"), size / 2);
  expect_error(dir.file("half.fits"), "truncated");
  std::filesystem::copy_file(dir.file("good.fits"), dir.file("hdr.fits"));
  std::filesystem::resize_file(dir.file("hdr.fits"), 2880);
  expect_error(dir.file("hdr.fits"), "");
}

TEST(Fits, CubesAndVectorsAreRefused) {
  TempDir dir;
  std::string path = dir.file("cube.fits");
  int status = 0;
  fitsfile* f = nullptr;
  fits_create_file(&f, path.c_str(), &status);
  long ax[3] = {4, 4, 3};
  fits_create_img(f, FLOAT_IMG, 3, ax, &status);
  std::vector<float> px(48, 1.f);
  long fp[3] = {1, 1, 1};
  fits_write_pix(f, TFLOAT, fp, 48, px.data(), &status);
  fits_close_file(f, &status);
  expect_error(path, "expected a 2-D image but NAXIS=3 (4x4x3)");
  std::string vec = dir.file("vec.fits");
  f = nullptr;
  fits_create_file(&f, vec.c_str(), &status);
  long ax1[1] = {10};
  fits_create_img(f, FLOAT_IMG, 1, ax1, &status);
  std::vector<float> p1(10, 1.f);
  long fp1[1] = {1};
  fits_write_pix(f, TFLOAT, fp1, 10, p1.data(), &status);
  fits_close_file(f, &status);
  expect_error(vec, "NAXIS=1");
}

TEST(Fits, WriteRefusesToOverwriteAndReportsBadFolders) {
  TempDir dir;
  Image<float> img(4, 4, 1.f);
  write_fits(dir.file("a.fits"), img.cview());
  EXPECT_THROW(write_fits(dir.file("a.fits"), img.cview()), FitsError);
  FitsWriteOptions o;
  o.overwrite = true;
  EXPECT_NO_THROW(write_fits(dir.file("a.fits"), img.cview(), {}, o));
  try {
    write_fits(dir.file("nofolder/a.fits"), img.cview());
    ADD_FAILURE();
  } catch (const FitsError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
}

TEST(Fits, HeaderIsCarriedOver) {
  TempDir dir;
  Image<float> img(4, 4, 1.f);
  HeaderCard hist{"HISTORY", "", "dark subtracted"};
  write_fits(dir.file("in.fits"), img.cview(),
             {card("EXPTIME", 45.0), card("OBJECT", "M 13"), hist});
  FitsImage in = read_fits(dir.file("in.fits"));
  write_fits(dir.file("out.fits"), in.pixels.cview(), in.header.cards);
  FitsImage out = read_fits(dir.file("out.fits"));
  EXPECT_DOUBLE_EQ(out.header.exptime_s, 45.0);
  EXPECT_EQ(out.header.card("OBJECT"), "M 13");
  bool has_hist = false;
  for (const auto& c : out.header.cards)
    has_hist |= c.key == "HISTORY" && c.comment == "dark subtracted";
  EXPECT_TRUE(has_hist);
}

}  // namespace
}  // namespace psfphot::io
