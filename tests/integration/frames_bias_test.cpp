// The overscan (bias) level of every frame in the catalogue's /frames table: a night
// simulated with overscan columns and a bias of its own per exposure (psfphot simulate
// --overscan, truth "# overscan_bias_adu"), run by `psfphot run`, must carry each frame's
// true bias; a night without overscan carries NaN. An older (schema 1) catalogue of the
// same night still reads in info / query / score, and `run --resume` refuses it untouched
// while planning the night, before the masters are built.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "psfphot/io/catalogue.hpp"
#include "psfphot/io/table_csv.hpp"
#include "support/old_catalogue.hpp"
#include "support/test_support.hpp"

namespace psfphot {
namespace {
namespace fs = std::filesystem;
using test::run_command;

constexpr int kFrames = 4;
constexpr int kSize = 256;
constexpr int kOverscan = 16;

// How close the stored bias must be to the truth. The pipeline stores the median of the
// frame's overscan strip (16 columns x 256 rows = 4096 pixels) of a frame written as
// integers (BITPIX 16): the median of integers is a whole or half number, up to 0.5 ADU
// from the true level; its sampling error is 1.2533 x read noise (5 e- / 1.2 e-/ADU =
// 4.17 ADU) / sqrt(4096) = 0.08 ADU. 0.5 + 3 x 0.08 = 0.75 ADU, while the exposures' biases
// spread over +-20 ADU (checked below, so a constant or nominal value cannot pass).
constexpr double kBiasTolAdu = 0.75;

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto k = s.find(from); k != std::string::npos; k = s.find(from, k + to.size()))
    s.replace(k, from.size(), to);
  return s;
}

class FramesBias : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string exe = test::psfphot_exe();
    for (const bool overscan : {true, false}) {
      const std::string night = overscan ? with() : without();
      const auto sim = run_command(exe + " simulate -q --out " + night + " --frames " +
                                   std::to_string(kFrames) + " --size " + std::to_string(kSize) +
                                   " --stars 40 --seed 23 --darks 2 --flats 2" + " --threads 1" +
                                   (overscan ? " --overscan " + std::to_string(kOverscan) : ""));
      ASSERT_EQ(sim.exit_code, 0) << sim.out;
      const auto run =
          run_command(exe + " run " + night + "/night.toml --threads 1 -o " + night + "/cat.h5");
      ASSERT_EQ(run.exit_code, 0) << run.out;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string with() { return dir_->file("overscan"); }
  static std::string without() { return dir_->file("plain"); }
  static std::string psfphot(const std::string& args) { return test::psfphot_exe() + " " + args; }
  // frame id -> the truth of the science frame it was made from (by file name, not order).
  static std::map<std::int64_t, std::string> truth_files(const io::CatalogueReader& r) {
    std::map<std::int64_t, std::string> out;
    for (const auto& f : r.frames())
      out[f.frame_id] = fs::path(f.path).parent_path().parent_path().string() + "/truth/" +
                        fs::path(f.path).stem().string() + ".csv";
    return out;
  }
  static test::TempDir* dir_;
};
test::TempDir* FramesBias::dir_ = nullptr;

TEST_F(FramesBias, OverscanNightStoresEachFramesTrueBias) {
  io::CatalogueReader r(with() + "/cat.h5");
  ASSERT_EQ(r.frames().size(), static_cast<std::size_t>(kFrames));
  const auto truth = truth_files(r);
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& f : r.frames()) {
    ASSERT_EQ(f.status_name, "ok") << f.path << ": " << f.message;
    const double want =
        io::CsvTable::read(truth.at(f.frame_id)).comment_number("overscan_bias_adu");
    ASSERT_TRUE(std::isfinite(want)) << truth.at(f.frame_id);
    EXPECT_NEAR(f.bias_adu, want, kBiasTolAdu) << f.path;
    lo = std::min(lo, want);
    hi = std::max(hi, want);
    // The master dark was made from overscan-corrected darks: its strip holds ~0 ADU
    // (read noise averaged over 2 darks), measured but not a bias.
    EXPECT_TRUE(std::isfinite(f.dark_bias_adu)) << f.path;
    EXPECT_LT(std::abs(f.dark_bias_adu), 1.0) << f.path;
  }
  EXPECT_GT(hi - lo, 4 * kBiasTolAdu) << "the truth biases must differ for the test to mean much";
}

TEST_F(FramesBias, NightWithoutOverscanStoresNaN) {
  io::CatalogueReader r(without() + "/cat.h5");
  ASSERT_EQ(r.frames().size(), static_cast<std::size_t>(kFrames));
  for (const auto& f : r.frames()) {
    ASSERT_EQ(f.status_name, "ok") << f.path << ": " << f.message;
    EXPECT_TRUE(std::isnan(f.bias_adu)) << f.path << ": " << f.bias_adu;
    EXPECT_TRUE(std::isnan(f.dark_bias_adu)) << f.path << ": " << f.dark_bias_adu;
  }
  // Its truth has no overscan line (the simulator's files are as before without --overscan).
  EXPECT_FALSE(io::CsvTable::read(without() + "/truth/sci_0000.csv").comment("overscan_bias_adu"));
}

