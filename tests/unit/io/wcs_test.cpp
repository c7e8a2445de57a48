// io/wcs: pixel -> FK5 J2000 RA/Dec through wcslib, checked against astropy 5.2.1.
//
// The expected sky positions were computed once with astropy and pasted here. To recompute,
// build the same header in astropy.io.fits.Header (the card texts below) and run
//   w = astropy.wcs.WCS(header); lon, lat = w.all_pix2world(x, y, 0)   # 0-based pixels
// then, for a Galactic WCS,
//   SkyCoord(lon*u.deg, lat*u.deg, frame='galactic').transform_to(FK5(equinox='J2000'))
// and for an ecliptic one
//   SkyCoord(lon*u.deg, lat*u.deg, frame=BarycentricMeanEcliptic(equinox='J2000'))
//       .transform_to(FK5(equinox='J2000'))
// (this test's source of truth for the system conversions is astropy.coordinates, which does
// not use wcslib).
#include "psfphot/io/wcs.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

HeaderFacts facts(const std::vector<std::pair<std::string, std::string>>& cards) {
  HeaderFacts h;
  for (const auto& [k, v] : cards) {
    h.wcs.push_back({k, v, ""});
    h.cards.push_back({k, v, ""});
  }
  return h;
}

// RA---TAN, 1"/px, rotated by 30 deg, at Dec 62.6 (RA's pixel scale there is half Dec's).
const std::vector<std::pair<std::string, std::string>> kTan = {
    {"CTYPE1", "'RA---TAN'"},
    {"CTYPE2", "'DEC--TAN'"},
    {"CRVAL1", "150.1234"},
    {"CRVAL2", "62.5678"},
    {"CRPIX1", "1024.5"},
    {"CRPIX2", "1000.25"},
    {"CD1_1", "-0.00024056261216234"},
    {"CD1_2", "0.000138888888888888"},
    {"CD2_1", "0.000138888888888888"},
    {"CD2_2", "0.000240562612162344"},
    {"RADESYS", "'ICRS    '"},
};

struct Expect {
  double x, y, ra, dec;
};

// astropy all_pix2world(x, y, 0) of kTan.
const Expect kTanTruth[] = {
    {0.0, 0.0, 150.3536291237054, 62.18507981549797},
    {4095.0, 0.0, 148.20702044421532, 62.740965455675486},
    {0.0, 4095.0, 151.62114128038175, 63.16246076424834},
    {4095.0, 4095.0, 149.42538914756554, 63.73726862853314},
    {2000.25, -1500.5, 148.8794376342395, 62.09653861853012},
};

TEST(Wcs, TanReferencePixelIsCrvalAndOtherPixelsMatchAstropy) {
  SkyWcs w(facts(kTan));
  ASSERT_TRUE(w.ok()) << w.reason();
  EXPECT_EQ(w.status(), SkyWcsStatus::kOk);
  EXPECT_TRUE(w.reason().empty());
  // CRPIX (1024.5, 1000.25) is 0-based (1023.5, 999.25): exactly CRVAL.
  const SkyCoord c = w.pixel_to_sky(1023.5, 999.25);
  EXPECT_NEAR(c.ra_deg, 150.1234, 1e-12);
  EXPECT_NEAR(c.dec_deg, 62.5678, 1e-12);
  for (const Expect& e : kTanTruth) {
    const SkyCoord s = w.pixel_to_sky(e.x, e.y);
    // Same projection code path as astropy (wcslib): agreement to rounding.
    EXPECT_NEAR(s.ra_deg, e.ra, 1e-9) << e.x << "," << e.y;
    EXPECT_NEAR(s.dec_deg, e.dec, 1e-9) << e.x << "," << e.y;
  }
  // A one-pixel step along +x moves the position by the CD matrix's 1" (not the FITS
  // 1-based pixel or a swapped axis): separation 1/3600 deg to 1e-9.
  const SkyCoord a = w.pixel_to_sky(100, 200), b = w.pixel_to_sky(101, 200);
  const double d2r = M_PI / 180;
  const double sep = std::acos(std::sin(a.dec_deg * d2r) * std::sin(b.dec_deg * d2r) +
                               std::cos(a.dec_deg * d2r) * std::cos(b.dec_deg * d2r) *
                                   std::cos((a.ra_deg - b.ra_deg) * d2r)) /
                     d2r;
  EXPECT_NEAR(sep * 3600, 1.0, 1e-3);
}

