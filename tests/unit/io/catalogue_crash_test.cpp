// The catalogue under crashes: half-written frames, a file-size limit, kill -9.
// Writers that must die run in forked children so this test process is unaffected.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "psfphot/io/catalogue.hpp"
#include "support/test_support.hpp"
#include "unit/io/catalogue_fixtures.hpp"

namespace psfphot::io {
namespace {

using test::fixture_frame;
using test::TempDir;

// Every committed frame of `path` is frame 0, 1, ... with exactly the fixture's stars.
std::int64_t expect_fixture_prefix(const std::string& path) {
  CatalogueReader r(path);
  std::int64_t k = 0;
  for (const FrameEntry& f : r.frames()) {
    EXPECT_EQ(f.frame_id, k);
    EXPECT_EQ(f.status_name, "ok");
    std::vector<Star> got = r.stars_for_frames({f.frame_id});
    FrameResult want = fixture_frame(f.frame_id);
    EXPECT_EQ(got.size(), want.stars.size()) << "frame " << f.frame_id;
    for (std::size_t i = 0; i < std::min(got.size(), want.stars.size()); ++i)
      if (!test::same_bytes(got[i], want.stars[i])) {
        ADD_FAILURE() << "frame " << f.frame_id << " star " << i << " differs";
        break;
      }
    ++k;
  }
  std::int64_t rows = 0;
  for (std::int64_t i = 0; i < k; ++i) rows += test::fixture_star_count(i);
  EXPECT_EQ(r.star_rows(), rows);
  return k;
}

// Resume `path` and write frames up to `total`; the result must equal an uninterrupted run.
void resume_and_finish(const std::string& path, std::int64_t total) {
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    std::int64_t done = static_cast<std::int64_t>(w.done_frame_ids().size());
    for (std::int64_t k = 0; k < done; ++k) EXPECT_TRUE(w.is_done(k));
    for (std::int64_t k = done; k < total; ++k) w.append(fixture_frame(k));
    CloseReport rep = w.close();
    EXPECT_TRUE(rep.compaction_error.empty()) << rep.compaction_error;
  }
  for (const char* leftover : {".lock", ".creating", ".compacting"})
    EXPECT_FALSE(std::filesystem::exists(path + leftover)) << leftover;
  EXPECT_EQ(expect_fixture_prefix(path), total);
}

// Raw HDF5 access to a closed catalogue, to forge what a crash leaves behind.
struct RawFile {
  hid_t file, stars, frames, star_type, frame_type;
  explicit RawFile(const std::string& path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    file = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    stars = H5Dopen2(file, "stars", H5P_DEFAULT);
    frames = H5Dopen2(file, "frames", H5P_DEFAULT);
    star_type = make_star_type();
    frame_type = make_frame_row_type();
  }
  ~RawFile() {
    H5Tclose(star_type);
    H5Tclose(frame_type);
    H5Dclose(stars);
    H5Dclose(frames);
    H5Fclose(file);
  }
  static hsize_t rows(hid_t d) {
    hid_t s = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(s, &n, nullptr);
    H5Sclose(s);
    return n;
  }
  void append(hid_t d, hid_t t, const void* data, hsize_t n) {
    hsize_t start = rows(d), size = start + n;
    ASSERT_GE(H5Dset_extent(d, &size), 0);
    if (!data) return;  // extent only: the rows read as the fill value
    hid_t fs = H5Dget_space(d);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, nullptr, &n, nullptr);
    hid_t ms = H5Screate_simple(1, &n, nullptr);
    ASSERT_GE(H5Dwrite(d, t, ms, fs, H5P_DEFAULT, data), 0);
    H5Sclose(ms);
    H5Sclose(fs);
  }
};

void write_frames(const std::string& path, std::int64_t n) {
  CatalogueWriter w(path, CatalogueMode::kCreate);
  for (std::int64_t k = 0; k < n; ++k) w.append(fixture_frame(k));
  w.close();
}

TEST(CatalogueCrash, ResumeDropsStarsWrittenWithoutTheirFramesRow) {
  TempDir dir;
  std::string path = dir.file("half.h5");
  write_frames(path, 3);
  FrameResult f3 = fixture_frame(3);
  {
    RawFile raw(path);  // the crash: frame 3's stars landed, its /frames row did not
    raw.append(raw.stars, raw.star_type, f3.stars.data(), f3.stars.size());
  }
  EXPECT_EQ(expect_fixture_prefix(path), 3) << "the reader sees committed frames only";
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    EXPECT_TRUE(w.resume_report().resumed);
    EXPECT_EQ(w.resume_report().frames_kept, 3);
    EXPECT_EQ(w.resume_report().frames_dropped, 0);
    EXPECT_EQ(w.resume_report().stars_dropped, static_cast<std::int64_t>(f3.stars.size()));
    EXPECT_EQ(w.done_frame_ids(), (std::vector<std::int64_t>{0, 1, 2}));
  }
  resume_and_finish(path, 6);
}

