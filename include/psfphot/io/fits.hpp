#pragma once
// FITS input/output with cfitsio (https://heasarc.gsfc.nasa.gov/fitsio/).
//
// Reading: a 2-D image HDU of any BITPIX (8, 16, 32, 64, -32, -64) is returned as float
// ADU with BZERO/BSCALE applied as cfitsio applies them (uint16 cameras with BZERO 32768
// included); integer BLANK values become NaN; for BITPIX -32, NaN and infinities become NaN
// and subnormals +0 (cfitsio's null check). Uncompressed BITPIX 16 and -32 images are read
// from the file and converted by psfphot itself (faster; the same values bit for bit), all
// others through cfitsio. The HDU is chosen with cfitsio's extended file-name
// syntax: "file.fits" (first HDU holding an image), "file.fits[1]" (HDU number, 0 =
// primary), "file.fits[SCI]" (EXTNAME). Tile-compressed images (fpack, .fz) are read
// transparently. Coordinates stay 0-based: FITS pixel (1,1) is Image(0,0).
//
// Errors: every failure throws FitsError whose what() names the file and the problem,
// including cfitsio's status text. Nothing aborts.
//
// Thread-safety: cfitsio is built reentrant on Debian; each call opens its own handle,
// so different files may be read concurrently. Do not share one path for writing.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "psfphot/core/float_plane.hpp"
#include "psfphot/core/header.hpp"
#include "psfphot/core/image.hpp"

namespace psfphot::io {

class FitsError : public std::runtime_error {
 public:
  FitsError(const std::string& path, const std::string& what, int cfitsio_status = 0);
  const std::string& path() const { return path_; }
  int status() const { return status_; }

 private:
  std::string path_;
  int status_;
};

struct FitsImage {
  std::string path;      // as given (including any [HDU] suffix)
  int hdu_number = 0;    // 0 = primary HDU
  int bitpix = 0;        // on-disk BITPIX (ZBITPIX for compressed images)
  int equiv_bitpix = 0;  // cfitsio's equivalent type after scaling (e.g. 20 = uint16)
  double bzero = 0.0;
  double bscale = 1.0;
  bool compressed = false;
  HeaderFacts header;
  Image<float> pixels;  // ADU, scaled; NaN where BLANK
};

// Read the image in `spec`. Throws FitsError.
FitsImage read_fits(const std::string& spec);

// Read only the header facts and shape (no pixels). Throws FitsError.
FitsImage read_fits_header(const std::string& spec);

// read_fits, except that the pixels of an uncompressed BITPIX -32 image (BSCALE 1, BZERO 0,
// no BLANK, a plain file cfitsio opened in place) are not copied but mapped read-only from
// the file: `mapped` reads them (core/float_plane.hpp: the values read_fits gives, bit for
// bit) while `mapping` lives, and image.pixels stays empty. Any other image is read as by
// read_fits (mapped empty). Same checks and errors. The file must not be truncated or
// rewritten in place while the mapping is read (a read past its new end, or a disk error,
// is a SIGBUS; replacing it by a rename is safe): meant for short runs over master frames
// (`psfphot frame`), not a night's. Only the data unit's pages are mapped.
struct MappedFits {
  FitsImage image;
  FloatPlane mapped;
  std::shared_ptr<const void> mapping;
  bool is_mapped() const { return !mapped.empty(); }
};
MappedFits read_fits_mapped(const std::string& spec);

struct FitsWriteOptions {
  int bitpix = -32;  // 8, 16, 32, -32, -64 (with 16 + bzero 32768: uint16)
  double bscale = 1.0;
  double bzero = 0.0;
  bool overwrite = false;  // refuse to replace an existing file unless set
  bool compress = false;   // Rice tile compression (as fpack does)
};

// Write `pixels` as the primary HDU. `cards` (e.g. a carried-over input header) are
// appended, except structural ones (BITPIX, NAXISn, BZERO, BSCALE, ...), which this
// function owns. Values outside the BITPIX range are clipped by cfitsio with an error.
// Written to a temporary name in the same folder and renamed, so a failed write never
// leaves a half file under the final name. Throws FitsError.
void write_fits(const std::string& path, ImageView<const float> pixels,
                const std::vector<HeaderCard>& cards = {}, const FitsWriteOptions& opt = {});

// Convenience: a header card with a numeric or string value.
HeaderCard card(const std::string& key, double value, const std::string& comment = "");
HeaderCard card(const std::string& key, const std::string& value, const std::string& comment = "");

}  // namespace psfphot::io