TEST(Wcs, BatchEqualsSinglePointsAndNonFiniteGivesNan) {
  SkyWcs w(facts(kTan));
  ASSERT_TRUE(w.ok());
  const std::vector<double> x = {0.0, NAN, 4095.0, 12.5}, y = {0.0, 3.0, INFINITY, 7.25};
  std::vector<double> ra(4), dec(4);
  w.pixels_to_sky(x, y, ra, dec);
  EXPECT_NEAR(ra[0], kTanTruth[0].ra, 1e-9);
  EXPECT_NEAR(dec[0], kTanTruth[0].dec, 1e-9);
  EXPECT_TRUE(std::isnan(ra[1]) && std::isnan(dec[1]));
  EXPECT_TRUE(std::isnan(ra[2]) && std::isnan(dec[2]));
  const SkyCoord s = w.pixel_to_sky(12.5, 7.25);
  EXPECT_EQ(ra[3], s.ra_deg);
  EXPECT_EQ(dec[3], s.dec_deg);
  std::vector<double> short_out(3);
  EXPECT_THROW(w.pixels_to_sky(x, y, short_out, dec), std::invalid_argument);
}

TEST(Wcs, CardsWrittenAndReadBackThroughFitsGiveTheSamePositions) {
  test::TempDir dir;
  const std::string path = dir.file("tan.fits");
  std::vector<HeaderCard> cards;
  for (const auto& [k, v] : kTan)
    cards.push_back(v.front() == '\'' ? card(k, v.substr(1, v.find('\'', 1) - 1))
                                      : card(k, std::stod(v)));
  Image<float> img(64, 32);
  write_fits(path, img.cview(), cards);
  SkyWcs w(read_fits_header(path).header);
  ASSERT_TRUE(w.ok()) << w.reason();
  for (const Expect& e : kTanTruth) {
    const SkyCoord s = w.pixel_to_sky(e.x, e.y);
    EXPECT_NEAR(s.ra_deg, e.ra, 1e-9);
    EXPECT_NEAR(s.dec_deg, e.dec, 1e-9);
  }
}

TEST(Wcs, GalacticCarIsConvertedToFk5J2000AsAstropyDoes) {
  // The GLIMPSE mosaic's WCS (../shared/data/glimpse_irac2_crowded_field).
  SkyWcs w(facts({{"CTYPE1", "'GLON-CAR'"},
                  {"CTYPE2", "'GLAT-CAR'"},
                  {"CRVAL1", "18.00000000"},
                  {"CRVAL2", "0.00000000"},
                  {"CRPIX1", "1.161500000000000E+03"},
                  {"CRPIX2", "-3.885000000000000E+02"},
                  {"CD1_1", "-3.33333330E-04"},
                  {"CD1_2", "0.00000000E+00"},
                  {"CD2_1", "0.00000000E+00"},
                  {"CD2_2", "3.33333330E-04"},
                  {"EQUINOX", "2000.0"}}));
  ASSERT_TRUE(w.ok()) << w.reason();
  EXPECT_NE(w.description().find("galactic"), std::string::npos) << w.description();
  // (x, y) -> astropy's (l, b) -> FK5 J2000 (RA, Dec).
  const Expect truth[] = {
      {0.0, 0.0, 275.9945778728516, -12.854697294759047},
      {1024.0, 0.0, 275.83044860863004, -13.156249595689662},
      {0.0, 512.0, 275.83994760130486, -12.774741882700567},
      {1024.0, 512.0, 275.67568554010427, -13.076193881117446},
      {512.3, 256.7, 275.8349434670069, -12.965474335000826},
  };
  for (const Expect& e : truth) {
    const SkyCoord s = w.pixel_to_sky(e.x, e.y);
    // The same pole constants as astropy's Galactic frame: agreement to rounding (measured
    // < 1e-11 deg); 1e-8 deg = 36 microarcsec would still catch a pole rounded to the
    // 4 decimals of wcslib's documentation (~1e-5 deg).
    EXPECT_NEAR(s.ra_deg, e.ra, 1e-8) << e.x << "," << e.y;
    EXPECT_NEAR(s.dec_deg, e.dec, 1e-8) << e.x << "," << e.y;
  }
}

