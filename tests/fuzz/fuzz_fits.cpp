// libFuzzer target: psfphot's FITS reading path (io::read_fits_header, io::read_fits) on
// arbitrary bytes. Any outcome but a value or io::FitsError is a bug: a crash, a sanitizer
// report, another exception type, or an image whose shape disagrees with its header.
// Built by -DPSFPHOT_FUZZ=ON (CMakePresets.json "fuzz", bench/fuzz.sh); the same function
// replays tests/fuzz/regressions/fits/ in the normal test suite (fuzz_replay.cpp).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "psfphot/io/fits.hpp"

namespace {

// One file per process, rewritten for every input: read_fits takes a path (cfitsio's
// extended file name syntax included), which is the path the pipeline uses. Removed at
// exit, so test runs leave nothing behind in TMPDIR.
struct ScratchFile {
  std::string path;
  ~ScratchFile() { ::unlink(path.c_str()); }
};

const std::string& scratch_path() {
  static const ScratchFile f{[] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/psfphot-fuzz-fits-" +
           std::to_string(::getpid()) + ".fits";
  }()};
  return f.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = scratch_path();
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  } else {
    std::abort();
  }
  try {
    psfphot::io::FitsImage h = psfphot::io::read_fits_header(path);
    const long w = std::stol(h.header.card("NAXIS1")), hgt = std::stol(h.header.card("NAXIS2"));
    // Compressed images may legitimately declare more pixels than the file holds; keep
    // the fuzzer's memory bounded (uncompressed sizes are checked by read_fits itself).
    if (h.compressed && w * hgt > (1L << 22)) return 0;
    psfphot::io::FitsImage img = psfphot::io::read_fits(path);
    if (img.pixels.width() != w || img.pixels.height() != hgt) std::abort();
  } catch (const psfphot::io::FitsError&) {
    // The expected answer to bad bytes.
  }
  return 0;
}
