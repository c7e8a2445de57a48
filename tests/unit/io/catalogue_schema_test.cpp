#include "psfphot/io/catalogue_schema.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "support/test_support.hpp"
#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot::io {
namespace {

using test::TempDir;

// Every member of `type` is the column of the same index: name, offset, size, class.
void expect_type_matches(hid_t type, std::span<const ColumnInfo> cols, std::size_t record) {
  ASSERT_EQ(H5Tget_class(type), H5T_COMPOUND);
  EXPECT_EQ(H5Tget_size(type), record);
  ASSERT_EQ(H5Tget_nmembers(type), static_cast<int>(cols.size()));
  std::size_t covered = 0;
  for (unsigned i = 0; i < cols.size(); ++i) {
    char* name = H5Tget_member_name(type, i);
    EXPECT_STREQ(name, cols[i].name);
    H5free_memory(name);
    EXPECT_EQ(H5Tget_member_offset(type, i), cols[i].offset) << cols[i].name;
    hid_t m = H5Tget_member_type(type, i);
    EXPECT_EQ(H5Tget_size(m), cols[i].size) << cols[i].name;
    H5T_class_t cls = H5Tget_class(m);
    switch (cols[i].type) {
      case ColumnType::kFloat64: EXPECT_EQ(cls, H5T_FLOAT); break;
      case ColumnType::kString: EXPECT_EQ(cls, H5T_STRING); break;
      default: EXPECT_EQ(cls, H5T_INTEGER); break;
    }
    if (cols[i].type == ColumnType::kUInt32) {
      EXPECT_EQ(H5Tget_sign(m), H5T_SGN_NONE);
    }
    if (cols[i].type == ColumnType::kInt32) {
      EXPECT_EQ(H5Tget_sign(m), H5T_SGN_2);
    }
    H5Tclose(m);
    covered += cols[i].size;
  }
  EXPECT_EQ(covered, record) << "columns must cover every byte of the record";
}

TEST(CatalogueSchema, StarTypeIsTheStarRecord) {
  hid_t t = make_star_type();
  expect_type_matches(t, star_columns(), sizeof(Star));
  // Spot-check against the struct itself, not only the column list.
  EXPECT_EQ(H5Tget_member_offset(t, H5Tget_member_index(t, "centroid_x")),
            offsetof(Star, centroid_x));
  EXPECT_EQ(H5Tget_member_offset(t, H5Tget_member_index(t, "dec_deg")), offsetof(Star, dec_deg));
  EXPECT_EQ(H5Tget_member_offset(t, H5Tget_member_index(t, "flags")), offsetof(Star, flags));
  H5Tclose(t);
  EXPECT_EQ(star_columns().size(), 19u);
  EXPECT_EQ(std::string(star_columns().front().name), "frame_id");
  EXPECT_EQ(std::string(star_columns().back().name), "dec_deg");
}

TEST(CatalogueSchema, FrameRowTypeIsTheFrameRow) {
  hid_t t = make_frame_row_type();
  expect_type_matches(t, frame_columns(), sizeof(FrameRow));
  H5Tclose(t);
  std::set<std::string> names;
  for (const auto& c : frame_columns()) names.insert(c.name);
  for (const char* want :
       {"frame_id", "path", "status", "status_name", "failed_step", "message", "mjd_obs",
        "exptime_s", "filter", "n_stars", "psf_sigma_px", "sky_adu", "sky_rms_adu", "bias_adu",
        "dark_bias_adu", "worker_rank", "total_ms", "stars_start", "stars_count"})
    EXPECT_TRUE(names.count(want)) << want;
}

TEST(CatalogueSchema, EveryColumnHasUnitAndDescription) {
  auto unit_of = [](const char* name) -> std::string {
    for (const auto& c : star_columns())
      if (std::string(c.name) == name) return c.unit ? c.unit : "<none>";
    return "<missing>";
  };
  EXPECT_EQ(unit_of("centroid_x"), "pix");
  EXPECT_EQ(unit_of("psf_flux"), "adu");
  EXPECT_EQ(unit_of("background"), "adu / pix");
  EXPECT_EQ(unit_of("ra_deg"), "deg");
  EXPECT_EQ(unit_of("snr"), "");
  EXPECT_EQ(unit_of("flags"), "<none>");
  for (const auto& c : star_columns()) EXPECT_GT(std::strlen(c.description), 5u) << c.name;
  for (const auto& c : frame_columns()) EXPECT_GT(std::strlen(c.description), 5u) << c.name;
}

TEST(CatalogueSchema, StarsRoundTripBitForBit) {
  TempDir dir;
  std::string path = dir.file("rt.h5");
  std::vector<Star> stars = test::fixture_frame(4, 50).stars;
  const double inf = std::numeric_limits<double>::infinity();
  stars[1].centroid_x = -inf;
  stars[2].flags = 0xFFFFFFFFu;  // every bit, including ones not yet named
  stars[3].peak_x = std::numeric_limits<std::int32_t>::min();
  stars[4].frame_id = std::numeric_limits<std::int64_t>::max();
  ASSERT_TRUE(std::isnan(stars[3].psf_flux));  // the fixture's unmeasurable star

  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t t = make_star_type();
  hsize_t n = stars.size();
  hid_t s = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(f, "stars", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, stars.data()), 0);
  H5Dclose(d);
  H5Fclose(f);

