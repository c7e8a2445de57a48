// A real raw CCD frame with an overscan strip (SAAO 1.0m, ../shared/data/
// saao1m_raw_overscan_frame, BIASSEC [4:13,1:520], TRIMSEC [17:528,1:520]): `psfphot frame`
// with configs/saao.toml subtracts the strip's median from every pixel and masks what is not
// sky. Skips when the folder is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "psfphot/core/image.hpp"
#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot {
namespace {

std::string saao_frame() {
  return (test::shared_data() / "saao1m_raw_overscan_frame/a8280271.fits").string();
}

// Centroids (finite ones) of a stars CSV.
std::vector<std::pair<double, double>> centroids(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header: star_id, peak_x, peak_y, centroid_x (3), centroid_y (4)
  std::vector<std::pair<double, double>> out;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) f.push_back(c);
    const double x = std::stod(f.at(3)), y = std::stod(f.at(4));
    if (std::isfinite(x) && std::isfinite(y)) out.emplace_back(x, y);
  }
  return out;
}

// The number after `label` in psfphot frame's summary output, NaN when absent.
double reported(const std::string& out, const std::string& label) {
  const auto k = out.find(label);
  return k == std::string::npos ? std::nan("") : std::atof(out.c_str() + k + label.size());
}

// Rows of a stars CSV whose peak (always finite) lies at y >= y_min.
int peaks_from_row(const std::string& path, int y_min) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  int n = 0;
  while (std::getline(in, line)) {
    std::stringstream ls(line);
    std::string id, px, py;
    std::getline(ls, id, ',');
    std::getline(ls, px, ',');
    std::getline(ls, py, ',');
    n += std::stoi(py) >= y_min;
  }
  return n;
}

TEST(OverscanReal, SaaoFrameLosesItsBiasAndKeepsStarsInsideTheTrimSection) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  test::TempDir tmp;
  const std::string cal = tmp.file("cal.fits"), stars = tmp.file("stars.csv");
  const auto r = test::run_command(test::psfphot_exe() + " frame " + saao_frame() +
                                   " --config " PSFPHOT_SOURCE_DIR "/configs/saao.toml -o " +
                                   stars + " --write-calibrated " + cal);
  ASSERT_EQ(r.exit_code, 0) << r.out;

  // The bias, found independently: the median of the BIASSEC pixels (columns 4..13 1-based,
  // every row) of the raw frame. The README of the data folder says "about 214 ADU".
  const io::FitsImage raw = io::read_fits(saao_frame());
  ASSERT_EQ(raw.pixels.width(), 536);
  ASSERT_EQ(raw.pixels.height(), 520);
  std::vector<float> strip;
  for (int y = 0; y < 520; ++y)
    for (int x = 3; x < 13; ++x) strip.push_back(raw.pixels(x, y));
  std::sort(strip.begin(), strip.end());
  const float bias = 0.5f * (strip[strip.size() / 2 - 1] + strip[strip.size() / 2]);
  EXPECT_NEAR(bias, 214.0, 3.0);

  // No dark, no flat: every calibrated pixel is raw - bias, exactly (the subtraction is one
  // float operation), inside and outside the trim section alike.
  const io::FitsImage c = io::read_fits(cal);
  ASSERT_EQ(c.pixels.width(), 536);
  std::size_t differ = 0;
  for (int y = 0; y < 520; ++y)
    for (int x = 0; x < 536; ++x) differ += c.pixels(x, y) != raw.pixels(x, y) - bias;
  EXPECT_EQ(differ, 0u);

  // Stars only inside the trim section of the config, [17:528,1:512], i.e. 0-based x in
  // [16, 528), y in [0, 512), and a handful of them (a sparse field: 9 measured).
  const auto xy = centroids(stars);
  ASSERT_GE(xy.size(), 5u);
  for (const auto& [x, y] : xy) {
    EXPECT_GE(x, 16.0);
    EXPECT_LT(x, 528.0);
    EXPECT_LT(y, 512.0);
  }
  EXPECT_EQ(peaks_from_row(stars, 512), 0);
  // The sky the frame reports is the raw sky less the bias: ~300 - 214 ADU (86.5 measured).
  EXPECT_NEAR(reported(r.out, "sky "), 86.0, 3.0) << r.out;
  EXPECT_NEAR(reported(r.out, "overscan bias "), bias, 1e-3) << r.out;
}

