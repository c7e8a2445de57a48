#include "psfphot/io/fits_rows.hpp"

#include <fitsio.h>

#include <limits>

namespace psfphot::io {

struct FitsRowReader::Handle {
  fitsfile* f = nullptr;
  ~Handle() {
    int st = 0;
    if (f) fits_close_file(f, &st);
  }
};

namespace {
std::string cfitsio_text(int status) {
  char text[FLEN_STATUS] = {0};
  fits_get_errstatus(status, text);
  char msg[FLEN_ERRMSG] = {0};
  while (fits_read_errmsg(msg)) {
  }  // drain cfitsio's message stack so it does not leak into the next error
  return std::string(text) + " [cfitsio status " + std::to_string(status) + "]";
}
}  // namespace

FitsRowReader::FitsRowReader(const std::string& spec)
    : handle_(std::make_unique<Handle>()), info_(read_fits_header(spec)) {
  // read_fits_header has validated the file (exists, 2-D image, sane size); the shape is
  // in its NAXIS cards.
  width_ = std::stoi(info_.header.card("NAXIS1"));
  height_ = std::stoi(info_.header.card("NAXIS2"));
  int status = 0;
  if (fits_open_image(&handle_->f, spec.c_str(), READONLY, &status))
    throw FitsError(spec, "cannot open as a FITS image: " + cfitsio_text(status), status);
}

FitsRowReader::~FitsRowReader() = default;
FitsRowReader::FitsRowReader(FitsRowReader&&) noexcept = default;
FitsRowReader& FitsRowReader::operator=(FitsRowReader&&) noexcept = default;

void FitsRowReader::read_rows(int y0, int n, float* out) {
  if (y0 < 0 || n < 0 || y0 + n > height_)
    throw FitsError(info_.path, "rows " + std::to_string(y0) + ".." + std::to_string(y0 + n - 1) +
                                    " are outside the image (height " + std::to_string(height_) +
                                    ")");
  if (n == 0) return;
  long first[3] = {1, y0 + 1L, 1};  // FITS pixel numbers are 1-based
  float nan = std::numeric_limits<float>::quiet_NaN();
  int anynull = 0, status = 0;
  if (fits_read_pix(handle_->f, TFLOAT, first, static_cast<LONGLONG>(n) * width_, &nan, out,
                    &anynull, &status))
    throw FitsError(info_.path,
                    "cannot read rows " + std::to_string(y0) + ".." + std::to_string(y0 + n - 1) +
                        ": " + cfitsio_text(status),
                    status);
}

}  // namespace psfphot::io
