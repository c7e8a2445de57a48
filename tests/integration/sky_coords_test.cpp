// Sky coordinates (ra_deg, dec_deg) through the real `psfphot frame`: on the Spitzer GLIMPSE
// mosaic (a Galactic CAR WCS, converted to FK5 J2000) against the GLIMPSE point-source
// catalogue's positions, and on synthetic frames with a rotated TAN WCS, without a WCS and
// with a broken one. The expected positions were computed once with astropy 5.2.1 (recipes
// at each table) and pasted here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot {
namespace {

constexpr double kD2r = M_PI / 180;

// Angular separation, arcsec (haversine: exact for the sub-arcsecond distances here).
double sep_arcsec(double ra1, double dec1, double ra2, double dec2) {
  const double s1 = std::sin((dec2 - dec1) * kD2r / 2), s2 = std::sin((ra2 - ra1) * kD2r / 2);
  const double h = s1 * s1 + std::cos(dec1 * kD2r) * std::cos(dec2 * kD2r) * s2 * s2;
  return 2 * std::asin(std::sqrt(h)) / kD2r * 3600;
}

struct Table {
  std::vector<std::string> names;
  std::map<std::string, std::vector<double>> col;
  std::size_t rows = 0;
};

Table read_csv(const std::string& path) {
  Table t;
  std::ifstream in(path);
  std::string line, cell;
  std::getline(in, line);
  for (std::stringstream hs(line); std::getline(hs, cell, ',');) t.names.push_back(cell);
  while (std::getline(in, line)) {
    std::vector<std::string> c;
    for (std::stringstream ls(line); std::getline(ls, cell, ',');) c.push_back(cell);
    EXPECT_EQ(c.size(), t.names.size()) << line;
    if (c.size() != t.names.size()) continue;
    for (std::size_t i = 0; i < c.size(); ++i) t.col[t.names[i]].push_back(std::stod(c[i]));
    ++t.rows;
  }
  return t;
}

test::CommandResult run_frame(const std::string& image, const std::string& csv,
                              const std::string& extra = "") {
  return test::run_command(test::psfphot_exe() + " frame '" + image + "' -o '" + csv + "' " +
                           extra);
}

// Every star with a finite centroid has a finite sky position, the others NaN; the two
// sky columns come last (after flags), so readers indexing the older columns keep working.
void expect_sky_columns(const Table& t, bool finite) {
  ASSERT_GE(t.names.size(), 3u);
  EXPECT_EQ(t.names[t.names.size() - 3], "flags");
  EXPECT_EQ(t.names[t.names.size() - 2], "ra_deg");
  EXPECT_EQ(t.names.back(), "dec_deg");
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < t.rows; ++i) {
    const bool has_centroid =
        std::isfinite(t.col.at("centroid_x")[i]) && std::isfinite(t.col.at("centroid_y")[i]);
    const bool has_sky =
        std::isfinite(t.col.at("ra_deg")[i]) && std::isfinite(t.col.at("dec_deg")[i]);
    wrong += has_sky != (finite && has_centroid);
  }
  EXPECT_EQ(wrong, 0u);
}