// With the header's sections only (TRIMSEC keeps rows 513-520, which hold no light), the
// bias-level rows at the top are searched too: many spurious detections line the step, none
// of which survive the config's trim section. Without any correction, the sky is the raw one.
TEST(OverscanReal, HeaderSectionsAndNoCorrectionBehaveAsDocumented) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  test::TempDir tmp;
  const auto hdr = test::run_command(test::psfphot_exe() + " frame " + saao_frame() + " -o " +
                                     tmp.file("hdr.csv"));
  ASSERT_EQ(hdr.exit_code, 0) << hdr.out;
  for (const auto& [x, y] : centroids(tmp.file("hdr.csv"))) {
    EXPECT_GE(x, 16.0);
    EXPECT_LT(x, 528.0);
  }
  // Measured: 73 of 119 rows have their peak in the 8 bias-level rows (rows 512-519), which
  // the header's TRIMSEC keeps (printed; configs/saao.toml trims them, the test above).
  const int in_step_rows = peaks_from_row(tmp.file("hdr.csv"), 512);
  std::cout << "header sections: " << in_step_rows << " peaks in the bias rows; "
            << hdr.out.substr(0, hdr.out.find('\n')) << "\n";
  const auto none = test::run_command(
      test::psfphot_exe() + " frame " + saao_frame() + " -o " + tmp.file("none.csv") +
      " --set calibration.overscan=none --set calibration.trim_section=none");
  ASSERT_EQ(none.exit_code, 0) << none.out;
  EXPECT_NEAR(reported(none.out, "sky "), 300.0, 3.0) << none.out;
  EXPECT_EQ(none.out.find("overscan bias"), std::string::npos) << none.out;
  // A section that does not fit the frame fails it, naming the key and the problem.
  const auto bad =
      test::run_command(test::psfphot_exe() + " frame " + saao_frame() + " -o " +
                        tmp.file("bad.csv") + " --set 'calibration.bias_section=[4:13,1:600]'");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("calibration.bias_section section '[4:13,1:600]': y reaches 600 but "
                         "the frame has 520"),
            std::string::npos)
      << bad.out;
}

// `psfphot master` corrects each raw frame by its own strip (--overscan, default level): three
// darks whose bias differs by 40 ADU combine into the dark current alone; with --overscan none
// the biases stay in (their median).
TEST(OverscanReal, MasterCommandTakesEachInputsBiasOut) {
  test::TempDir tmp;
  std::vector<std::string> paths;
  for (int i = 0; i < 3; ++i) {
    Image<float> img(40, 30);
    for (int y = 0; y < 30; ++y)
      for (int x = 0; x < 40; ++x)
        img(x, y) = static_cast<float>(500 + 40 * i + (x < 36 ? 10 + 0.5 * x : 0.0));
    paths.push_back(tmp.file("d" + std::to_string(i) + ".fits"));
    io::write_fits(paths.back(), img.cview(),
                   {io::card("EXPTIME", 5.0), io::card("BIASSEC", "[37:40,1:30]"),
                    io::card("TRIMSEC", "[1:36,1:30]")});
  }
  std::string inputs;
  for (const auto& p : paths) inputs += " " + p;
  for (const char* mode : {"level", "none"}) {
    const std::string out = tmp.file(std::string("m_") + mode + ".fits");
    const auto r = test::run_command(test::psfphot_exe() + " master dark" + inputs + " -o " + out +
                                     " --method median --overscan " + mode);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const io::FitsImage m = io::read_fits(out);
    const double bias = std::string(mode) == "none" ? 540.0 : 0.0;
    EXPECT_FLOAT_EQ(m.pixels(7, 3), static_cast<float>(bias + 10 + 3.5)) << mode;
    EXPECT_FLOAT_EQ(m.pixels(38, 3), static_cast<float>(bias)) << mode;
    EXPECT_EQ(m.header.card("OVERSCAN"), mode);
  }
  // The card says what was done: inputs without a strip give "none", a mix "mixed".
  std::vector<std::string> plain;
  for (int i = 0; i < 2; ++i) {
    Image<float> img(40, 30, 500.f);
    plain.push_back(tmp.file("p" + std::to_string(i) + ".fits"));
    io::write_fits(plain.back(), img.cview(), {io::card("EXPTIME", 5.0)});
  }
  for (const auto& [files, card] :
       {std::pair<std::string, std::string>{" " + plain[0] + " " + plain[1], "none"},
        {" " + plain[0] + " " + paths[0], "mixed"}}) {
    const std::string out = tmp.file("card_" + card + ".fits");
    const auto r = test::run_command(test::psfphot_exe() + " master dark" + files + " -o " + out);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(io::read_fits_header(out).header.card("OVERSCAN"), card);
  }
  const auto bad = test::run_command(test::psfphot_exe() + " master dark" + inputs + " -o " +
                                     tmp.file("x.fits") + " --bias-section '[1:2;3:4]'");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("one comma"), std::string::npos) << bad.out;
}

