// The --where expression language: operators, precedence, flag names, NaN, errors.
#include "psfphot/io/star_expression.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot::io {
namespace {

Star star(double flux, double snr, std::uint32_t flags, double x = 10, double y = 20) {
  return test::query_star(flux, snr, flags, x, y);
}

bool where(const std::string& e, const Star& s) {
  return StarExpression::parse(e).matches(s);
}

TEST(StarExpression, ComparisonsAndLogic) {
  const Star s = star(1500, 30, star_flag::kCrowded);
  EXPECT_TRUE(where("psf_flux > 1000", s));
  EXPECT_FALSE(where("psf_flux > 1500", s));
  EXPECT_TRUE(where("psf_flux >= 1500", s));
  EXPECT_TRUE(where("psf_flux == 1500 and snr < 31", s));
  EXPECT_TRUE(where("psf_flux = 1500", s));
  EXPECT_TRUE(where("psf_flux < 10 or snr > 20", s));
  EXPECT_FALSE(where("psf_flux < 10 || snr > 40", s));
  EXPECT_TRUE(where("not psf_flux < 10", s));
  EXPECT_TRUE(where("!(psf_flux < 10) && frame_id == 3 && star_id != 8", s));
  // Precedence: and binds tighter than or; arithmetic tighter than comparison.
  EXPECT_TRUE(where("snr > 100 and psf_flux > 0 or star_id == 7", s));
  EXPECT_FALSE(where("snr > 100 and (psf_flux > 0 or star_id == 7)", s));
  EXPECT_TRUE(where("psf_flux / psf_flux_err == 150", s));
  EXPECT_TRUE(where("psf_flux - 2 * 250 == 1000", s));
  EXPECT_TRUE(where("-psf_flux < -1000", s));
  EXPECT_TRUE(where("psf_flux % 1000 == 500", s));
  EXPECT_TRUE(where("1.5e3 == psf_flux", s));
}

TEST(StarExpression, FlagsAsBitsAndNames) {
  const Star s = star(1500, 30, star_flag::kCrowded | star_flag::kEdge);
  EXPECT_TRUE(where("(flags & crowded) != 0", s));
  EXPECT_TRUE(where("flags & crowded", s));
  EXPECT_FALSE(where("flags & saturated", s));
  EXPECT_TRUE(where("flags & 8 == 8", s));  // & binds tighter than == (as in Python)
  EXPECT_TRUE(where("flags == (edge | crowded)", s));
  EXPECT_EQ(StarExpression::parse("flags").evaluate(s), 9.0);
}

TEST(StarExpression, NanComparesFalse) {
  const Star s = star(NAN, NAN, star_flag::kFitFailed);
  EXPECT_FALSE(where("psf_flux > 0", s));
  EXPECT_FALSE(where("psf_flux <= 0", s));
  EXPECT_FALSE(where("psf_flux == nan", s));
  EXPECT_FALSE(where("psf_flux != 1", s));
  EXPECT_TRUE(where("not psf_flux > 0", s));
  EXPECT_FALSE(where("psf_flux", s));  // NaN as a condition is false
}

TEST(StarExpression, ColumnsReadAreListedOnce) {
  const auto e = StarExpression::parse("snr > 3 and psf_flux > 1 or snr < psf_flux_err");
  EXPECT_EQ(e.columns(), (std::vector<std::string>{"snr", "psf_flux", "psf_flux_err"}));
}

void expect_error(const std::string& expr, const std::string& part) {
  try {
    StarExpression::parse(expr);
    ADD_FAILURE() << "no error for " << expr;
  } catch (const QueryError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
        << "'" << e.what() << "' lacks '" << part << "'";
  }
}

TEST(StarExpression, ClearErrors) {
  expect_error("psf_flx > 1000", "unknown column 'psf_flx'");
  expect_error("psf_flx > 1000", "psf_flux_err");  // the list of columns
  expect_error("psf_flux > ", "ends too early");
  expect_error("(psf_flux > 1", "missing ')'");
  expect_error("psf_flux > 1 snr", "unexpected 'snr'");
  expect_error("1 < snr < 5", "chained comparison");
  expect_error("psf_flux > 1x", "bad number");
  expect_error("psf_flux $ 3", "unexpected '$");
}

}  // namespace
}  // namespace psfphot::io
