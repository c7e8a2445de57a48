#include "psfphot/io/table_csv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "support/test_support.hpp"

namespace psfphot::io {
namespace {

// The message of the CsvError that `f` throws (fails the test if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const CsvError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no CsvError thrown";
  return {};
}

const char* kTruth =
    "# width=640\n"
    "# height = 480\n"
    "# gain_e_per_adu=1.2\n"
    "# psf=gaussian\n"
    "# a plain comment without a value\n"
    "star_id,x,y,flux,snr,saturated,psf_sigma_px,sky_var_adu2\r\n"
    "0,10.5,20.25,1000,12.5,0,2,150\r\n"
    "\n"
    "1, 3e2 ,-4.5E-1,2.5e+5,nan,true,2.1,150\n"
    "# trailing=comment\n"
    "2,,7,inf,-inf,False,2,150\n";

TEST(TableCsv, ParsesHeaderRowsCommentsAndNumbers) {
  const CsvTable t = CsvTable::parse(kTruth, "truth.csv");
  EXPECT_EQ(t.rows(), 3u);
  ASSERT_EQ(t.columns().size(), 8u);
  EXPECT_EQ(t.columns()[7], "sky_var_adu2");  // '\r' stripped
  EXPECT_EQ(t.column_index("flux"), 3);
  EXPECT_EQ(t.column_index("FLUX"), -1);  // names are case-sensitive
  ASSERT_EQ(t.comments().size(), 5u);
  EXPECT_EQ(t.comments()[1], (std::pair<std::string, std::string>("height", "480")));
  EXPECT_EQ(t.comment("psf").value(), "gaussian");
  EXPECT_EQ(t.comment("trailing").value(), "comment");
  EXPECT_FALSE(t.comment("seed").has_value());
  EXPECT_DOUBLE_EQ(t.comment_number("width"), 640);
  EXPECT_DOUBLE_EQ(t.comment_number("gain_e_per_adu"), 1.2);

  const auto x = t.numbers("x");
  EXPECT_DOUBLE_EQ(x[0], 10.5);
  EXPECT_DOUBLE_EQ(x[1], 300);
  EXPECT_TRUE(std::isnan(x[2]));  // empty cell = missing
  const auto y = t.numbers("y");
  EXPECT_DOUBLE_EQ(y[1], -0.45);
  EXPECT_DOUBLE_EQ(t.numbers("flux")[1], 2.5e5);
  EXPECT_TRUE(std::isinf(t.numbers("flux")[2]));
  EXPECT_TRUE(std::isnan(t.numbers("snr")[1]));
  EXPECT_LT(t.numbers("snr")[2], 0);
  EXPECT_EQ(t.booleans("saturated"), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(t.line_of(0), 7);
  EXPECT_EQ(t.line_of(1), 9);
  EXPECT_EQ(t.line_of(2), 11);
  EXPECT_EQ(t.cell(1, 1), "3e2");  // trimmed
}

TEST(TableCsv, QuotedCells) {
  const CsvTable t = CsvTable::parse("name,v\n\"a, \"\"b\"\"\",1\n \"x\" , 2\n", "q.csv");
  EXPECT_EQ(t.cell(0, 0), "a, \"b\"");
  EXPECT_EQ(t.cell(1, 0), "x");
  EXPECT_EQ(t.numbers("v"), (std::vector<double>{1, 2}));
  EXPECT_NE(error_of([] { CsvTable::parse("a\n\"open\n", "q.csv"); }).find("q.csv:2:"),
            std::string::npos);
}

TEST(TableCsv, MalformedValueNamesFileLineAndColumn) {
  const CsvTable t = CsvTable::parse("# k=v\nid,x,y\n0,1,2\n1,1.5.3,2\n", "cat.csv");
  const std::string e = error_of([&] { t.numbers("x"); });
  EXPECT_NE(e.find("cat.csv:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("'x' (column 2)"), std::string::npos) << e;
  EXPECT_NE(e.find("'1.5.3'"), std::string::npos) << e;
  EXPECT_NO_THROW(t.numbers("y"));
  const std::string b = error_of([&] { t.booleans("y"); });
  EXPECT_NE(b.find("cat.csv:3:"), std::string::npos) << b;
  EXPECT_NE(b.find("not a boolean"), std::string::npos) << b;
  const std::string c = error_of([&] { t.comment_number("k"); });
  EXPECT_NE(c.find("'k=v' is not a number"), std::string::npos) << c;
  EXPECT_NE(error_of([&] { t.comment_number("gain"); }).find("no '# gain=...'"), std::string::npos);
}

TEST(TableCsv, MissingColumnListsAvailableColumns) {
  const CsvTable t = CsvTable::parse("id,x,y\n0,1,2\n", "cat.csv");
  const std::string e = error_of([&] { t.numbers("flux"); });
  EXPECT_NE(e.find("cat.csv: no column 'flux' (columns: id, x, y)"), std::string::npos) << e;
}

TEST(TableCsv, StructuralErrors) {
  std::string e = error_of([] { CsvTable::parse("a,b\n1,2\n3\n", "r.csv"); });
  EXPECT_NE(e.find("r.csv:3: expected 2 cells"), std::string::npos) << e;
  e = error_of([] { CsvTable::parse("a,a\n", "d.csv"); });
  EXPECT_NE(e.find("d.csv:1: duplicate column name 'a'"), std::string::npos) << e;
  e = error_of([] { CsvTable::parse("a,,b\n", "d.csv"); });
  EXPECT_NE(e.find("empty name for column 2"), std::string::npos) << e;
  e = error_of([] { CsvTable::parse("# only=comments\n\n", "e.csv"); });
  EXPECT_NE(e.find("e.csv: no header"), std::string::npos) << e;
  e = error_of([] { CsvTable::read("/nonexistent/dir/x.csv"); });
  EXPECT_NE(e.find("/nonexistent/dir/x.csv: cannot open"), std::string::npos) << e;
}

TEST(TableCsv, ParseNumberRules) {
  EXPECT_DOUBLE_EQ(parse_csv_number(" +1.5 ").value(), 1.5);
  EXPECT_DOUBLE_EQ(parse_csv_number("-2e-3").value(), -2e-3);
  EXPECT_TRUE(std::isnan(parse_csv_number("").value()));
  EXPECT_TRUE(std::isnan(parse_csv_number("NaN").value()));  // as numpy/pandas write it
  EXPECT_TRUE(std::isinf(parse_csv_number("-Infinity").value()));
  EXPECT_FALSE(parse_csv_number("1,5").has_value());
  EXPECT_FALSE(parse_csv_number("0x10").has_value());
  EXPECT_FALSE(parse_csv_number("1e999").has_value());  // out of range, not clamped
  EXPECT_FALSE(parse_csv_number("abc").has_value());
}

TEST(TableCsv, ReadsAFile) {
  test::TempDir dir;
  const std::string path = dir.file("t.csv");
  std::ofstream(path) << kTruth;
  const CsvTable t = CsvTable::read(path);
  EXPECT_EQ(t.source(), path);
  EXPECT_EQ(t.rows(), 3u);
  const std::string e = error_of([&] { t.numbers("nope"); });
  EXPECT_EQ(e.rfind(path + ": no column 'nope'", 0), 0u) << e;
}

}  // namespace
}  // namespace psfphot::io
