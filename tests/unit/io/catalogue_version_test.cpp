// Catalogue schema versions: the version-1 /frames row (before bias_adu and dark_bias_adu)
// is read with the new columns as NaN, and a resume refuses it without touching the file.
// Version-1 files are made here from current ones (support/old_catalogue.hpp).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/catalogue_schema.hpp"
#include "support/old_catalogue.hpp"
#include "support/test_support.hpp"
#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot::io {
namespace {

using test::fixture_frame;
using test::TempDir;

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// Frames 0 (5 stars), 1 (read failed), 2 (7 stars): the fixture's bias levels on 0 and 2.
void write_night(const std::string& path) {
  CatalogueWriter w(path, CatalogueMode::kCreate);
  w.append(fixture_frame(0, 5));
  w.append(test::fixture_failed_frame(1, FrameStatus::kReadFailed, "truncated"));
  w.append(fixture_frame(2, 7));
  w.close();
}

std::size_t frames_row_bytes(const std::string& path) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "frames", H5P_DEFAULT);
  hid_t t = H5Dget_type(d);
  const std::size_t n = H5Tget_size(t);
  H5Tclose(t);
  H5Dclose(d);
  H5Fclose(f);
  return n;
}

// The layout of the first catalogues, written down from the FrameRow of schema version 1
// (independent of the column list that builds make_frame_file_type).
TEST(CatalogueVersions, Version1RowIsTheFirstCataloguesRow) {
  hid_t t = make_frame_file_type(1);
  EXPECT_EQ(H5Tget_size(t), 1208u);
  const std::vector<std::pair<const char*, std::size_t>> want = {
      {"frame_id", 0},       {"path", 8},          {"status", 520},        {"status_name", 524},
      {"failed_step", 556},  {"message", 588},     {"filter", 1100},       {"n_stars", 1132},
      {"mjd_obs", 1136},     {"exptime_s", 1144},  {"psf_sigma_px", 1152}, {"sky_adu", 1160},
      {"sky_rms_adu", 1168}, {"total_ms", 1176},   {"worker_rank", 1184},  {"n_peaks", 1188},
      {"stars_start", 1192}, {"stars_count", 1200}};
  ASSERT_EQ(H5Tget_nmembers(t), static_cast<int>(want.size()));
  for (unsigned i = 0; i < want.size(); ++i) {
    char* name = H5Tget_member_name(t, i);
    EXPECT_STREQ(name, want[i].first);
    H5free_memory(name);
    EXPECT_EQ(H5Tget_member_offset(t, i), want[i].second) << want[i].first;
  }
  H5Tclose(t);

  // The current version's file type is the row this build writes.
  hid_t v2 = make_frame_file_type(2), row = make_frame_row_type();
  EXPECT_GT(H5Tequal(v2, row), 0);
  EXPECT_EQ(H5Tget_size(v2), sizeof(FrameRow));
  H5Tclose(v2);
  H5Tclose(row);

  // Reading version 1 fills the FrameRow fields it has, where they are in a FrameRow.
  hid_t rd = make_frame_read_type(1);
  EXPECT_EQ(H5Tget_size(rd), sizeof(FrameRow));
  EXPECT_EQ(H5Tget_nmembers(rd), 18);
  EXPECT_LT(H5Tget_member_index(rd, "bias_adu"), 0);
  EXPECT_EQ(H5Tget_member_offset(rd, H5Tget_member_index(rd, "total_ms")),
            offsetof(FrameRow, total_ms));
  H5Tclose(rd);
  H5Eclear2(H5E_DEFAULT);

  EXPECT_EQ(frame_column_since("sky_adu"), 1);
  EXPECT_EQ(frame_column_since("bias_adu"), 2);
  EXPECT_EQ(frame_column_since("dark_bias_adu"), 2);
  EXPECT_THROW(frame_column_since("bias"), std::invalid_argument);
  EXPECT_THROW(make_frame_file_type(0), std::invalid_argument);
  EXPECT_THROW(make_frame_read_type(kCatalogueSchemaVersion + 1), std::invalid_argument);
}

TEST(CatalogueVersions, BiasColumnsAreWrittenAndReadBack) {
  TempDir dir;
  const std::string path = dir.file("night.h5");
  write_night(path);
  EXPECT_EQ(frames_row_bytes(path), 1224u);
  CatalogueReader r(path);
  EXPECT_EQ(r.info().schema_version, 2);
  ASSERT_EQ(r.frames().size(), 3u);
  EXPECT_EQ(r.frames()[0].bias_adu, 480.0);
  EXPECT_EQ(r.frames()[0].dark_bias_adu, 0.0);
  EXPECT_TRUE(std::isnan(r.frames()[1].bias_adu));  // failed before any overscan
  EXPECT_TRUE(std::isnan(r.frames()[1].dark_bias_adu));
  EXPECT_EQ(r.frames()[2].bias_adu, 485.0);
  EXPECT_EQ(r.frames()[2].dark_bias_adu, 0.25);
}

