// Reads every FITS file under ../shared/data and checks shape and pixel statistics
// against the validation tables printed in those folders' READMEs (parsed here, so the
// expected numbers come from the READMEs, not from this file). Also runs
// `psfphot fitsinfo --json` on each and checks it agrees.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "psfphot/algo/stats.hpp"
#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot {
namespace {

struct ReadmeRow {
  std::filesystem::path file;
  int naxis1 = 0, naxis2 = 0;
  int bitpix = 0;
  std::string min, median, max;  // as printed
};

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::vector<std::string> split_row(const std::string& line) {
  std::vector<std::string> cols;
  std::stringstream ss(line);
  std::string c;
  std::getline(ss, c, '|');  // before the first bar
  while (std::getline(ss, c, '|')) cols.push_back(trim(c));
  if (!cols.empty() && cols.back().empty()) cols.pop_back();
  return cols;
}

std::vector<ReadmeRow> parse_readme(const std::filesystem::path& folder) {
  std::ifstream in(folder / "README.md");
  std::vector<ReadmeRow> rows;
  std::map<std::string, size_t> col;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| file |", 0) == 0) {
      auto h = split_row(line);
      col.clear();
      for (size_t i = 0; i < h.size(); ++i) col[h[i]] = i;
      continue;
    }
    if (col.empty() || line.rfind("|", 0) != 0 || line.rfind("|---", 0) == 0) {
      if (line.rfind("|", 0) != 0) col.clear();
      continue;
    }
    auto c = split_row(line);
    if (!col.count("shape (NAXIS2, NAXIS1)") || c.size() < col.size()) continue;
    ReadmeRow r;
    r.file = folder / c[col["file"]];
    std::smatch m;
    std::string shape = c[col["shape (NAXIS2, NAXIS1)"]];
    if (!std::regex_search(shape, m, std::regex(R"(\((\d+),\s*(\d+)\))"))) continue;
    r.naxis2 = std::stoi(m[1]);
    r.naxis1 = std::stoi(m[2]);
    r.bitpix = std::stoi(c[col["BITPIX (disk)"]]);
    r.min = c[col["min"]];
    r.median = c[col["median"]];
    r.max = c[col["max"]];
    rows.push_back(r);
  }
  return rows;
}

// Tolerance: half a unit in the last printed digit (the README rounds), plus float
// rounding of the value itself.
void expect_printed(double actual, const std::string& printed, const std::string& what) {
  double expected = std::stod(printed);
  auto dot = printed.find('.');
  int decimals = dot == std::string::npos ? 0 : static_cast<int>(printed.size() - dot - 1);
  double tol = 0.5 * std::pow(10.0, -decimals) + 1e-6 * std::abs(expected);
  EXPECT_NEAR(actual, expected, tol) << what;
}

TEST(SharedData, EveryReadmeListedFitsFileMatchesItsReadme) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::shared_data())) {
    if (!entry.is_directory()) continue;
    for (const auto& r : parse_readme(entry.path())) {
      SCOPED_TRACE(r.file.string());
      io::FitsImage img = io::read_fits(r.file.string());
      EXPECT_EQ(img.pixels.width(), r.naxis1);
      EXPECT_EQ(img.pixels.height(), r.naxis2);
      EXPECT_EQ(img.bitpix, r.bitpix);
      ImageStats s = image_stats(img.pixels.cview());
      expect_printed(s.min, r.min, "min");
      expect_printed(s.median, r.median, "median");
      expect_printed(s.max, r.max, "max");
      ++checked;
    }
  }
  // 50 UMO + 30 MicroObs + 3 SEP + 1 GLIMPSE + 1 SAAO rows.
  EXPECT_GE(checked, 85);
}