TEST(Wcs, EclipticJ2000IsConvertedToFk5J2000AsAstropyDoes) {
  SkyWcs w(facts({{"CTYPE1", "'ELON-TAN'"},
                  {"CTYPE2", "'ELAT-TAN'"},
                  {"CRVAL1", "210.0"},
                  {"CRVAL2", "-35.0"},
                  {"CRPIX1", "100.0"},
                  {"CRPIX2", "200.0"},
                  {"CD1_1", "-0.001"},
                  {"CD1_2", "0.0"},
                  {"CD2_1", "0.0"},
                  {"CD2_2", "0.001"},
                  {"EQUINOX", "2000.0"}}));
  ASSERT_TRUE(w.ok()) << w.reason();
  // astropy BarycentricMeanEcliptic(equinox J2000) -> FK5(J2000).
  const Expect truth[] = {
      {99.0, 199.0, 191.75514975992036, -43.56413669871416},
      {0.0, 0.0, 191.7447466650039, -43.786273798224336},
      {1000.0, 1000.0, 191.1972637190185, -42.429895357911626},
  };
  // astropy ties its ecliptic frames to ICRS through the IAU 2006 bias-precession matrix;
  // psfphot rotates the J2000 mean ecliptic onto the J2000 mean equator by the obliquity
  // alone. The two "J2000 equators" differ by the ~20 mas frame bias: a numpy rotation by
  // the obliquity differs from astropy's FK5 by (18-26, 22-23) mas here. Bound 1.5e-5 deg =
  // 54 mas, 2x that; a wrong pole or axis would be degrees off.
  constexpr double kTolDeg = 1.5e-5;
  for (const Expect& e : truth) {
    const SkyCoord s = w.pixel_to_sky(e.x, e.y);
    EXPECT_NEAR(s.ra_deg, e.ra, kTolDeg) << e.x << "," << e.y;
    EXPECT_NEAR(s.dec_deg, e.dec, kTolDeg) << e.x << "," << e.y;
  }
}

TEST(Wcs, NoWcsGivesNanWithAReason) {
  HeaderFacts h;
  h.cards.push_back({"EXPTIME", "60.0", ""});
  h.cards.push_back({"EQUINOX", "2000.0", ""});  // MicroObservatory frames: EQUINOX, no WCS
  h.wcs.push_back({"EQUINOX", "2000.0", ""});
  SkyWcs w(h);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.status(), SkyWcsStatus::kNone);
  EXPECT_FALSE(w.reason().empty());
  const SkyCoord s = w.pixel_to_sky(10, 10);
  EXPECT_TRUE(std::isnan(s.ra_deg) && std::isnan(s.dec_deg));
}

TEST(Wcs, LinearWcsIsNotCelestial) {
  // SEP's test image: CTYPE '' with CRPIX/CRVAL/CDELT (a linear WCS).
  SkyWcs w(facts({{"CRPIX1", "-767.0"},
                  {"CRVAL1", "1.0"},
                  {"CDELT1", "1.0"},
                  {"CTYPE1", "''"},
                  {"CRPIX2", "-511.0"},
                  {"CRVAL2", "1.0"},
                  {"CDELT2", "1.0"},
                  {"CTYPE2", "''"}}));
  EXPECT_EQ(w.status(), SkyWcsStatus::kNotCelestial) << w.reason();
  EXPECT_TRUE(std::isnan(w.pixel_to_sky(1, 1).ra_deg));
}