  f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  d = H5Dopen2(f, "stars", H5P_DEFAULT);
  std::vector<Star> back(stars.size());
  ASSERT_GE(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data()), 0);
  for (std::size_t i = 0; i < stars.size(); ++i)
    EXPECT_TRUE(test::same_bytes(stars[i], back[i])) << "star " << i;

  // A subset type reads only its members and leaves the rest of the buffer alone.
  hid_t sub = make_star_subset_type({"frame_id", "psf_flux", "flags"});
  std::vector<Star> part(stars.size(), star_fill_value());
  ASSERT_GE(H5Dread(d, sub, H5S_ALL, H5S_ALL, H5P_DEFAULT, part.data()), 0);
  for (std::size_t i = 0; i < stars.size(); ++i) {
    EXPECT_EQ(part[i].frame_id, stars[i].frame_id);
    EXPECT_EQ(part[i].flags, stars[i].flags);
    EXPECT_EQ(std::isnan(part[i].psf_flux), std::isnan(stars[i].psf_flux));
    if (!std::isnan(stars[i].psf_flux)) {
      EXPECT_EQ(part[i].psf_flux, stars[i].psf_flux);
    }
    EXPECT_TRUE(std::isnan(part[i].centroid_x));
    EXPECT_EQ(part[i].star_id, -1);
  }
  // One column as doubles, integers converted by HDF5.
  hid_t col = make_double_column_type(star_columns(), "peak_y");
  std::vector<double> py(stars.size());
  ASSERT_GE(H5Dread(d, col, H5S_ALL, H5S_ALL, H5P_DEFAULT, py.data()), 0);
  for (std::size_t i = 0; i < stars.size(); ++i) EXPECT_EQ(py[i], stars[i].peak_y);
  H5Tclose(col);
  H5Tclose(sub);
  H5Dclose(d);
  H5Fclose(f);
  H5Tclose(t);
}

TEST(CatalogueSchema, UnknownOrRepeatedColumnsAreRefused) {
  EXPECT_THROW(make_star_subset_type({"centroid_z"}), std::invalid_argument);
  EXPECT_THROW(make_star_subset_type({"snr", "snr"}), std::invalid_argument);
  EXPECT_THROW(make_double_column_type(frame_columns(), "path"), std::invalid_argument);
  EXPECT_THROW(make_double_column_type(star_columns(), "nope"), std::invalid_argument);
}

TEST(CatalogueSchema, FrameRowCarriesTheResultAndCutsLongText) {
  FrameResult r = test::fixture_failed_frame(9, FrameStatus::kReadFailed, "truncated FITS");
  FrameRow row = make_frame_row(r, 1234);
  EXPECT_EQ(row.frame_id, 9);
  EXPECT_EQ(row.status, static_cast<std::int32_t>(FrameStatus::kReadFailed));
  EXPECT_EQ(field_text(row.status_name), "read-failed");
  EXPECT_EQ(field_text(row.message), "truncated FITS");
  EXPECT_EQ(field_text(row.failed_step), "read");
  EXPECT_EQ(row.stars_start, 1234);
  EXPECT_EQ(row.stars_count, 0);

  // 600 bytes of two-byte characters: cut on a character boundary, marked with "...".
  std::string longer;
  for (int i = 0; i < 300; ++i) longer += "\xC3\xA9";  // U+00E9
  r.message = longer;
  row = make_frame_row(r, 0);
  std::string cut = field_text(row.message);
  EXPECT_LT(cut.size(), kMessageBytes);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  std::string body = cut.substr(0, cut.size() - 3);
  EXPECT_EQ(body.size() % 2, 0u);
  EXPECT_EQ(body, longer.substr(0, body.size()));
  EXPECT_EQ(row.message[kMessageBytes - 1], '\0');
}

TEST(CatalogueSchema, NamesOfFlagsAndStatuses) {
  auto flags = flag_bit_names();
  ASSERT_EQ(flags.size(), star_flag::kCount);
  EXPECT_EQ(flags[0], "edge");
  EXPECT_EQ(flags[6], star_flag::name(star_flag::kFitFailed));
  auto st = status_names();
  ASSERT_EQ(st.size(), 8u);
  EXPECT_EQ(st[0], "ok");
  EXPECT_EQ(st[7], "skipped");
}

TEST(CatalogueSchema, AstropyMetadataListsEveryColumnWithUnits) {
  auto lines = astropy_table_meta(star_columns(), {{"note", "it's"}});
  ASSERT_EQ(lines.size(), 1 + star_columns().size() + 2);
  EXPECT_EQ(lines[0], "datatype:");
  EXPECT_NE(lines[7].find("{name: centroid_x, unit: 'pix', datatype: float64"), std::string::npos)
      << lines[7];
  EXPECT_EQ(lines[1].find("unit:"), std::string::npos) << "ids carry no unit";
  EXPECT_EQ(lines[lines.size() - 2], "meta: !!omap");
  EXPECT_EQ(lines.back(), "- {note: 'it''s'}");
}

}  // namespace
}  // namespace psfphot::io
