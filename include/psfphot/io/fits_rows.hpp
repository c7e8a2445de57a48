#pragma once
// Reading a FITS image a block of rows at a time, for stacking many frames (master
// darks and flats) without holding every frame in memory.
//
// Same conventions as read_fits (io/fits.hpp): float ADU with BZERO/BSCALE applied by
// cfitsio, integer BLANK -> NaN, 0-based rows, cfitsio extended file names ("f.fits[1]").
// The file stays open for the reader's lifetime (cfitsio buffers a few FITS blocks).
// Errors throw FitsError naming the file and cfitsio's reason.
// Thread-safety: one reader per thread; different readers may be used concurrently.
#include <memory>
#include <string>

#include "psfphot/io/fits.hpp"

namespace psfphot::io {

class FitsRowReader {
 public:
  // Opens `spec` and reads its header (as read_fits_header). Throws FitsError.
  explicit FitsRowReader(const std::string& spec);
  ~FitsRowReader();
  FitsRowReader(FitsRowReader&&) noexcept;
  FitsRowReader& operator=(FitsRowReader&&) noexcept;

  const FitsImage& info() const { return info_; }  // header facts; pixels empty
  int width() const { return width_; }
  int height() const { return height_; }

  // Rows [y0, y0 + n) into `out` (n * width floats, row-major). Throws FitsError when
  // the rows are out of range or cannot be read (e.g. a truncated file).
  void read_rows(int y0, int n, float* out);

 private:
  struct Handle;
  std::unique_ptr<Handle> handle_;
  FitsImage info_;
  int width_ = 0, height_ = 0;
};

}  // namespace psfphot::io