TEST(SharedData, EveryFitsFileUnderSharedDataIsReadable) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  int n = 0;
  std::regex fits_name(R"(.*\.(fits|fit|fts|FITS|FIT)(\.fz)?$)");
  for (const auto& e : std::filesystem::recursive_directory_iterator(test::shared_data())) {
    if (!e.is_regular_file() || !std::regex_match(e.path().filename().string(), fits_name))
      continue;
    SCOPED_TRACE(e.path().string());
    EXPECT_NO_THROW(io::read_fits(e.path().string()));
    ++n;
  }
  EXPECT_GE(n, 85);
}

TEST(SharedData, FitsinfoCommandAgreesWithReadmeForEveryFile) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::shared_data())) {
    if (!entry.is_directory()) continue;
    const auto rows = parse_readme(entry.path());
    if (rows.empty()) continue;
    // One fitsinfo call per folder, one JSON line per file, in argument order.
    std::string cmd = test::psfphot_exe() + " fitsinfo --json";
    for (const auto& r : rows) cmd += " '" + r.file.string() + "'";
    auto res = test::run_command(cmd);
    ASSERT_EQ(res.exit_code, 0) << res.out;
    std::istringstream lines(res.out);
    std::string line;
    for (const auto& r : rows) {
      ASSERT_TRUE(std::getline(lines, line)) << r.file;
      SCOPED_TRACE(r.file.string());
      std::smatch m;
      ASSERT_TRUE(std::regex_search(
          line, m, std::regex(R"("width": (\d+), "height": (\d+), "bitpix": (-?\d+))")));
      EXPECT_EQ(std::stoi(m[1]), r.naxis1);
      EXPECT_EQ(std::stoi(m[2]), r.naxis2);
      EXPECT_EQ(std::stoi(m[3]), r.bitpix);
      for (const auto& [key, printed] :
           {std::pair{"min", r.min}, {"median", r.median}, {"max", r.max}}) {
        ASSERT_TRUE(std::regex_search(line, m,
                                      std::regex(std::string("\"") + key + R"(": ([-0-9.eE+]+))")));
        expect_printed(std::stod(m[1]), printed, key);
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 85);
}

TEST(SharedData, UmoHeaderFacts) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  auto f =
      io::read_fits((test::shared_data() / "umo_tres1_20120616/science/tres1-040.fit").string());
  EXPECT_DOUBLE_EQ(f.header.exptime_s, 60.0);
  EXPECT_NEAR(f.header.gain_e_per_adu, 0.78, 1e-6);  // EGAIN (written as float32), no GAIN
  EXPECT_FALSE(f.header.has_saturation());
  EXPECT_EQ(f.header.date_obs, "2012-06-17T02:17:11");
  EXPECT_EQ(f.header.filter, "Filter 2");
  EXPECT_DOUBLE_EQ(f.bzero, 32768.0);
  auto s =
      io::read_fits((test::shared_data() / "saao1m_raw_overscan_frame/a8280271.fits").string());
  EXPECT_DOUBLE_EQ(s.header.gain_e_per_adu, 1.9);
  EXPECT_DOUBLE_EQ(s.header.read_noise_e, 5.0);
  EXPECT_DOUBLE_EQ(s.header.exptime_s, 150.04);
  auto g = io::read_fits(
      (test::shared_data() / "glimpse_irac2_crowded_field/spitzer_example_image.fits").string());
  EXPECT_GE(g.header.wcs.size(), 6u);  // CTYPE/CRVAL/CRPIX/CD kept
}

TEST(Cli, FitsinfoReportsMissingFileClearly) {
  test::TempDir dir;
  auto res = test::run_command(test::psfphot_exe() + " fitsinfo " + dir.file("nope.fits"));
  EXPECT_NE(res.exit_code, 0);
  EXPECT_NE(res.out.find("nope.fits: file does not exist"), std::string::npos) << res.out;
  auto v = test::run_command(test::psfphot_exe() + " --version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("psfphot 0."), std::string::npos) << v.out;
}

}  // namespace
}  // namespace psfphot