// A flat numeric field of `psfphot score --json` (first occurrence after `anchor`).
double json_field(const std::string& text, const std::string& anchor, const std::string& key) {
  const auto a = text.find(anchor);
  const auto k = text.find("\"" + key + "\":", a == std::string::npos ? 0 : a);
  if (k == std::string::npos) return std::nan("");
  return std::stod(text.substr(text.find(':', k) + 1));
}

struct Measured {
  double x, y, flux, err;
};
std::vector<Measured> query_stars(const std::string& catalogue) {
  const auto q = test::run_command(test::psfphot_exe() + " query " + catalogue +
                                   " --format csv --columns centroid_x,centroid_y,psf_flux,"
                                   "psf_flux_err");
  EXPECT_EQ(q.exit_code, 0) << q.out;
  std::vector<Measured> out;
  std::stringstream in(q.out);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    Measured m{};
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf", &m.x, &m.y, &m.flux, &m.err) == 4 &&
        std::isfinite(m.x) && std::isfinite(m.flux) && m.err > 0)
      out.push_back(m);
  }
  return out;
}

// The simulator's overscan (--overscan: columns of bias and read noise at the right edge,
// each exposure's bias offset by up to +-20 ADU) through the main job: a night with it and
// the same night without it (same seed: the same light, other biases) give the same stars,
// their fluxes equal to a small fraction of their errors (what differs is the rounding of
// the raw values and the background meshes by the strip), and the same scores.
TEST(OverscanReal, SimulatedNightWithOverscanMeasuresLikeOneWithout) {
  test::TempDir tmp;
  const std::string exe = test::psfphot_exe();
  std::string score[2];
  std::vector<Measured> stars[2];
  for (int k = 0; k < 2; ++k) {
    const std::string d = tmp.file(k ? "plain" : "overscan");
    auto r = test::run_command(exe + " simulate --out " + d +
                               " --frames 1 --size 1024 --stars 1200 --seed 7 -q" +
                               (k ? "" : " --overscan 24"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    if (k == 0) {
      const io::FitsImage f = io::read_fits_header(d + "/science/sci_0000.fits");
      EXPECT_EQ(f.header.card("BIASSEC"), "[1025:1048,1:1024]");
      EXPECT_EQ(f.header.card("TRIMSEC"), "[1:1024,1:1024]");
    }
    r = test::run_command(exe + " run " + d + "/night.toml -q -o " + d + "/cat.h5");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = test::run_command(exe + " score " + d + "/cat.h5 " + d + "/truth/sci_0000.csv --json -");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    score[k] = r.out;
    stars[k] = query_stars(d + "/cat.h5");
  }
  // Measured: 478 stars at the default 8.5-sigma threshold (714 and 709 at 5 sigma, 703 within
  // 0.5 px of each other; |dflux| / err median 0.08, 95th percentile 0.31: a few saturated
  // stars clip differently with the offset bias).
  ASSERT_GT(stars[0].size(), 400u);
  std::vector<double> z;
  for (const Measured& a : stars[0]) {
    EXPECT_LT(a.x, 1024.0);  // nothing found in the overscan columns
    for (const Measured& b : stars[1])
      if (std::hypot(a.x - b.x, a.y - b.y) < 0.5) {
        z.push_back(std::abs(a.flux - b.flux) / b.err);
        break;
      }
  }
  EXPECT_GT(z.size(), 0.97 * static_cast<double>(stars[1].size()));
  std::sort(z.begin(), z.end());
  EXPECT_LT(z[z.size() / 2], 0.2);
  EXPECT_LT(z[z.size() * 95 / 100], 0.6);
  for (const char* key : {"completeness_clean", "flux_ratio_median"}) {
    const double a = json_field(score[0], "\"headline\"", key);
    const double b = json_field(score[1], "\"headline\"", key);
    EXPECT_NEAR(a, b, 0.003) << key;
  }
  EXPECT_GE(json_field(score[0], "\"headline\"", "completeness_clean"), 0.995);
}

}  // namespace
}  // namespace psfphot
