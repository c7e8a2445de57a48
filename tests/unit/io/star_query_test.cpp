// psfphot query's engine: filters, the query runner (only the frames' rows
// and the needed columns are read) and the table / CSV / JSON writers.
#include "psfphot/io/star_query.hpp"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <sstream>

#include "support/test_support.hpp"
#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot::io {
namespace {

Star star(double flux, double snr, std::uint32_t flags, double x = 10, double y = 20) {
  return test::query_star(flux, snr, flags, x, y);
}

TEST(FlagFilter, Parses) {
  EXPECT_EQ(parse_flag_filter("none").mode, FlagMode::kNone);
  EXPECT_EQ(parse_flag_filter("any").mode, FlagMode::kAny);
  const FlagFilter f = parse_flag_filter("crowded,edge");
  EXPECT_EQ(f.mode, FlagMode::kAnyOf);
  EXPECT_EQ(f.bits, star_flag::kCrowded | star_flag::kEdge);
  try {
    parse_flag_filter("crowdy");
    ADD_FAILURE();
  } catch (const QueryError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown flag 'crowdy'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("saturated"), std::string::npos);
  }
}

TEST(StarQuery, Filters) {
  StarQuery q;
  q.box = std::array<double, 4>{5, 15, 15, 25};
  EXPECT_TRUE(q.matches(star(1, 1, 0, 10, 20)));
  EXPECT_TRUE(q.matches(star(1, 1, 0, 15, 25)));  // inclusive
  EXPECT_FALSE(q.matches(star(1, 1, 0, 15.01, 20)));
  Star peak_only = star(1, 1, 0, 10, 20);
  peak_only.centroid_x = NAN;  // position falls back to the peak pixel (10, 20)
  EXPECT_TRUE(q.matches(peak_only));
  q = {};
  q.near = std::array<double, 3>{0, 0, 5};
  EXPECT_TRUE(q.matches(star(1, 1, 0, 3, 4)));
  EXPECT_FALSE(q.matches(star(1, 1, 0, 3, 4.01)));
  q = {};
  q.min_snr = 10;
  EXPECT_TRUE(q.matches(star(1, 10, 0)));
  EXPECT_FALSE(q.matches(star(1, 9.99, 0)));
  EXPECT_FALSE(q.matches(star(1, NAN, 0)));
  q = {};
  q.flags = parse_flag_filter("none");
  EXPECT_TRUE(q.matches(star(1, 1, 0)));
  EXPECT_FALSE(q.matches(star(1, 1, star_flag::kEdge)));
  q.flags = parse_flag_filter("any");
  EXPECT_FALSE(q.matches(star(1, 1, 0)));
  q.flags = parse_flag_filter("saturated,crowded");
  EXPECT_TRUE(q.matches(star(1, 1, star_flag::kCrowded | star_flag::kEdge)));
  EXPECT_FALSE(q.matches(star(1, 1, star_flag::kEdge)));
}

TEST(StarQuery, NeededColumnsAndUnknownOnes) {
  StarQuery q;
  q.columns = {"psf_flux"};
  q.min_snr = 5;
  q.where = StarExpression::parse("width_x > 2");
  q.sort_column = "peak_value";
  EXPECT_EQ(q.needed_columns(),
            (std::vector<std::string>{"psf_flux", "peak_value", "snr", "width_x"}));
  q.columns = {"psf_flux", "fluxx"};
  EXPECT_THROW(q.needed_columns(), QueryError);
  q.columns = {};
  q.sort_column = "nope";
  EXPECT_THROW(q.needed_columns(), QueryError);
}

class QueryCatalogue : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("night.h5");
    CatalogueWriter w(path_, CatalogueMode::kCreate);
    for (std::int64_t id = 0; id < 12; ++id) {
      FrameResult f = test::fixture_frame(id, id == 4 ? 0 : 300 + static_cast<int>(id) * 17);
      for (const Star& s : f.stars) all_.push_back(s);
      w.append(f);
    }
    w.close();
  }
  test::TempDir dir_;
  std::string path_;
  std::vector<Star> all_;
};

TEST_F(QueryCatalogue, OneFrameReadsOnlyItsRowsAndColumns) {
  CatalogueReader r(path_);
  StarQuery q;
  q.frames = {7};
  q.columns = {"star_id", "psf_flux"};
  q.batch_rows = 100;  // several reads inside the frame
  q.whole_rows = false;
  std::vector<Star> got;
  const QueryStats st = run_query(r, q, [&](const Star& s) { got.push_back(s); });
  std::vector<Star> want;
  for (const Star& s : all_)
    if (s.frame_id == 7) want.push_back(s);
  EXPECT_EQ(st.rows_read, static_cast<std::int64_t>(want.size()));
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].frame_id, 7);
    EXPECT_EQ(got[i].star_id, want[i].star_id);
    if (std::isnan(want[i].psf_flux))
      EXPECT_TRUE(std::isnan(got[i].psf_flux));
    else
      EXPECT_EQ(got[i].psf_flux, want[i].psf_flux);
    // Columns not asked for are not read: they keep the fill value.
    EXPECT_TRUE(std::isnan(got[i].centroid_x));
    EXPECT_EQ(got[i].peak_x, -1);
  }
}