TEST(SkyCoords, GlimpseStarsLandOnTheCataloguePositions) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  const auto dir = test::shared_data() / "glimpse_irac2_crowded_field";
  const std::string image = (dir / "spitzer_example_image.fits").string();
  test::TempDir tmp;
  const auto r = run_frame(image, tmp.file("stars.csv"),
                           "--config '" PSFPHOT_SOURCE_DIR "/configs/glimpse.toml'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("no sky coordinates"), std::string::npos) << r.out;
  const Table t = read_csv(tmp.file("stars.csv"));
  ASSERT_GT(t.rows, 1000u);
  expect_sky_columns(t, true);

  // The 10 brightest GLIMPSE stars (spitzer_example_catalog.xml, l and b in deg), converted
  // with astropy:
  //   SkyCoord(l*u.deg, b*u.deg, frame='galactic').transform_to(FK5(equinox='J2000'))
  // (the catalogue read with astropy.io.votable.parse_single_table, sorted by -f4_5).
  struct Cat {
    double l, b, ra, dec;
  };
  const Cat cat[] = {
      {18.195224, 0.266825, 275.77830578384794, -12.95977151735065},  // 446 mJy
      {18.212413, 0.170219, 275.87414282702514, -12.989878753970576},
      {18.236739, 0.219422, 275.84124158043375, -12.945328782475723},
      {18.087661, 0.225408, 275.7640718932106, -13.074194539482804},
      {18.126185, 0.165633, 275.8368169272046, -13.06819748754158},
      {18.376408, 0.183389, 275.9410355816358, -12.83882769661229},
      {18.300551, 0.255514, 275.83922183911403, -12.872044009438756},
      {18.37051, 0.164739, 275.9551028829966, -12.852774065704383},
      {18.342883, 0.154483, 275.951124973148, -12.881986934846154},
      {18.048966, 0.198083, 275.7702159026431, -13.121185260264097},  // 384 mJy
  };
  const auto& ra = t.col.at("ra_deg");
  const auto& dec = t.col.at("dec_deg");
  std::vector<double> seps;
  for (const Cat& c : cat) {
    double best = INFINITY;
    for (std::size_t i = 0; i < t.rows; ++i)
      if (std::isfinite(ra[i])) best = std::min(best, sep_arcsec(ra[i], dec[i], c.ra, c.dec));
    seps.push_back(best);
    std::cout << "GLIMPSE l=" << c.l << " b=" << c.b << ": nearest psfphot star " << best << "\"\n";
  }
  std::sort(seps.begin(), seps.end());
  const double median = 0.5 * (seps[4] + seps[5]);
  std::cout << "median separation " << median << "\", max " << seps.back() << "\"\n";
  // Glimpse.CrowdedFieldMatchesGlimpseCatalogue measures the catalogue (+0.10, +0.31) px =
  // 0.39" from the mosaic's WCS, with 0.08 px (0.1") scatter about that shift: every star
  // within 1" (a 1-based pixel slip alone is 1.7", swapped or mis-signed axes or an
  // unconverted (l, b) are degrees), and the median within 0.6".
  EXPECT_LE(seps.back(), 1.0);
  EXPECT_LE(median, 0.6);
}

// A 256 x 256 synthetic frame: sky 100 ADU with Gaussian noise of 3 ADU and four bright
// Gaussian stars (sigma 1.5 px, 2e5 ADU: centroids good to ~0.002 px).
struct Synthetic {
  double x, y, ra, dec;
};
// Pixel positions and their sky positions under kTanCards, from astropy:
//   WCS(header).all_pix2world(x, y, 0)  (header: the cards below).
const Synthetic kSynth[] = {
    {60.3, 80.7, 150.34676838250058, 62.212878394801855},
    {180.2, 50.4, 150.27591952932687, 62.22233764408999},
    {120.0, 200.5, 150.35193499654628, 62.249979947169386},
    {30.6, 220.1, 150.4038971618976, 62.24218338332378},
};

std::vector<HeaderCard> tan_cards() {
  // RA---TAN, 1"/px, rotated 30 deg (the unit test's io/wcs header).
  return {io::card("CTYPE1", "RA---TAN"),
          io::card("CTYPE2", "DEC--TAN"),
          io::card("CRVAL1", 150.1234),
          io::card("CRVAL2", 62.5678),
          io::card("CRPIX1", 1024.5),
          io::card("CRPIX2", 1000.25),
          io::card("CD1_1", -0.00024056261216234),
          io::card("CD1_2", 0.000138888888888888),
          io::card("CD2_1", 0.000138888888888888),
          io::card("CD2_2", 0.000240562612162344),
          io::card("RADESYS", "ICRS")};
}

void write_synthetic(const std::string& path, std::vector<HeaderCard> cards) {
  Image<float> img(256, 256);
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 3.0);
  const double sigma = 1.5, flux = 2e5;
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) {
      double v = 100 + noise(rng);
      for (const Synthetic& s : kSynth) {
        const double r2 = (x - s.x) * (x - s.x) + (y - s.y) * (y - s.y);
        v += flux / (2 * M_PI * sigma * sigma) * std::exp(-r2 / (2 * sigma * sigma));
      }
      img(x, y) = static_cast<float>(v);
    }
  cards.push_back(io::card("EXPTIME", 10.0));
  cards.push_back(io::card("GAIN", 1.0));
  io::write_fits(path, img.cview(), cards);
}

