// The night runner end to end: the same catalogue for any ranks x threads layout, kill -9
// then --resume equals an uninterrupted run, SIGTERM stops cleanly (exit 4) and resumes,
// failed frames are recorded and the night goes on (exit 3), existing catalogues are
// never overwritten silently. Runs the real `psfphot run` under mpirun.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "psfphot/io/catalogue.hpp"
#include "support/night_fixture.hpp"

namespace psfphot {
namespace {

using test::mpirun;
using test::run_command;

class NightRun : public test::SimulatedNightTest {
 protected:
  static void SetUpTestSuite() { set_up_night({.frames = 8, .seed = 5, .darks = 3, .flats = 3}); }
  static void TearDownTestSuite() { tear_down_night(); }
};

TEST_F(NightRun, SameCatalogueForAnyRanksAndThreads) {
  struct Layout {
    int ranks, threads;
  };
  for (Layout l : {Layout{1, 2}, Layout{2, 1}, Layout{2, 2}, Layout{3, 1}}) {
    const std::string cat =
        out("layout_" + std::to_string(l.ranks) + "x" + std::to_string(l.threads) + ".h5");
    auto r = run_command(mpirun(l.ranks) + " run " + night_dir() + "/night.toml -q --threads " +
                         std::to_string(l.threads) + " -o " + cat);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    expect_same_as_reference(cat);
  }
}

TEST_F(NightRun, KillNineAtRandomMomentsThenResumeEqualsUninterrupted) {
  std::mt19937 rng(2026);
  std::uniform_int_distribution<int> delay_ms(300, 4000);
  for (int trial = 0; trial < 3; ++trial) {
    const std::string cat = out("killed_" + std::to_string(trial) + ".h5");
    const int ranks = 1 + trial % 2;
    pid_t pid = test::start_job(mpirun(ranks) + " run " + night_dir() +
                                "/night.toml -q --threads 1 -o " + cat);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    test::kill_job(pid);  // the whole job: mpirun and every rank
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (std::filesystem::exists(cat)) {
      // Whatever was committed is readable right now, before any repair.
      EXPECT_NO_THROW(io::CatalogueReader rd(cat)) << "trial " << trial;
    }
    auto r = run_command(mpirun(2) + " run " + night_dir() +
                         "/night.toml -q --threads 1 --resume -o " + cat);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    expect_same_as_reference(cat);
  }
}

TEST_F(NightRun, SigtermStopsCleanlyAndResumeCompletes) {
  // One process (no mpirun): SIGTERM as Slurm sends it to a task at the time limit.
  // Under mpirun the ranks are signalled the same way (jobs/psfphot.slurm, ctest -L slurm).
  const std::string cat = out("sigterm.h5");
  pid_t pid = test::start_job(test::psfphot_exe() + " run " + night_dir() +
                              "/night.toml -q --threads 1 -o " + cat);
  for (int i = 0; i < 400 && !std::filesystem::exists(cat); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGTERM);
  const int code = test::wait_exit(pid);
  EXPECT_TRUE(code == 4 || code == 0) << "exit " << code;  // 0 only if it had finished
  {
    io::CatalogueReader rd(cat);  // closed cleanly: readable
    EXPECT_LE(rd.frames().size(), 8u);
  }
  auto r = run_command(test::psfphot_exe() + " run " + night_dir() + "/night.toml -q --resume -o " +
                       cat);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_same_as_reference(cat);
}

TEST_F(NightRun, BrokenFrameIsRecordedAndTheNightGoesOn) {
  // A copy of the night with one truncated and one non-FITS science frame.
  const std::string d = out("broken_night");
  std::filesystem::copy(night_dir(), d, std::filesystem::copy_options::recursive);
  std::filesystem::resize_file(d + "/science/sci_0003.fits", 2880 * 2);
  { std::ofstream(d + "/science/sci_0009.fits") << "not a FITS file\n"; }
  const std::string cat = out("broken.h5");
  auto r = run_command(mpirun(2) + " run " + d + "/night.toml -q -o " + cat);
  EXPECT_EQ(r.exit_code, 3) << r.out;  // finished, some frames failed
  io::CatalogueReader rd(cat);
  ASSERT_EQ(rd.frames().size(), 9u);
  int ok = 0;
  for (const auto& f : rd.frames()) {
    if (f.path.find("sci_0003") != std::string::npos ||
        f.path.find("sci_0009") != std::string::npos) {
      EXPECT_EQ(f.status_name, "read-failed") << f.path;
      EXPECT_NE(f.message.find(f.path.substr(f.path.rfind('/') + 1)), std::string::npos)
          << f.message;
      EXPECT_EQ(f.n_stars, 0);
    } else {
      EXPECT_EQ(f.status, 0) << f.path << ": " << f.message;
      ++ok;
    }
  }
  EXPECT_EQ(ok, 7);
}

TEST_F(NightRun, ExistingCatalogueNeedsResumeOrOverwrite) {
  const std::string cat = out("existing.h5");
  std::filesystem::copy_file(reference(), cat);
  const auto size_before = std::filesystem::file_size(cat);
  auto r = run_command(test::psfphot_exe() + " run " + night_dir() + "/night.toml -q -o " + cat);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--resume"), std::string::npos) << r.out;
  EXPECT_EQ(std::filesystem::file_size(cat), size_before);  // untouched
  auto o = run_command(test::psfphot_exe() + " run " + night_dir() +
                       "/night.toml -q --overwrite -o " + cat);
  EXPECT_EQ(o.exit_code, 0) << o.out;
  expect_same_as_reference(cat);
  // --resume of a finished night does nothing and changes nothing.
  auto again = run_command(test::psfphot_exe() + " run " + night_dir() +
                           "/night.toml -q --resume -o " + cat);
  EXPECT_EQ(again.exit_code, 0) << again.out;
  expect_same_as_reference(cat);
}

TEST_F(NightRun, RunLevelErrorsAreReportedBeforeAnyWork) {
  test::TempDir d;
  std::ofstream(d.file("nomatch.toml"))
      << "[night]\nscience = [\"nothing/*.fits\"]\noutput = \"c.h5\"\n";
  auto r = run_command(test::psfphot_exe() + " run " + d.file("nomatch.toml"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("matches no file"), std::string::npos) << r.out;
  std::ofstream(d.file("badkey.toml")) << "[night]\nscience = [\"x\"]\n[photometry]\nwindow = 3\n";
  r = run_command(test::psfphot_exe() + " run " + d.file("badkey.toml"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("unknown key photometry.window"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(d.file("c.h5")));
}

}  // namespace
}  // namespace psfphot