TEST_F(QueryCatalogue, FiltersSortAndLimitMatchABruteForceAnswer) {
  CatalogueReader r(path_);
  StarQuery q;
  q.frames = {2, 4, 9, 3};
  q.where = StarExpression::parse("psf_flux > 20000 and (flags & crowded) == 0");
  q.box = std::array<double, 4>{100, 1800, 0, 1500};
  q.sort_column = "psf_flux";
  q.descending = true;
  q.limit = 25;
  q.batch_rows = 64;
  std::vector<Star> got;
  run_query(r, q, [&](const Star& s) { got.push_back(s); });
  std::vector<Star> want;
  for (const Star& s : all_) {
    if (s.frame_id != 2 && s.frame_id != 9 && s.frame_id != 3) continue;
    const double x = std::isnan(s.centroid_x) ? s.peak_x : s.centroid_x;
    const double y = std::isnan(s.centroid_y) ? s.peak_y : s.centroid_y;
    if (s.psf_flux > 20000 && (s.flags & star_flag::kCrowded) == 0 && x >= 100 && x <= 1800 &&
        y >= 0 && y <= 1500)
      want.push_back(s);
  }
  std::stable_sort(want.begin(), want.end(),
                   [](const Star& a, const Star& b) { return a.psf_flux > b.psf_flux; });
  want.resize(25);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].frame_id, want[i].frame_id) << i;
    EXPECT_EQ(got[i].star_id, want[i].star_id) << i;
  }
}

TEST_F(QueryCatalogue, LimitWithoutSortStopsEarlyAndUnknownFrameThrows) {
  CatalogueReader r(path_);
  StarQuery q;
  q.limit = 10;
  q.batch_rows = 50;
  std::int64_t n = 0;
  const QueryStats st = run_query(r, q, [&](const Star&) { ++n; });
  EXPECT_EQ(n, 10);
  EXPECT_EQ(st.rows_read, 50);  // one batch, not the whole table
  q.frames = {99};
  EXPECT_THROW(run_query(r, q, [](const Star&) {}), CatalogueError);
}

TEST(StarWriter, CsvRoundTripsNumbersAndJsonUsesNull) {
  Star s = star(1234.5678901234567, 0.1 + 0.2, 5);
  s.background = NAN;
  std::ostringstream csv;
  StarWriter w(csv, OutputFormat::kCsv, {"frame_id", "psf_flux", "snr", "flags", "background"});
  w.row(s);
  w.finish();
  std::istringstream in(csv.str());
  std::string header, line;
  std::getline(in, header);
  std::getline(in, line);
  EXPECT_EQ(header, "frame_id,psf_flux,snr,flags,background");
  std::vector<std::string> cells;
  std::stringstream ls(line);
  for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
  ASSERT_EQ(cells.size(), 5u);
  EXPECT_EQ(cells[0], "3");
  double v = 0;
  std::from_chars(cells[1].data(), cells[1].data() + cells[1].size(), v);
  EXPECT_EQ(v, s.psf_flux);
  std::from_chars(cells[2].data(), cells[2].data() + cells[2].size(), v);
  EXPECT_EQ(v, s.snr);
  EXPECT_EQ(cells[3], "5");
  EXPECT_EQ(cells[4], "nan");

  std::ostringstream json;
  StarWriter j(json, OutputFormat::kJson, {"star_id", "background"});
  j.row(s);
  j.row(s);
  j.finish();
  EXPECT_EQ(json.str(),
            "[\n{\"star_id\": 7, \"background\": null},\n"
            "{\"star_id\": 7, \"background\": null}\n]\n");
  std::ostringstream empty;
  StarWriter e(empty, OutputFormat::kJson, {"star_id"});
  e.finish();
  EXPECT_EQ(empty.str(), "[]\n");
}

TEST(StarWriter, TableHasNamesUnitsAndAlignedRows) {
  std::ostringstream t;
  StarWriter w(t, OutputFormat::kTable, {"star_id", "psf_flux"});
  w.row(star(1500, 3, 0));
  w.finish();
  std::istringstream in(t.str());
  std::string names, units, row;
  std::getline(in, names);
  std::getline(in, units);
  std::getline(in, row);
  EXPECT_NE(names.find("psf_flux"), std::string::npos);
  EXPECT_NE(units.find("[adu]"), std::string::npos);
  EXPECT_EQ(names.size(), row.size());
  EXPECT_NE(row.find("1500"), std::string::npos);
  EXPECT_THROW(StarWriter(t, OutputFormat::kCsv, {"nope"}), QueryError);
  EXPECT_THROW(parse_output_format("xml"), QueryError);
}

}  // namespace
}  // namespace psfphot::io
