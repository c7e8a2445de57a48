#include "psfphot/io/catalogue.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "psfphot/version.hpp"
#include "support/test_support.hpp"
#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot::io {
namespace {

using test::fixture_frame;
using test::TempDir;

void expect_frame_stars(const CatalogueReader& r, std::int64_t id) {
  FrameResult want = fixture_frame(id);
  std::vector<Star> got = r.stars_for_frames({id});
  ASSERT_EQ(got.size(), want.stars.size()) << "frame " << id;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_TRUE(test::same_bytes(got[i], want.stars[i])) << "frame " << id << " star " << i;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

TEST(Catalogue, CreateAppendReopen) {
  TempDir dir;
  std::string path = dir.file("night.h5");
  CatalogueOptions opt;
  opt.config_text = "[detect]\nthreshold = 5.0\n";
  {
    CatalogueWriter w(path, CatalogueMode::kCreate, opt);
    w.append(fixture_frame(0));
    w.append(test::fixture_failed_frame(1, FrameStatus::kReadFailed, "file is truncated"));
    w.append(fixture_frame(2));
    EXPECT_EQ(w.frame_rows(), 3);
    EXPECT_EQ(w.star_rows(), test::fixture_star_count(0) + test::fixture_star_count(2));
    EXPECT_EQ(w.done_frame_ids(), (std::vector<std::int64_t>{0, 1, 2}));
    CloseReport rep = w.close();
    EXPECT_TRUE(rep.compaction_error.empty()) << rep.compaction_error;
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".lock"));
  CatalogueReader r(path);
  EXPECT_EQ(r.info().schema_version, kCatalogueSchemaVersion);
  EXPECT_EQ(r.info().star_schema_version, kStarSchemaVersion);
  EXPECT_EQ(r.info().software_version, kVersion);
  EXPECT_EQ(r.info().git_hash, kGitHash);
  EXPECT_EQ(r.info().config_text, opt.config_text);
  EXPECT_TRUE(
      std::regex_match(r.info().creation_time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << r.info().creation_time;
  ASSERT_EQ(r.frames().size(), 3u);
  const FrameEntry& bad = r.frames()[1];
  EXPECT_EQ(bad.status, static_cast<int>(FrameStatus::kReadFailed));
  EXPECT_EQ(bad.status_name, "read-failed");
  EXPECT_EQ(bad.message, "file is truncated");
  EXPECT_EQ(bad.path, "/data/night/broken_1.fits");
  EXPECT_EQ(bad.stars_count, 0);
  const FrameEntry& f2 = r.frames()[2];
  FrameResult want2 = fixture_frame(2);
  EXPECT_EQ(f2.filter, "R");
  EXPECT_EQ(f2.mjd_obs, want2.summary.mjd_obs);
  EXPECT_EQ(f2.total_ms, want2.total_ms);
  EXPECT_EQ(f2.worker_rank, want2.worker_rank);
  EXPECT_EQ(f2.n_peaks, want2.summary.n_peaks);
  EXPECT_EQ(f2.bias_adu, 485.0);  // the fixture's overscan levels, exact through the file
  EXPECT_EQ(f2.dark_bias_adu, 0.25);
  EXPECT_TRUE(std::isnan(bad.bias_adu)) << "a frame failed before its overscan has none";
  EXPECT_TRUE(std::isnan(bad.dark_bias_adu));
  expect_frame_stars(r, 0);
  expect_frame_stars(r, 2);
  EXPECT_TRUE(r.stars_for_frames({1}).empty());
  EXPECT_THROW(r.stars_for_frames({7}), CatalogueError);
}

TEST(Catalogue, FramesIndexChainsThroughStars) {
  TempDir dir;
  std::string path = dir.file("idx.h5");
  {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    for (int k = 0; k < 12; ++k) w.append(fixture_frame(k));
    w.close();
  }
  CatalogueReader r(path);
  std::int64_t end = 0;
  for (const FrameEntry& f : r.frames()) {
    EXPECT_EQ(f.stars_start, end) << "frame " << f.frame_id;
    EXPECT_EQ(f.stars_count, test::fixture_star_count(f.frame_id));
    EXPECT_EQ(f.n_stars, f.stars_count);
    end += f.stars_count;
  }
  EXPECT_EQ(end, r.star_rows());
  // Several frames at once come back in /stars order with only their rows.
  std::vector<Star> got = r.stars_for_frames({9, 3, 4});
  std::vector<Star> want;
  for (int k : {3, 4, 9})
    for (const Star& s : fixture_frame(k).stars) want.push_back(s);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_TRUE(test::same_bytes(got[i], want[i]));
  // Row ranges too.
  std::vector<Star> first = r.stars(0, 10);
  ASSERT_EQ(first.size(), 10u);
  EXPECT_TRUE(test::same_bytes(first[9], fixture_frame(0).stars[9]));
  EXPECT_EQ(r.stars(r.star_rows() - 2, 100).size(), 2u);
}

TEST(Catalogue, ColumnSubsetReads) {
  TempDir dir;
  std::string path = dir.file("cols.h5");
  {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    for (int k = 0; k < 4; ++k) w.append(fixture_frame(k));
    w.close();
  }
  CatalogueReader r(path);
  FrameResult want = fixture_frame(3);
  std::vector<Star> got = r.stars_for_frames({3}, {"psf_flux", "flags"});
  ASSERT_EQ(got.size(), want.stars.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].frame_id, 3);
    EXPECT_EQ(got[i].flags, want.stars[i].flags);
    if (std::isnan(want.stars[i].psf_flux))
      EXPECT_TRUE(std::isnan(got[i].psf_flux));
    else
      EXPECT_EQ(got[i].psf_flux, want.stars[i].psf_flux);
    EXPECT_TRUE(std::isnan(got[i].centroid_x)) << "not requested, not read";
  }
  std::vector<double> snr = r.star_column("snr", {3});
  ASSERT_EQ(snr.size(), want.stars.size());
  for (std::size_t i = 0; i < snr.size(); ++i)
    EXPECT_TRUE(snr[i] == want.stars[i].snr ||
                (std::isnan(snr[i]) && std::isnan(want.stars[i].snr)));
  std::vector<double> ids = r.star_column("frame_id");
  EXPECT_EQ(static_cast<std::int64_t>(ids.size()), r.star_rows());
  EXPECT_EQ(ids.back(), 3.0);
  EXPECT_THROW(r.stars_for_frames({3}, {"bogus"}), std::invalid_argument);
}

TEST(Catalogue, RefusesToOverwriteUnlessAsked) {
  TempDir dir;
  std::string path = dir.file("keep.h5");
  {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    w.append(fixture_frame(0));
    w.close();
  }
  std::string before = slurp(path);
  try {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    FAIL() << "an existing catalogue was opened for creation";
  } catch (const CatalogueError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(path), before) << "a refused create must not touch the file";
  {
    CatalogueWriter w(path, CatalogueMode::kOverwrite);
    w.append(fixture_frame(5));
    w.close();
  }
  CatalogueReader r(path);
  ASSERT_EQ(r.frames().size(), 1u);
  EXPECT_EQ(r.frames()[0].frame_id, 5);
}

TEST(Catalogue, NotACatalogueIsAClearError) {
  TempDir dir;
  std::string text = dir.file("notes.h5");
  std::ofstream(text) << "these are not the stars you are looking for\n";
  std::string empty = dir.file("empty.h5");
  std::ofstream{empty};
  std::string other = dir.file("other.h5");
  hid_t f = H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  struct Case {
    std::string path, expect;
  };
  for (const Case& c : {Case{text, "is not an HDF5 file"}, Case{empty, "empty file"},
                        Case{other, "not a psfphot catalogue"}}) {
    std::string before = slurp(c.path);
    for (int as_reader = 0; as_reader < 2; ++as_reader) {
      try {
        if (as_reader)
          CatalogueReader r(c.path);
        else
          CatalogueWriter w(c.path, CatalogueMode::kResume);
        ADD_FAILURE() << c.path << " opened";
      } catch (const CatalogueError& e) {
        std::string m = e.what();
        EXPECT_NE(m.find(c.path), std::string::npos) << m;
        EXPECT_NE(m.find(c.expect), std::string::npos) << m;
      }
    }
    EXPECT_EQ(slurp(c.path), before) << "resume must not modify " << c.path;
    EXPECT_FALSE(std::filesystem::exists(c.path + ".lock"));
  }
  EXPECT_THROW(CatalogueReader(dir.file("missing.h5")), CatalogueError);
}

TEST(Catalogue, UnwritableOrMissingFolderIsAClearError) {
  TempDir dir;
  std::string path;
  if (::geteuid() == 0) {
    path = "/sys/psfphot_catalogue_test.h5";  // root may write anywhere else
  } else {
    std::filesystem::create_directory(dir.path() / "ro");
    std::filesystem::permissions(
        dir.path() / "ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    path = dir.file("ro/cat.h5");
  }
  try {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    FAIL() << "created a catalogue in an unwritable folder";
  } catch (const CatalogueError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("is not writable"), std::string::npos) << e.what();
  }
  std::string missing = dir.file("no/such/folder/cat.h5");
  try {
    CatalogueWriter w(missing, CatalogueMode::kCreate);
    FAIL() << "created a catalogue in a missing folder";
  } catch (const CatalogueError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

TEST(Catalogue, OneWriterAtATime) {
  TempDir dir;
  std::string path = dir.file("busy.h5");
  CatalogueWriter w(path, CatalogueMode::kCreate);
  try {
    CatalogueWriter second(path, CatalogueMode::kResume);
    FAIL() << "two writers on one catalogue";
  } catch (const CatalogueError& e) {
    EXPECT_NE(std::string(e.what()).find("another process"), std::string::npos) << e.what();
  }
  w.append(fixture_frame(0));  // the first writer is unaffected
  w.close();
  CatalogueWriter again(path, CatalogueMode::kResume);
  EXPECT_EQ(again.done_frame_ids(), std::vector<std::int64_t>{0});
}

TEST(Catalogue, AppendRefusesDuplicatesAndForeignStars) {
  TempDir dir;
  CatalogueWriter w(dir.file("dup.h5"), CatalogueMode::kCreate);
  w.append(fixture_frame(3));
  EXPECT_THROW(w.append(fixture_frame(3)), CatalogueError);
  FrameResult odd = fixture_frame(4);
  odd.stars.at(0).frame_id = 99;
  EXPECT_THROW(w.append(odd), CatalogueError);
  w.append(fixture_frame(4));  // refusals are not failures of the file
  EXPECT_EQ(w.frame_rows(), 2);
}

TEST(Catalogue, ConfigTextUntilTheFirstFrame) {
  TempDir dir;
  std::string path = dir.file("cfg.h5");
  {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    EXPECT_TRUE(w.set_config_text("a = 1\n"));
    EXPECT_EQ(w.stored_config_text(), "a = 1\n");
    w.append(fixture_frame(0));
    EXPECT_FALSE(w.set_config_text("a = 2\n"));
    EXPECT_TRUE(w.set_config_text("a = 1\n"));
  }
  CatalogueWriter w(path, CatalogueMode::kResume);
  EXPECT_EQ(w.stored_config_text(), "a = 1\n");
  EXPECT_FALSE(w.set_config_text("a = 2\n"));
}

TEST(Catalogue, ResumeOnAMissingFileStartsOne) {
  TempDir dir;
  CatalogueWriter w(dir.file("fresh.h5"), CatalogueMode::kResume);
  EXPECT_FALSE(w.resume_report().resumed);
  EXPECT_TRUE(w.done_frame_ids().empty());
}

TEST(Catalogue, WriterWaitsForAReaderThatHoldsTheFile) {
  // A reader that opened the catalogue just before the writer (psfphot info, a polling
  // script) holds HDF5's file lock until it closes: the writer waits for it instead of
  // failing the night with "unable to lock file".
  TempDir dir;
  const std::string path = dir.file("held.h5");
  {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    w.append(fixture_frame(0));
    w.close();
  }
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const char c = f >= 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    usleep(1500 * 1000);  // hold the file (and its lock) for 1.5 s
    H5Fclose(f);
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y') << "the child could not open " << path;
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    EXPECT_TRUE(w.resume_report().resumed);
    w.append(fixture_frame(1));
    w.close();
  }
  int st = 0;
  waitpid(child, &st, 0);
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_EQ(CatalogueReader(path).frames().size(), 2u);
}

int stars_filters(const std::string& path) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "stars", H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist(d);
  int n = H5Pget_nfilters(dcpl);
  H5Pclose(dcpl);
  H5Dclose(d);
  H5Fclose(f);
  return n;
}

void expect_frames_300(const std::string& path, int n) {
  CatalogueReader r(path);
  ASSERT_EQ(r.frames().size(), static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) {
    std::vector<Star> got = r.stars_for_frames({k});
    FrameResult want = fixture_frame(k, 300);
    ASSERT_EQ(got.size(), 300u);
    for (std::size_t i = 0; i < got.size(); ++i)
      ASSERT_TRUE(test::same_bytes(got[i], want.stars[i]));
  }
}

TEST(Catalogue, CloseFinalizesCompressedKeepingContent) {
  TempDir dir;
  std::string path = dir.file("final.h5");
  CloseReport rep;
  {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    for (int k = 0; k < 30; ++k) w.append(fixture_frame(k, 300));
    rep = w.close(false);  // a stopped night: stays in its append form
  }
  EXPECT_FALSE(rep.compacted);
  EXPECT_EQ(stars_filters(path), 0);
  expect_frames_300(path, 30);
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    for (int k = 30; k < 40; ++k) w.append(fixture_frame(k, 300));
    rep = w.close();
  }
  EXPECT_TRUE(rep.compaction_error.empty()) << rep.compaction_error;
  EXPECT_TRUE(rep.compacted);
  EXPECT_LT(rep.bytes_after, rep.bytes_before);
  EXPECT_EQ(std::filesystem::file_size(path), rep.bytes_after);
  EXPECT_FALSE(std::filesystem::exists(path + ".compacting"));
  EXPECT_EQ(stars_filters(path), 2) << "shuffle + deflate";
  expect_frames_300(path, 40);
  // Appending to the finished file works too, and finalizing again drops its dead space.
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    for (int k = 40; k < 45; ++k) w.append(fixture_frame(k, 300));
    rep = w.close();
  }
  EXPECT_TRUE(rep.compaction_error.empty()) << rep.compaction_error;
  expect_frames_300(path, 45);
}

}  // namespace
}  // namespace psfphot::io
