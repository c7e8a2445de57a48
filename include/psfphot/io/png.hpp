#pragma once
// PNG files through libpng (Debian libpng16): 8-bit RGB, no interlace, default zlib
// compression. Used by psfphot quicklook; read_png lets tests (and users) check pictures.
// Errors throw PngError whose what() names the file and the problem.
// Thread-safety: each call uses its own libpng structures; calls on different files may
// run concurrently.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "psfphot/algo/raster.hpp"

namespace psfphot::io {

class PngError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `img` (row 0 = top) to `path`, replacing it. `text` becomes tEXt chunks
// (keyword, value), e.g. {"Title", ...}, {"Software", "psfphot 0.1.0"}.
void write_png(const std::string& path, const RgbImage& img,
               const std::vector<std::pair<std::string, std::string>>& text = {});

// Reads any PNG (grey, palette, alpha and 16-bit are converted) as 8-bit RGB.
RgbImage read_png(const std::string& path);
// The tEXt / iTXt chunks of a PNG file.
std::vector<std::pair<std::string, std::string>> read_png_text(const std::string& path);

}  // namespace psfphot::io