TEST_F(FramesBias, InfoShowsTheBias) {
  io::CatalogueReader r(with() + "/cat.h5");
  const auto res = run_command(psfphot("info --per-frame " + with() + "/cat.h5"));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  EXPECT_NE(res.out.find("  bias_adu      "), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("  dark_bias_adu "), std::string::npos) << res.out;
  char one[32];
  std::snprintf(one, sizeof one, " %9.2f ", r.frames().at(1).bias_adu);
  EXPECT_NE(res.out.find(one), std::string::npos) << "frame 1's bias '" << one << "'\n" << res.out;
  const auto plain = run_command(psfphot("info " + without() + "/cat.h5"));
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_NE(plain.out.find("  bias_adu      -\n"), std::string::npos) << plain.out;
}

// The same night's catalogue as schema version 1 wrote it: info, query and score read it
// (the bias shown as "-"), and a resume refuses it before building the masters or changing
// anything.
TEST_F(FramesBias, Version1CatalogueReadsAndRefusesResume) {
  const std::string now = with() + "/cat.h5", old = with() + "/old.h5";
  fs::copy_file(now, old, fs::copy_options::overwrite_existing);
  test::make_schema_version_1(old);

  const auto info = run_command(psfphot("info " + old));
  ASSERT_EQ(info.exit_code, 0) << info.out;
  EXPECT_NE(info.out.find("; schema 1, star schema 1"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("  bias_adu      -\n"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("frames      4: 4 ok, 0 failed"), std::string::npos) << info.out;

  const std::string q = " --frame 1-2 --format csv --columns all";
  const auto q_old = run_command(psfphot("query " + old + q));
  const auto q_now = run_command(psfphot("query " + now + q));
  ASSERT_EQ(q_old.exit_code, 0) << q_old.out;
  EXPECT_GT(q_old.out.size(), 1000u);
  EXPECT_EQ(q_old.out, q_now.out);

  const std::string s = " " + with() + "/truth/sci_0001.csv --frame sci_0001";
  const auto s_old = run_command(psfphot("score " + old + s));
  const auto s_now = run_command(psfphot("score " + now + s));
  ASSERT_EQ(s_old.exit_code, 0) << s_old.out;
  EXPECT_EQ(replace_all(s_old.out, old, now), s_now.out);

  // The refusal comes while the night is planned (exit 2), before the masters are built (no
  // "masters:" line), before the lock file and the log folder are made: a cluster job does
  // not spend its ranks' minutes on the masters only to be refused then.
  const std::string before = slurp(old);
  const auto res =
      run_command(psfphot("run " + with() + "/night.toml --threads 1 --resume -o " + old));
  EXPECT_EQ(res.exit_code, 2) << res.out;
  EXPECT_NE(res.out.find("catalogue " + old + ": has catalogue schema version 1"),
            std::string::npos)
      << res.out;
  EXPECT_NE(res.out.find("this psfphot writes version 2 and cannot append to it"),
            std::string::npos)
      << res.out;
  EXPECT_NE(res.out.find("another catalogue (-o NEW.h5)"), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("--overwrite would replace this file and discard the frames"),
            std::string::npos)
      << res.out;
  EXPECT_EQ(res.out.find("masters:"), std::string::npos) << res.out;
  EXPECT_EQ(slurp(old), before) << "the refused resume changed the file";
  EXPECT_FALSE(fs::exists(old + ".lock"));
  EXPECT_FALSE(fs::exists(old + ".logs"));

  // With darks that cannot be read, building the masters would fail the run ("calibration
  // frames: ..."): the version refusal is what is reported, so it came first.
  fs::create_directories(with() + "/bad_darks");
  std::ofstream(with() + "/bad_darks/dark_00.fits") << "not a FITS file\n";
  const std::string bad_toml = with() + "/bad_darks.toml";
  std::ofstream(bad_toml) << replace_all(slurp(with() + "/night.toml"), "\"darks/*.fits\"",
                                         "\"bad_darks/*.fits\"");
  const auto bad = run_command(psfphot("run " + bad_toml + " --threads 1 --resume -o " + old));
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("catalogue " + old + ": has catalogue schema version 1"),
            std::string::npos)
      << bad.out;
  EXPECT_EQ(bad.out.find("calibration frames"), std::string::npos) << bad.out;
  EXPECT_EQ(slurp(old), before) << "the refused resume changed the file";
  // ...and those darks do fail a run that gets that far (so the check above means something),
  // while a resume of the current catalogue builds its masters and logs the line.
  const std::string now_copy = with() + "/now_copy.h5";
  fs::copy_file(now, now_copy, fs::copy_options::overwrite_existing);
  const auto bad_now =
      run_command(psfphot("run " + bad_toml + " --threads 1 --resume -o " + now_copy));
  EXPECT_EQ(bad_now.exit_code, 1) << bad_now.out;
  EXPECT_NE(bad_now.out.find("calibration frames"), std::string::npos) << bad_now.out;
  const auto good_now =
      run_command(psfphot("run " + with() + "/night.toml --threads 1 --resume -o " + now_copy));
  EXPECT_EQ(good_now.exit_code, 0) << good_now.out;
  EXPECT_NE(good_now.out.find("masters:"), std::string::npos) << good_now.out;
}

}  // namespace
}  // namespace psfphot
