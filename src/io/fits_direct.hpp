#pragma once
// Uncompressed FITS image pixels read straight from the file (pread in chunks, on the
// OpenMP threads) and converted by psfphot (fits_pixels.hpp) instead of through cfitsio's
// buffers; internal to io/ (read_fits uses it where it applies).
#include <fitsio.h>

#include <cstddef>
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

}  // namespace psfphot::io::detail