std::vector<std::pair<std::string, std::string>> with(
    std::vector<std::pair<std::string, std::string>> cards, const std::string& key,
    const std::string& value) {
  for (auto& [k, v] : cards)
    if (k == key) v = value;
  return cards;
}

TEST(Wcs, BrokenWcsGivesNanAndNamesTheProblem) {
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, std::string>> cards;
    const char* in_reason;
  };
  const Case cases[] = {
      {"CRVAL not a number", with(kTan, "CRVAL1", "'abc'"), "CRVAL1"},
      {"unknown projection", with(with(kTan, "CTYPE1", "'RA---XYZ'"), "CTYPE2", "'DEC--XYZ'"),
       "XYZ"},
      {"singular CD matrix",
       with(with(with(with(kTan, "CD1_1", "0.0"), "CD1_2", "0.0"), "CD2_1", "0.0"), "CD2_2", "0.0"),
       "singular"},
  };
  for (const Case& c : cases) {
    SkyWcs w(facts(c.cards));
    EXPECT_EQ(w.status(), SkyWcsStatus::kInvalid) << c.what << ": " << w.reason();
    EXPECT_NE(w.reason().find(c.in_reason), std::string::npos) << c.what << ": " << w.reason();
    const SkyCoord s = w.pixel_to_sky(1023.5, 999.25);
    EXPECT_TRUE(std::isnan(s.ra_deg) && std::isnan(s.dec_deg)) << c.what;
  }
}

// wcslib counts rejected cards over the whole header: a broken alternate description or an
// EPOCH that EQUINOX overrides must not cost the primary WCS its positions (review of
// session 18: each made every star NaN), while a broken primary card still does.
TEST(Wcs, RejectedCardsOutsideThePrimaryWcsLeaveItUsable) {
  SkyWcs ref(facts(kTan));
  ASSERT_TRUE(ref.ok());
  const SkyCoord want = ref.pixel_to_sky(100.0, 200.0);
  auto alternate = kTan;  // wcslib: 2 descriptions, 1 rejected card, the primary set up
  alternate.push_back({"CTYPE1A", "'RA---TAN'"});
  alternate.push_back({"CTYPE2A", "'DEC--TAN'"});
  alternate.push_back({"CRVAL1A", "'x'"});
  auto epoch = kTan;
  epoch.push_back({"EQUINOX", "2000.0"});
  HeaderFacts h = facts(epoch);
  h.cards.push_back({"EPOCH", "'J2000'", ""});  // not a WCS card for io: only in cards
  for (const HeaderFacts& f : {facts(alternate), h}) {
    SkyWcs w(f);
    ASSERT_TRUE(w.ok()) << w.reason();
    const SkyCoord s = w.pixel_to_sky(100.0, 200.0);
    EXPECT_EQ(s.ra_deg, want.ra_deg);
    EXPECT_EQ(s.dec_deg, want.dec_deg);
  }
  EXPECT_EQ(SkyWcs(facts(with(kTan, "CRVAL1", "'x'"))).status(), SkyWcsStatus::kInvalid);
}

TEST(Wcs, Fk4B1950IsNotPassedOffAsJ2000) {
  auto cards = with(kTan, "RADESYS", "'FK4     '");
  cards.push_back({"EQUINOX", "1950.0"});
  SkyWcs w(facts(cards));
  EXPECT_EQ(w.status(), SkyWcsStatus::kUnsupported) << w.reason();
  EXPECT_NE(w.reason().find("FK4"), std::string::npos) << w.reason();
  EXPECT_TRUE(std::isnan(w.pixel_to_sky(1023.5, 999.25).ra_deg));
}

}  // namespace
}  // namespace psfphot::io
