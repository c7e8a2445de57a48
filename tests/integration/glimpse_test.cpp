// A crowded real field against an independent catalogue: `psfphot frame` with
// configs/glimpse.toml on the Spitzer/IRAC 4.5 um GLIMPSE mosaic cutout in
// ../shared/data/glimpse_irac2_crowded_field, matched to the GLIMPSE point-source catalogue
// (224 stars, 50-446 mJy) within 1 px. Skips when the folder is absent. The numbers measured
// (with astropy's WCS, scripts/glimpse_match.py) and the reasons for each bound are in
// docs/validation.md, section 4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot {
namespace {

struct Src {
  double x, y, flux;  // 0-based px; catalogue mJy or psfphot MJy/sr x px
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double num(const HeaderFacts& h, const std::string& key) {
  const std::string s = h.card(key);
  EXPECT_FALSE(s.empty()) << "no " << key << " card";
  return s.empty() ? NAN : std::stod(s);
}

// GLIMPSE (l, b, f4_5) -> 0-based pixels by the header's CAR projection. With CRVAL2 = 0 and
// no rotation, plate carree is linear in both axes (Calabretta & Greisen 2002, sec. 5.3.1):
// x = CRPIX1 - 1 + (l - CRVAL1) / CD1_1, y = CRPIX2 - 1 + b / CD2_2, l - CRVAL1 taken in
// [-180, 180). Agrees with astropy's all_world2pix(l, b, 0) to 4e-11 px on these 224 rows.
std::vector<Src> catalogue_pixels(const std::string& fits, const std::string& votable) {
  const HeaderFacts h = io::read_fits_header(fits).header;
  EXPECT_EQ(h.card("CTYPE1"), "GLON-CAR");
  EXPECT_EQ(h.card("CTYPE2"), "GLAT-CAR");
  EXPECT_EQ(num(h, "CRVAL2"), 0.0) << "CAR is linear only when CRVAL2 = 0";
  EXPECT_EQ(num(h, "CD1_2"), 0.0);
  EXPECT_EQ(num(h, "CD2_1"), 0.0);
  const double crpix1 = num(h, "CRPIX1"), crpix2 = num(h, "CRPIX2"), crval1 = num(h, "CRVAL1");
  const double cd11 = num(h, "CD1_1"), cd22 = num(h, "CD2_2");

  // The VOTable's FIELDs start l, b, f4_5 (checked); each <TR> holds one <TD> per FIELD.
  std::ifstream in(votable);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string xml = ss.str();
  const std::regex field_re("<FIELD[^>]*name=\"([^\"]+)\"");
  std::vector<std::string> fields;
  for (std::sregex_iterator it(xml.begin(), xml.end(), field_re), end; it != end; ++it)
    fields.push_back((*it)[1]);
  EXPECT_GE(fields.size(), 3u);
  if (fields.size() < 3 || fields[0] != "l" || fields[1] != "b" || fields[2] != "f4_5") {
    ADD_FAILURE() << "unexpected VOTable columns";
    return {};
  }
  const std::regex tr_re("<TR>([\\s\\S]*?)</TR>"), td_re("<TD>([^<]*)</TD>");
  std::vector<Src> out;
  for (std::sregex_iterator it(xml.begin(), xml.end(), tr_re), end; it != end; ++it) {
    const std::string row = (*it)[1];
    std::vector<double> v;
    for (std::sregex_iterator jt(row.begin(), row.end(), td_re); jt != end && v.size() < 3; ++jt)
      v.push_back(std::stod((*jt)[1]));
    const double dl = std::fmod(std::fmod(v[0] - crval1 + 180.0, 360.0) + 360.0, 360.0) - 180.0;
    out.push_back({crpix1 - 1 + dl / cd11, crpix2 - 1 + v[1] / cd22, v[2]});
  }
  return out;
}

// psfphot's CSV: stars with a finite centroid (columns found by name).
std::vector<Src> read_stars(const std::string& path) {
  std::ifstream in(path);
  std::string line, cell;
  std::getline(in, line);
  std::vector<std::string> names;
  for (std::stringstream hs(line); std::getline(hs, cell, ',');) names.push_back(cell);
  auto col = [&](const std::string& n) {
    return std::size_t(std::find(names.begin(), names.end(), n) - names.begin());
  };
  const std::size_t ix = col("centroid_x"), iy = col("centroid_y"), iff = col("psf_flux");
  EXPECT_LT(std::max({ix, iy, iff}), names.size()) << "missing columns in " << path;
  std::vector<Src> out;
  while (std::getline(in, line)) {
    std::vector<std::string> c;
    for (std::stringstream ls(line); std::getline(ls, cell, ',');) c.push_back(cell);
    if (c.size() != names.size()) continue;
    const Src s{std::stod(c[ix]), std::stod(c[iy]), std::stod(c[iff])};
    if (std::isfinite(s.x) && std::isfinite(s.y)) out.push_back(s);
  }
  return out;
}

TEST(Glimpse, CrowdedFieldMatchesGlimpseCatalogue) {
  PSFPHOT_REQUIRE_SHARED_DATA();
  const auto dir = test::shared_data() / "glimpse_irac2_crowded_field";
  const std::string image = (dir / "spitzer_example_image.fits").string();
  const std::vector<Src> cat =
      catalogue_pixels(image, (dir / "spitzer_example_catalog.xml").string());
  ASSERT_EQ(cat.size(), 224u);

  test::TempDir tmp;
  const auto r = test::run_command(test::psfphot_exe() + " frame '" + image +
                                   "' --config '" PSFPHOT_SOURCE_DIR "/configs/glimpse.toml' -o '" +
                                   tmp.file("stars.csv") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::vector<Src> stars = read_stars(tmp.file("stars.csv"));
  ASSERT_GT(stars.size(), 1000u);

  // Nearest star within 1 px (1.2"): 3x the 0.33 px catalogue-to-mosaic shift, and well
  // inside the ~2.5 px to the nearest other detected star of most catalogue stars.
  constexpr double kMatchPx = 1.0;
  constexpr double kMjyPerUnit = 0.0338;  // mJy per MJy/sr over one (1.2")^2 pixel
  std::vector<double> dx, dy, logr, logr_faint, logr_bright;
  std::vector<double> fcat;
  for (const auto& c : cat) fcat.push_back(c.flux);
  const double fmed = median(fcat);
  for (const auto& c : cat) {
    double best = kMatchPx;
    const Src* m = nullptr;
    for (const auto& s : stars) {
      const double d = std::hypot(s.x - c.x, s.y - c.y);
      if (d <= best) best = d, m = &s;
    }
    if (!m) {
      std::cout << "missed GLIMPSE star at (" << c.x << ", " << c.y << "), " << c.flux << " mJy\n";
      continue;
    }
    dx.push_back(m->x - c.x);
    dy.push_back(m->y - c.y);
    if (!(m->flux > 0)) continue;
    logr.push_back(std::log10(m->flux * kMjyPerUnit / c.flux));
    (c.flux < fmed ? logr_faint : logr_bright).push_back(logr.back());
  }
  const double frac = double(dx.size()) / double(cat.size());
  const double mdx = median(dx), mdy = median(dy);
  double ss = 0;
  for (std::size_t i = 0; i < dx.size(); ++i)
    ss += std::pow(std::hypot(dx[i] - mdx, dy[i] - mdy), 2);
  const double rms_about_shift = std::sqrt(ss / double(dx.size()));
  const double lr_med = median(logr);
  std::vector<double> absdev;
  for (double v : logr) absdev.push_back(std::abs(v - lr_med));
  const double robust_dex = 1.4826 * median(absdev);
  const double outliers =
      double(std::count_if(absdev.begin(), absdev.end(), [](double d) { return d > 0.1; }));
  const double trend_dex = median(logr_bright) - median(logr_faint);
  std::cout << "recovered " << dx.size() << "/" << cat.size() << "; median shift (" << mdx << ", "
            << mdy << ") px, RMS about it " << rms_about_shift << " px; log10(flux ratio) median "
            << lr_med << ", robust sigma " << robust_dex << " dex, bright - faint " << trend_dex
            << " dex, " << outliers << " beyond 0.1 dex (n = " << logr.size() << ")\n";

  // Measured 224/224 (SEP 219/224). One loss is 0.45%; 95% as for the other real frames.
  EXPECT_GE(frac, 0.95);
  // The catalogue sits (+0.10, +0.31) px from the mosaic's WCS for psfphot and (+0.13, +0.30)
  // for SEP's windowed centroids alike: registration, not centroiding. 0.5 px (0.6") is
  // twice GLIMPSE's quoted 0.3" absolute accuracy.
  EXPECT_LE(std::hypot(mdx, mdy), 0.5);
  // Scatter about that shift: measured 0.080 px (SEP 0.095). Bound 0.15 px (2x): centroids
  // pulled by neighbours or moved by clipped core pixels (0.5-1.5 px) would exceed it.
  EXPECT_LE(rms_about_shift, 0.15);
  // A Gaussian PSF flux is the core: measured 0.896 x the catalogue (-0.048 dex), as IRAC's
  // ~1.12 small-aperture correction predicts. 0.8-1.0 catches unit and normalisation errors.
  EXPECT_GE(lr_med, -0.10);
  EXPECT_LE(lr_med, 0.0);
  // Scatter: measured 0.028 dex, of which the catalogue's own errors are 0.019 dex (median
  // df4_5 / f4_5). Bound 0.045 dex = 0.11 mag (our part up to 0.041 dex, 2x measured).
  EXPECT_LE(robust_dex, 0.045);
  // Flux outliers, > 0.1 dex (0.25 mag, ~3 sigma) from the median: measured 3 of 224 (blends).
  // Bound 5%: sky-noise-only weights (gain 0) gave 24, the uniform-weight core fit pulled
  // by bright neighbours.
  EXPECT_LE(outliers, 0.05 * double(logr.size()));
  // No trend with brightness (sky or gain errors bias faint stars): measured 0.008 dex; the
  // noise of a difference of two 112-star medians is ~0.006 dex, so 0.02 dex is ~3 sigma.
  EXPECT_LE(std::abs(trend_dex), 0.02);
}

}  // namespace
}  // namespace psfphot