TEST(CatalogueVersions, Version1CatalogueReadsWithNaNBias) {
  TempDir dir;
  const std::string path = dir.file("night.h5"), old = dir.file("old.h5");
  write_night(path);
  std::filesystem::copy_file(path, old);
  test::make_schema_version_1(old);
  ASSERT_EQ(frames_row_bytes(old), 1208u) << "the fixture did not make a version-1 table";

  CatalogueReader now(path), then(old);
  EXPECT_EQ(then.info().schema_version, 1);
  EXPECT_EQ(then.info().config_text, now.info().config_text);
  ASSERT_EQ(then.frames().size(), now.frames().size());
  for (std::size_t i = 0; i < now.frames().size(); ++i) {
    const FrameEntry &a = now.frames()[i], &b = then.frames()[i];
    EXPECT_EQ(b.frame_id, a.frame_id);
    EXPECT_EQ(b.path, a.path);
    EXPECT_EQ(b.status_name, a.status_name);
    EXPECT_EQ(b.message, a.message);
    EXPECT_EQ(b.n_stars, a.n_stars);
    EXPECT_EQ(b.mjd_obs, a.mjd_obs);
    EXPECT_EQ(b.sky_rms_adu, a.sky_rms_adu);  // the column just before the new ones
    EXPECT_EQ(b.total_ms, a.total_ms);        // and the one after them
    EXPECT_EQ(b.worker_rank, a.worker_rank);
    EXPECT_EQ(b.stars_start, a.stars_start);
    EXPECT_EQ(b.stars_count, a.stars_count);
    EXPECT_TRUE(std::isnan(b.bias_adu)) << "frame " << i;
    EXPECT_TRUE(std::isnan(b.dark_bias_adu)) << "frame " << i;
  }
  EXPECT_FALSE(std::isnan(now.frames()[0].bias_adu));
  EXPECT_EQ(then.star_rows(), 12);
  const std::vector<Star> a = now.stars_for_frames({0, 2}), b = then.stars_for_frames({0, 2});
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(test::same_bytes(a[i], b[i])) << i;
  EXPECT_EQ(then.star_column("background"), now.star_column("background"));
}

TEST(CatalogueVersions, ResumeOfAVersion1CatalogueIsRefusedAndLeavesItUnchanged) {
  TempDir dir;
  const std::string path = dir.file("old.h5");
  write_night(path);
  test::make_schema_version_1(path);
  const std::string before = slurp(path);
  // What a writer killed while compacting leaves beside the catalogue: a resume removes it,
  // but a refused one must refuse before (and before making its lock file).
  std::ofstream(path + ".compacting") << "leftover";
  EXPECT_THROW(check_resumable(path), CatalogueError);
  try {
    CatalogueWriter w(path, CatalogueMode::kResume);
    ADD_FAILURE() << "resumed a version-1 catalogue";
    w.append(fixture_frame(3, 4));
  } catch (const CatalogueError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("catalogue " + path + ": has catalogue schema version 1"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("this psfphot writes version 2 and cannot append to it"), std::string::npos)
        << what;
    // What to do instead: another output first; --overwrite named for what it costs.
    EXPECT_NE(what.find("another catalogue (-o NEW.h5)"), std::string::npos) << what;
    EXPECT_NE(what.find("the psfphot that started it"), std::string::npos) << what;
    EXPECT_NE(what.find("--overwrite would replace this file and discard the frames committed"),
              std::string::npos)
        << what;
    EXPECT_EQ(e.path(), path);
  }
  EXPECT_EQ(slurp(path), before) << "a refused resume must not change the file";
  EXPECT_FALSE(std::filesystem::exists(path + ".lock"));
  EXPECT_EQ(slurp(path + ".compacting"), "leftover") << "refused after removing the leftovers";
  std::filesystem::remove(path + ".compacting");
  CatalogueReader r(path);
  EXPECT_EQ(r.frames().size(), 3u);

  // Replacing it is still possible, and gives a current catalogue.
  {
    CatalogueWriter w(path, CatalogueMode::kOverwrite);
    w.append(fixture_frame(0, 5));
    w.close();
  }
  CatalogueReader fresh(path);
  EXPECT_EQ(fresh.info().schema_version, kCatalogueSchemaVersion);
  EXPECT_EQ(fresh.frames().at(0).bias_adu, 480.0);
  // A current catalogue, and a missing one (a resume creates it), pass the check.
  EXPECT_NO_THROW(check_resumable(path));
  EXPECT_NO_THROW(check_resumable(dir.file("missing.h5")));
  EXPECT_FALSE(std::filesystem::exists(path + ".lock"));
}

// A file whose /frames table is not the one its version number promises is refused by
// name, not misread.
TEST(CatalogueVersions, FramesTableMustMatchTheStatedVersion) {
  TempDir dir;
  const std::string path = dir.file("odd.h5");
  write_night(path);
  test::make_schema_version_1(path);
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "psfphot_schema_version", H5P_DEFAULT);
    const std::int64_t two = 2;
    ASSERT_GE(H5Awrite(a, H5T_NATIVE_INT64, &two), 0);
    H5Aclose(a);
    H5Fclose(f);
  }
  try {
    CatalogueReader r(path);
    ADD_FAILURE() << "read a version-1 table as version 2";
  } catch (const CatalogueError& e) {
    EXPECT_NE(std::string(e.what()).find("its /frames columns are not those of catalogue schema "
                                         "version 2"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace psfphot::io
