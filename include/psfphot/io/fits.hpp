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
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "psfphot/core/encoded_image.hpp"
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
  int width = 0, height = 0;  // NAXIS1, NAXIS2 (also when `pixels` is not read)
  HeaderFacts header;
  Image<float> pixels;  // ADU, scaled; NaN where BLANK
};

// Read the image in `spec`. Throws FitsError.
FitsImage read_fits(const std::string& spec);

// Read only the header facts and shape (no pixels). Throws FitsError.
FitsImage read_fits_header(const std::string& spec);

// An image's data unit mapped read-only from its file (mmap of the page cache's pages: no copy,
// no float image to allocate and fill), its pixels decoded where they are used
// (core/encoded_image.hpp): to the same values read_fits gives, bit for bit. For a pass that
// reads an image once (the masters and the raw frame of `psfphot frame`, decoded inside the
// calibration). Move-only; the mapping lives as long as the object (views taken from
// pixels() must not outlive it).
//
// The file's size is checked against the header's data size before mapping (a truncated file
// is a FitsError, as in read_fits, never a SIGBUS); a file truncated *while* mapped would
// still raise SIGBUS on access, as for any mapped file: replace files by renaming, as the
// FITS writers here do, not by rewriting them in place.
struct MappedOrRead;

class MappedFits {
 public:
  MappedFits() = default;
  MappedFits(MappedFits&& o) noexcept;
  MappedFits& operator=(MappedFits&& o) noexcept;
  MappedFits(const MappedFits&) = delete;
  MappedFits& operator=(const MappedFits&) = delete;
  ~MappedFits();

  // Header facts, shape, BITPIX and scaling as read_fits gives them; `info().pixels` is empty.
  const FitsImage& info() const { return info_; }
  EncodedImageView pixels() const { return pixels_; }
  bool empty() const { return map_ == nullptr; }

 private:
  friend std::optional<MappedFits> map_fits(const std::string& spec);
  friend MappedOrRead map_or_read_fits(const std::string& spec);
  MappedFits(FitsImage&& info, EncodedImageView pixels, void* map, std::size_t map_bytes)
      : info_(std::move(info)), pixels_(pixels), map_(map), map_bytes_(map_bytes) {}
  FitsImage info_;
  EncodedImageView pixels_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
};

// Maps the image in `spec` where its pixels can be decoded by psfphot as read_fits decodes
// them (uncompressed, BITPIX 8, 16, 32, -32, -64, no BLANK keyword, unscaled floats, a plain
// file opened in place); nullopt where read_fits must read it through cfitsio instead (a
// compressed or gzipped file, an image section, ...). Throws FitsError, naming `spec`, for
// every error read_fits reports about the header or the file's size (missing, empty, not an
// image, truncated).
std::optional<MappedFits> map_fits(const std::string& spec);

// The image in `spec` mapped where map_fits can map it, else read as read_fits reads it; the
// file is opened once either way. Exactly one of the two is set: `mapped` (not empty) or
// `read` (with its pixels). Throws FitsError as read_fits does.
struct MappedOrRead {
  MappedFits mapped;
  FitsImage read;
  bool is_mapped() const { return !mapped.empty(); }
  const FitsImage& info() const { return is_mapped() ? mapped.info() : read; }
  EncodedImageView pixels() const { return is_mapped() ? mapped.pixels() : read.pixels.cview(); }
};
MappedOrRead map_or_read_fits(const std::string& spec);

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
