#include "psfphot/io/star_csv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

// The row as the documented printf format writes it (the reference the writer must match
// byte for byte, whatever it formats with).
std::string printf_row(const Star& s) {
  char buf[1024];  // %.8f of 1e300 is 309 characters
  std::snprintf(buf, sizeof buf,
                "%d,%d,%d,%.10g,%.10g,%.4g,%.4g,%.6g,%.6g,%.10g,%.6g,%.6g,%.8g,%.6g,%u,%.8f,%.8f",
                s.star_id, s.peak_x, s.peak_y, s.centroid_x, s.centroid_y, s.centroid_err_x,
                s.centroid_err_y, s.width_x, s.width_y, s.psf_flux, s.psf_flux_err, s.snr,
                s.background, s.background_rms, s.flags, s.ra_deg, s.dec_deg);
  return buf;
}

TEST(StarCsv, RowsArePrintfsBytesInStarOrder) {
  // Enough stars for several of the writer's blocks, with every special value class.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const double specials[] = {
      nan,  -nan, inf,  -inf,         0.0,  -0.0, 1e-300, 5e-324,  1e300, 0.1,   123456.5,
      1e10, 1e-5, -2.5, 9.9999999995, 1e16, 1e-4, 0.5,    99999.5, 1e-10, 3.0e7, 2047.000000001};
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-10, 4100);
  std::vector<Star> stars;
  for (int i = 0; i < 1300; ++i) {
    Star s{};
    s.star_id = i;
    s.peak_x = static_cast<std::int32_t>(rng() % 4096) - (i == 7 ? 5000 : 0);
    s.peak_y = static_cast<std::int32_t>(rng() % 4096);
    s.flags = i == 11 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(rng() % 1024);
    double* v[] = {&s.centroid_x, &s.centroid_y, &s.centroid_err_x, &s.centroid_err_y,
                   &s.width_x,    &s.width_y,    &s.psf_flux,       &s.psf_flux_err,
                   &s.snr,        &s.background, &s.background_rms, &s.ra_deg,
                   &s.dec_deg};
    for (std::size_t k = 0; k < std::size(v); ++k)
      *v[k] = (i + k) % 5 == 0 ? specials[(i * 7 + k) % std::size(specials)] : u(rng);
    stars.push_back(s);
  }
  test::TempDir dir;
  const std::string path = dir.file("stars.csv");
  write_stars_csv(path, stars);
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, kStarCsvHeader);
  std::size_t row = 0, differ = 0, nan_rows = 0;
  while (std::getline(in, line)) {
    ASSERT_LT(row, stars.size());
    const std::string want = printf_row(stars[row]);
    if (line != want && ++differ <= 3)
      ADD_FAILURE() << "row " << row << ":\n " << line << "\n " << want;
    nan_rows += want.find("nan") != std::string::npos;
    ++row;
  }
  EXPECT_EQ(row, stars.size());
  EXPECT_EQ(differ, 0u);
  EXPECT_GT(nan_rows, 0u);
}

TEST(StarCsv, UnwritableFolderIsAnErrorNamingTheFile) {
  test::TempDir dir;
  const std::string path = dir.file("no/such/folder/stars.csv");
  try {
    write_stars_csv(path, {});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace psfphot::io