TEST(SkyCoords, SyntheticTanFrameGivesAstropysPositions) {
  test::TempDir tmp;
  write_synthetic(tmp.file("tan.fits"), tan_cards());
  const auto r = run_frame(tmp.file("tan.fits"), tmp.file("tan.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Table t = read_csv(tmp.file("tan.csv"));
  expect_sky_columns(t, true);
  for (const Synthetic& s : kSynth) {
    std::size_t found = t.rows;
    for (std::size_t i = 0; i < t.rows; ++i)
      if (std::hypot(t.col.at("centroid_x")[i] - s.x, t.col.at("centroid_y")[i] - s.y) < 0.5)
        found = i;
    ASSERT_LT(found, t.rows) << "no star found at " << s.x << "," << s.y;
    const double d = sep_arcsec(t.col.at("ra_deg")[found], t.col.at("dec_deg")[found], s.ra, s.dec);
    std::cout << "star at (" << s.x << ", " << s.y << "): " << d * 1000 << " mas from astropy\n";
    // 1"/px: 0.05" = 0.05 px, 25x the centroid noise; 1-based or swapped pixels are >= 1".
    EXPECT_LT(d, 0.05) << s.x << "," << s.y;
  }
}

TEST(SkyCoords, FrameWithoutOrWithBrokenWcsStillSucceedsWithNan) {
  test::TempDir tmp;
  write_synthetic(tmp.file("none.fits"), {});
  auto r = run_frame(tmp.file("none.fits"), tmp.file("none.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Table none = read_csv(tmp.file("none.csv"));
  EXPECT_GE(none.rows, 4u);
  expect_sky_columns(none, false);

  // An unknown projection: the frame is measured as without a WCS, and the reason is logged
  // once.
  auto cards = tan_cards();
  cards[0] = io::card("CTYPE1", "RA---XYZ");
  cards[1] = io::card("CTYPE2", "DEC--XYZ");
  write_synthetic(tmp.file("bad.fits"), cards);
  r = run_frame(tmp.file("bad.fits"), tmp.file("bad.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Table bad = read_csv(tmp.file("bad.csv"));
  EXPECT_EQ(bad.rows, none.rows);
  expect_sky_columns(bad, false);
  const auto first = r.out.find("no sky coordinates");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("XYZ", first), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("no sky coordinates", first + 1), std::string::npos) << r.out;
  // The warning goes to stderr with psfphot's prefix, never among the printed results.
  // (run_command adds 2>&1 after the whole command: the group keeps stderr apart.)
  r = test::run_command("{ " + test::psfphot_exe() + " frame '" + tmp.file("bad.fits") + "' -o '" +
                        tmp.file("bad2.csv") + "' 2>'" + tmp.file("err.txt") + "'; }");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("no sky coordinates"), std::string::npos) << r.out;
  std::ifstream err(tmp.file("err.txt"));
  const std::string err_text((std::istreambuf_iterator<char>(err)),
                             std::istreambuf_iterator<char>());
  EXPECT_NE(err_text.find("psfphot: [warning]"), std::string::npos) << err_text;
  EXPECT_NE(err_text.find("no sky coordinates"), std::string::npos) << err_text;
}

}  // namespace
}  // namespace psfphot

namespace psfphot {
namespace {

// psfphot simulate writes a TAN WCS whose reference pixel follows each frame's pointing
// dither (up to +-8 px = +-4.8" per axis here): the same star must get the same sky position
// in two dithered frames, to its centroid error (S/N > 100: <~ 0.02 px = 0.012"), although
// its pixel position moves by the dither difference.
TEST(SkyCoords, SimulatedStarsKeepTheirSkyPositionAcrossDitheredFrames) {
  test::TempDir tmp;
  const std::string d = tmp.file("night");
  auto r = test::run_command(test::psfphot_exe() + " simulate --out " + d +
                             " --frames 2 --size 1024 --stars 1200 --seed 9 -q");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Table t[2];
  for (int k = 0; k < 2; ++k) {
    const std::string csv = tmp.file("f" + std::to_string(k) + ".csv");
    r = run_frame(d + "/science/sci_000" + std::to_string(k) + ".fits", csv);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    t[k] = read_csv(csv);
    expect_sky_columns(t[k], true);
  }
  std::vector<double> sep, moved;
  int bright = 0;
  for (std::size_t i = 0; i < t[0].rows; ++i) {
    if (!(t[0].col.at("snr")[i] > 100)) continue;
    ++bright;
    double best = 1.0;  // arcsec
    std::size_t bj = t[1].rows;
    for (std::size_t j = 0; j < t[1].rows; ++j) {
      const double s = sep_arcsec(t[0].col.at("ra_deg")[i], t[0].col.at("dec_deg")[i],
                                  t[1].col.at("ra_deg")[j], t[1].col.at("dec_deg")[j]);
      if (s < best) best = s, bj = j;
    }
    if (bj == t[1].rows) continue;
    sep.push_back(best);
    moved.push_back(std::hypot(t[1].col.at("centroid_x")[bj] - t[0].col.at("centroid_x")[i],
                               t[1].col.at("centroid_y")[bj] - t[0].col.at("centroid_y")[i]));
  }
  ASSERT_GE(bright, 20);
  ASSERT_GE(sep.size(), static_cast<std::size_t>(0.9 * bright));
  std::sort(sep.begin(), sep.end());
  std::sort(moved.begin(), moved.end());
  EXPECT_LT(sep[sep.size() / 2], 0.03);
  // The frames are dithered: the same stars moved in pixels (by the dither difference).
  EXPECT_GT(moved[moved.size() / 2], 1.0);
  // And absolutely: each bright star of frame 0 where the simulator put the truth star it
  // matches, its field position (frame position - the frame's dither, truth/frames.csv)
  // through the gnomonic projection written out here (Calabretta & Greisen 2002, eqs. 54
  // and 2): the field centre (511.5, 511.5) at RA 150.1, Dec 2.2, 0.6"/px, north up, east
  // left. A shared error of both frames' WCS (CRPIX, CRVAL, the sign of east) fails here.
  const Table truth = [&] {
    std::ifstream in(d + "/truth/sci_0000.csv");
    std::ofstream out(tmp.file("truth0.csv"));
    for (std::string line; std::getline(in, line);)
      if (line.empty() || line[0] != '#') out << line << "\n";
    out.close();
    return read_csv(tmp.file("truth0.csv"));
  }();
  double dx = 0, dy = 0;
  {
    std::ifstream in(d + "/truth/frames.csv");
    std::string line;
    std::getline(in, line);
    std::getline(in, line);  // frame 0: frame,path,psf_sigma_px,sky_adu,dx,dy,...
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) f.push_back(c);
    dx = std::stod(f.at(4));
    dy = std::stod(f.at(5));
  }
  const double ra0 = 150.1 * kD2r, dec0 = 2.2 * kD2r, scale = 0.6 / 3600 * kD2r;
  std::vector<double> abs_sep;
  double east_check = 0;
  for (std::size_t i = 0; i < t[0].rows; ++i) {
    if (!(t[0].col.at("snr")[i] > 100)) continue;
    const double x = t[0].col.at("centroid_x")[i], y = t[0].col.at("centroid_y")[i];
    for (std::size_t j = 0; j < truth.rows; ++j) {
      const double tx = truth.col.at("x")[j], ty = truth.col.at("y")[j];
      if (std::hypot(tx - x, ty - y) > 1.0) continue;
      const double xi = -(tx - dx - 511.5) * scale, eta = (ty - dy - 511.5) * scale;
      const double den = std::cos(dec0) - eta * std::sin(dec0);
      const double ra = (ra0 + std::atan2(xi, den)) / kD2r;
      const double dec =
          std::atan2(std::sin(dec0) + eta * std::cos(dec0), std::hypot(xi, den)) / kD2r;
      abs_sep.push_back(sep_arcsec(t[0].col.at("ra_deg")[i], t[0].col.at("dec_deg")[i], ra, dec));
      // East left: RA falls as x grows (against the field centre's RA).
      east_check += (t[0].col.at("ra_deg")[i] - 150.1) * (x - dx - 511.5) < 0 ? 1 : -1;
      break;
    }
  }
  ASSERT_GE(abs_sep.size(), 20u);
  std::sort(abs_sep.begin(), abs_sep.end());
  EXPECT_LT(abs_sep[abs_sep.size() / 2], 0.03);  // centroid errors of S/N > 100 stars
  EXPECT_GT(east_check, 0.8 * static_cast<double>(abs_sep.size()));
  std::cout << bright << " bright stars, " << sep.size() << " matched on the sky; median "
            << sep[sep.size() / 2] << "\" apart, moved " << moved[moved.size() / 2]
            << " px between the frames; " << abs_sep[abs_sep.size() / 2]
            << "\" from the truth's positions\n";
}

}  // namespace
}  // namespace psfphot
