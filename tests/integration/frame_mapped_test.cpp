// psfphot frame maps its raw frame and master files and decodes them inside the calibration
// (io::map_fits, algo/calibrate.hpp): its stars and its calibrated frame must be byte for byte
// those of the read path (the same files compressed, which cfitsio reads), and bad files must
// still be errors naming the file: truncated (checked before mapping, never a SIGBUS), of the
// wrong size, a flat without a positive pixel.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "psfphot/io/fits.hpp"
#include "support/test_support.hpp"

namespace psfphot {
namespace {

namespace fs = std::filesystem;
using test::run_command;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The same image written tile-compressed (lossless): read through cfitsio, never mapped.
void compress_copy(const std::string& from, const std::string& to, int bitpix, double bzero) {
  const io::FitsImage img = io::read_fits(from);
  io::FitsWriteOptions o;
  o.bitpix = bitpix;
  o.bzero = bzero;
  o.compress = true;
  io::write_fits(to, img.pixels.cview(), img.header.cards, o);
  ASSERT_EQ(0, std::memcmp(io::read_fits(to).pixels.data(), img.pixels.data(),
                           img.pixels.size() * sizeof(float)));
}

class FrameMapped : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string exe = test::psfphot_exe(), d = night();
    auto r = run_command(exe + " simulate --out " + d +
                         " --frames 1 --size 300x256 --stars 80 --seed 8 --darks 2 --flats 2 -q");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_command(exe + " master dark " + d + "/darks/*.fits -o " + d + "/mdark.fits");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_command(exe + " master flat " + d + "/flats/*.fits --dark " + d + "/mdark.fits -o " +
                    d + "/mflat.fits");
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string night() { return dir_->file("night"); }
  static std::string file(const std::string& name) { return dir_->file(name); }
  // psfphot frame on `sci` with the masters, output files named after `tag`.
  static test::CommandResult frame(const std::string& sci, const std::string& dark,
                                   const std::string& flat, const std::string& tag,
                                   int threads = 2) {
    return run_command(test::psfphot_exe() + " frame " + sci + " --dark " + dark + " --flat " +
                       flat + " --threads " + std::to_string(threads) + " -o " +
                       file(tag + ".csv") + " --write-calibrated " + file(tag + ".fits"));
  }
  static test::TempDir* dir_;
};
test::TempDir* FrameMapped::dir_ = nullptr;

TEST_F(FrameMapped, MappedFilesGiveTheReadPathsBytes) {
  const std::string d = night(), sci = d + "/science/sci_0000.fits";
  compress_copy(sci, file("sci.fits.fz"), 16, 32768.0);
  compress_copy(d + "/mdark.fits", file("mdark.fits.fz"), -32, 0.0);
  compress_copy(d + "/mflat.fits", file("mflat.fits.fz"), -32, 0.0);
  auto r = frame(file("sci.fits.fz"), file("mdark.fits.fz"), file("mflat.fits.fz"), "read");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (int threads : {1, 2}) {
    const std::string tag = "mapped" + std::to_string(threads);
    r = frame(sci, d + "/mdark.fits", d + "/mflat.fits", tag, threads);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(slurp(file(tag + ".csv")), slurp(file("read.csv"))) << threads << " threads";
    EXPECT_EQ(slurp(file(tag + ".fits")), slurp(file("read.fits"))) << threads << " threads";
  }
  // Mixed: a mapped raw frame with read masters, a read raw frame with mapped masters.
  r = frame(sci, file("mdark.fits.fz"), file("mflat.fits.fz"), "mixed1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(slurp(file("mixed1.csv")), slurp(file("read.csv")));
  r = frame(file("sci.fits.fz"), d + "/mdark.fits", d + "/mflat.fits", "mixed2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(slurp(file("mixed2.fits")), slurp(file("read.fits")));
}

TEST_F(FrameMapped, BadFilesAreErrorsNamingTheFile) {
  const std::string d = night(), sci = d + "/science/sci_0000.fits";
  // Each file cut short by 5000 bytes: the size is checked before anything is mapped.
  for (const std::string which : {"sci", "dark", "flat"}) {
    const std::string src =
        which == "sci" ? sci : d + (which == "dark" ? "/mdark.fits" : "/mflat.fits");
    const std::string cut = file("cut_" + which + ".fits");
    fs::copy_file(src, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, fs::file_size(src) - 5000);
    auto r = frame(which == "sci" ? cut : sci, which == "dark" ? cut : d + "/mdark.fits",
                   which == "flat" ? cut : d + "/mflat.fits", "cut_" + which);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find(cut + ": file truncated: the header declares"), std::string::npos)
        << r.out;
  }
  // A flat of zeros has no norm; a dark of another size cannot calibrate the frame.
  io::FitsImage flat = io::read_fits(d + "/mflat.fits");
  for (std::size_t i = 0; i < flat.pixels.size(); ++i) flat.pixels.data()[i] = 0.f;
  io::write_fits(file("zero_flat.fits"), flat.pixels.cview());
  auto r = frame(sci, d + "/mdark.fits", file("zero_flat.fits"), "zero_flat");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(file("zero_flat.fits") + ": flat has no positive finite pixel"),
            std::string::npos)
      << r.out;
  Image<float> small(100, 80, 3.f);
  io::write_fits(file("small_dark.fits"), small.cview(), {io::card("EXPTIME", 60.0)});
  r = frame(sci, file("small_dark.fits"), d + "/mflat.fits", "small_dark");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("dark is 100x80 but the science frame is 300x256"), std::string::npos)
      << r.out;
  r = frame(file("missing.fits"), d + "/mdark.fits", d + "/mflat.fits", "missing");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(file("missing.fits") + ": file does not exist"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace psfphot
