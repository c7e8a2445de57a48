#pragma once
// Uncompressed FITS image pixels read straight from the file (pread in chunks, on the OpenMP
// threads, or mapped with mmap) and decoded by psfphot (core/encoded_image.hpp) instead of
// through cfitsio's buffers; internal to io/ (read_fits and map_fits use it where it applies).
#include <fitsio.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "psfphot/core/encoded_image.hpp"
#include "psfphot/io/fits.hpp"

namespace psfphot::io::detail {

struct FitsCloser {
  void operator()(fitsfile* f) const;
};
using FitsPtr = std::unique_ptr<fitsfile, FitsCloser>;

// Opens the image HDU of `spec` and fills `out` but its pixels: path, HDU, BITPIX, scaling,
// shape, header facts. Throws FitsError naming `spec` (missing, empty, a folder, not a FITS
// image, not 2-D, an implausible size).
FitsPtr open_image(const std::string& spec, FitsImage& out);

// Throws FitsError ("file truncated: ...") when an uncompressed data unit is shorter in the
// file than the header declares.
void check_data_size(fitsfile* f, const std::string& spec, const FitsImage& out);

// Reads the pixels of `out` (opened by open_image) through cfitsio's fits_read_pix.
void read_pixels_cfitsio(fitsfile* f, const std::string& spec, FitsImage& out);

// Where the pixels of a plain image lie in its file, when psfphot may decode them itself.
struct DirectData {
  std::string file;        // the file name (spec without its [HDU] suffix)
  std::size_t offset = 0;  // byte offset of the first pixel in the file
  std::size_t bytes = 0;   // bytes of the n pixels
  PixelEncoding encoding = PixelEncoding::kFloat;
};

// The data unit of `img` (its header already parsed from the open file `f`, opened from
// `spec`), n pixels, where its values decoded by decode_pixels are cfitsio's
// fits_read_pix(TFLOAT, nulval = NaN) bit for bit; nullopt where cfitsio must read it
// (compressed, a BLANK keyword, scaled floats, a file cfitsio did not open in place: an image
// section, a filter, a gzipped file).
std::optional<DirectData> direct_data(fitsfile* f, const std::string& spec, const FitsImage& img,
                                      std::size_t n);

// Reads the n pixels at `d` into dst (pread in chunks on the OpenMP threads). Throws
// FitsError naming `spec` when the file is shorter than its header says (or cannot be
// opened). Thread-safety: independent calls may run concurrently.
void read_pixels_direct(const std::string& spec, const DirectData& d, const FitsImage& img,
                        float* dst, std::size_t n);

}  // namespace psfphot::io::detail
