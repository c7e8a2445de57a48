// `psfphot simulate` end to end: the program writes a tiny night, refuses to write into it
// again without --overwrite, and rejects bad options before writing anything.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "support/test_support.hpp"

namespace psfphot {
namespace {

namespace fs = std::filesystem;
using test::psfphot_exe;
using test::run_command;
using test::TempDir;

std::string simulate(const std::string& out, const std::string& extra = "") {
  return psfphot_exe() + " simulate --out " + out +
         " --frames 2 --size 96x64 --stars 20 --darks 1 --flats 1 --seed 3 -q " + extra;
}

TEST(SimulateCli, WritesANightAndRefusesToOverwriteIt) {
  TempDir dir;
  const std::string out = dir.file("night");
  const test::CommandResult first = run_command(simulate(out));
  ASSERT_EQ(first.exit_code, 0) << first.out;
  EXPECT_NE(first.out.find("night.toml"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find(" s wall"), std::string::npos) << first.out;
  for (const char* f :
       {"science/sci_0000.fits", "science/sci_0001.fits", "darks/dark_00.fits",
        "flats/flat_00.fits", "truth/sci_0001.csv", "truth/frames.csv", "night.toml"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;

  const test::CommandResult again = run_command(simulate(out));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.out.find("not empty"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("--overwrite"), std::string::npos) << again.out;

  const test::CommandResult forced = run_command(simulate(out, "--overwrite --psf moffat"));
  EXPECT_EQ(forced.exit_code, 0) << forced.out;
  EXPECT_NE(forced.out.find("moffat"), std::string::npos) << forced.out;
}

TEST(SimulateCli, BadOptionsAreRefusedWithAMessage) {
  TempDir dir;
  // Option-parsing errors exit with CLI11's own codes (main.cpp), values we check ourselves
  // with kExitUsage (2); either way nothing is written.
  const test::CommandResult psf = run_command(simulate(dir.file("a"), "--psf airy"));
  EXPECT_NE(psf.exit_code, 0);
  EXPECT_NE(psf.out.find("gaussian"), std::string::npos) << psf.out;
  const test::CommandResult size =
      run_command(psfphot_exe() + " simulate --out " + dir.file("b") + " --size 12y5");
  EXPECT_EQ(size.exit_code, 2);
  EXPECT_NE(size.out.find("--size"), std::string::npos) << size.out;
  const test::CommandResult tiny =
      run_command(psfphot_exe() + " simulate --out " + dir.file("c") + " --size 4");
  EXPECT_EQ(tiny.exit_code, 2);
  EXPECT_NE(tiny.out.find("width"), std::string::npos) << tiny.out;
  EXPECT_NE(run_command(psfphot_exe() + " simulate --frames 3").exit_code, 0);  // no --out
  EXPECT_FALSE(fs::exists(dir.file("a")));
  EXPECT_FALSE(fs::exists(dir.file("b")));
  EXPECT_FALSE(fs::exists(dir.file("c")));
}

}  // namespace
}  // namespace psfphot