TEST(CatalogueCrash, ResumeDropsARowWhoseStarsNeverLanded) {
  TempDir dir;
  std::string path = dir.file("row.h5");
  write_frames(path, 2);
  FrameResult f2 = fixture_frame(2);
  ASSERT_GT(f2.stars.size(), 0u);
  {
    RawFile raw(path);  // the crash: extents and the row landed, the star chunks did not
    FrameRow row = make_frame_row(f2, static_cast<std::int64_t>(RawFile::rows(raw.stars)));
    raw.append(raw.stars, raw.star_type, nullptr, f2.stars.size());
    raw.append(raw.frames, raw.frame_type, &row, 1);
  }
  EXPECT_EQ(expect_fixture_prefix(path), 2);
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    EXPECT_EQ(w.resume_report().frames_dropped, 1);
    EXPECT_EQ(w.resume_report().stars_dropped, static_cast<std::int64_t>(f2.stars.size()));
  }
  resume_and_finish(path, 4);
}

TEST(CatalogueCrash, ResumeRedoesTrailingSkippedFrames) {
  TempDir dir;
  std::string path = dir.file("skip.h5");
  {
    CatalogueWriter w(path, CatalogueMode::kCreate);
    w.append(fixture_frame(0));
    w.append(fixture_frame(1));
    for (int k : {2, 3}) {  // what a run stopped by SIGTERM records for frames not done
      FrameResult s = test::fixture_failed_frame(k, FrameStatus::kSkipped, "run stopped");
      w.append(s);
      EXPECT_FALSE(w.is_done(k));
    }
    w.close();
  }
  {
    CatalogueWriter w(path, CatalogueMode::kResume);
    EXPECT_EQ(w.resume_report().frames_dropped, 2);
    EXPECT_EQ(w.done_frame_ids(), (std::vector<std::int64_t>{0, 1}));
  }
  resume_and_finish(path, 5);
}

// Reads everything the child wrote to `fd` until EOF.
std::string drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

TEST(CatalogueCrash, FileSizeLimitIsACleanErrorAndKeepsTheCatalogue) {
  TempDir dir;
  std::string path = dir.file("limited.h5");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string report;
    try {
      CatalogueWriter w(path, CatalogueMode::kCreate);
      rlimit rl{3u << 20, 3u << 20};  // 3 MiB: a full disk, as far as this process knows
      ::setrlimit(RLIMIT_FSIZE, &rl);
      std::int64_t k = 0;
      try {
        for (; k < 10000; ++k) w.append(fixture_frame(k));
      } catch (const CatalogueError& e) {
        report = std::to_string(k) + "\n" + e.what();
      }
      try {
        w.close();
      } catch (const CatalogueError&) {  // the file is still over the limit: expected
      }
    } catch (const std::exception& e) {
      report = std::string("-1\nunexpected: ") + e.what();
    }
    (void)!::write(fds[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string report = drain(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the writer died (SIGXFSZ?) instead of reporting";
  auto nl = report.find('\n');
  ASSERT_NE(nl, std::string::npos) << "no error was reported: " << report;
  std::int64_t committed = std::stoll(report.substr(0, nl));
  std::string message = report.substr(nl + 1);
  EXPECT_GE(committed, 1) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_NE(message.find("frame " + std::to_string(committed) + " was not committed"),
            std::string::npos)
      << message;
  std::int64_t n = expect_fixture_prefix(path);
  EXPECT_GE(n, committed) << "a committed frame was lost";
  EXPECT_LE(n, committed + 1);
  resume_and_finish(path, committed + 3);
}

// kill -9 of a writer at random moments (while creating, appending, flushing, closing
// or compacting): the catalogue opens with exactly the committed frames, and resuming it
// gives the same catalogue as an uninterrupted run.
TEST(CatalogueCrash, KillNineAtRandomMomentsLosesNothing) {
  constexpr std::int64_t kFrames = 40;
  // How long an uninterrupted child takes, to spread the kills over its whole life.
  auto run_child = [](const std::string& path, int fd) {
    std::int64_t k = 0;
    try {
      CatalogueWriter w(path, CatalogueMode::kResume);
      for (; k < kFrames; ++k) {
        w.append(fixture_frame(k));
        std::int64_t committed = k + 1;
        (void)!::write(fd, &committed, sizeof committed);
      }
      w.close();
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(0);
  };
  auto spawn = [&](const std::string& path, int* read_fd) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      run_child(path, fds[1]);
    }
    ::close(fds[1]);
    *read_fd = fds[0];
    return pid;
  };
  double lifetime_ms = 0;
  {
    TempDir dir;
    int fd;
    auto t0 = std::chrono::steady_clock::now();
    pid_t pid = spawn(dir.file("timing.h5"), &fd);
    drain(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    lifetime_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  for (unsigned seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    std::string path = dir.file("killed.h5");
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> when(0.0, lifetime_ms);
    int fd;
    pid_t pid = spawn(path, &fd);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(when(rng)));
    ::kill(pid, SIGKILL);
    std::string progress = drain(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::int64_t committed = 0;
    if (progress.size() >= sizeof committed)
      std::memcpy(&committed, progress.data() + progress.size() - sizeof committed,
                  sizeof committed);
    if (!std::filesystem::exists(path)) {
      EXPECT_EQ(committed, 0) << "frames were committed but the catalogue is gone";
    } else {
      std::int64_t n = expect_fixture_prefix(path);
      EXPECT_GE(n, committed) << "a committed frame was lost";
      EXPECT_LE(n, committed + 1) << "more frames than were written";
    }
    resume_and_finish(path, kFrames);
  }
}

}  // namespace
}  // namespace psfphot::io
