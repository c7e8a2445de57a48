#pragma once
// Uncompressed FITS image pixels read straight from the file (pread in chunks, on the
// OpenMP threads) and converted by psfphot (fits_pixels.hpp) instead of through cfitsio's
// buffers; internal to io/ (read_fits uses it where it applies).
#include <fitsio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "psfphot/io/fits.hpp"

namespace psfphot::io::detail {

// Reads the n pixels of `img` (its header already parsed from the open file `f`, opened
// from `spec`) into dst. The values are cfitsio's fits_read_pix(TFLOAT, nulval = NaN), bit
// for bit. Returns false, having read nothing, where cfitsio must do it (compressed, a BLANK
// keyword, scaled floats, a file cfitsio did not open in place); throws FitsError naming
// `spec` when the file is shorter than its header says. Thread-safety: independent calls
// may run concurrently.
bool read_pixels_direct(fitsfile* f, const std::string& spec, const FitsImage& img, float* dst,
                        std::size_t n);

// The byte offset of the pixel data of `img` (n pixels) in its file when the cases above
// allow reading it there directly; nullopt otherwise.
std::optional<std::int64_t> direct_data_start(fitsfile* f, const std::string& spec,
                                              const FitsImage& img, std::size_t n);

// The file of `spec` mapped read-only (and populated), `data` pointing `data_start` bytes in;
// data == nullptr when it cannot be mapped (or is shorter than data_start + bytes).
struct MappedData {
  const unsigned char* data = nullptr;
  std::shared_ptr<const void> keep;  // unmaps when the last copy goes
};
MappedData map_data_unit(const std::string& spec, std::int64_t data_start, std::size_t bytes);

}  // namespace psfphot::io::detail
