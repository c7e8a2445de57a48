#pragma once
// Conversion of FITS pixel bytes (big-endian, as on disk) to float, exactly as cfitsio's
// fits_read_pix(TFLOAT, nulval = NaN) converts them; internal to io/ (fits_direct.cpp reads
// uncompressed BITPIX 8, 16, 32, -32 and -64 images through these). Own file so that it can be
// built at -O3 (vectorised) without the rest of io/.
#include <cstddef>

namespace psfphot::io::detail {

// BITPIX 16: (float)v when bscale = 1 and bzero = 0, else (float)(v * bscale + bzero) in
// double (no BLANK handling: callers use cfitsio when a BLANK keyword exists).
void be_int16_to_float(const unsigned char* bytes, std::size_t n, double bscale, double bzero,
                       float* out);

// BITPIX 8 and 32: the same rule as BITPIX 16 (unsigned bytes; big-endian int32).
void be_uint8_to_float(const unsigned char* bytes, std::size_t n, double bscale, double bzero,
                       float* out);
void be_int32_to_float(const unsigned char* bytes, std::size_t n, double bscale, double bzero,
                       float* out);

// BITPIX -32, unscaled, with cfitsio's null check (exponent all ones -> NaN, exponent zero
// -> +0): psfphot::convert_fits_float32 (core/float_plane.hpp), shared with the mapped masters.

// BITPIX -64, unscaled, with cfitsio's null check on the double: exponent all ones -> NaN,
// exponent zero -> +0, every other value rounded to float (values beyond the float range
// become +-inf, as in cfitsio's conversion).
void be_float64_to_float(const unsigned char* bytes, std::size_t n, float* out);

}  // namespace psfphot::io::detail
