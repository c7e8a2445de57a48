#pragma once
// Overscan (bias) correction and the trim section of a raw CCD frame, as IRAF's ccdproc and
// astropy's ccdproc do it: the bias level is measured in the overscan strip named by the
// header's BIASSEC (or the config) and subtracted from every pixel before the dark; pixels
// outside TRIMSEC (prescan and overscan columns, which hold no sky) are masked
// mask::kOutsideTrim, so neither the background, the detection nor a fit uses them. The
// frame keeps its size: star coordinates stay those of the raw frame (and of its WCS).
//
// Modes (config `calibration.overscan`):
//   kLevel  one level for the frame: the median of the strip's finite pixels (IRAF ccdproc's
//           default fit, a constant, made robust to cosmic rays in the strip);
//   kLine   one level per line: the median of each line of the strip across its width
//           (a strip spanning every row, the serial overscan: one level per row; one spanning
//           every column: per column), for cameras whose bias moves along the readout. Lines of the
//           frame the strip does not cover, or with no finite pixel there, take the frame's level.
//   kNone   nothing subtracted.
//
// Sections are IRAF image sections "[x1:x2,y1:y2]": 1-based, inclusive, x (NAXIS1) first,
// "*" for a whole axis, reversed ranges allowed (they name the same pixels). Internally
// they become 0-based half-open boxes (FITS 1-based only at this edge).
//
// Thread-safety: pure functions; deterministic.
#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "psfphot/core/header.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

enum class OverscanMode { kNone, kLevel, kLine };

// Config (`calibration.overscan`, `calibration.bias_section`, `calibration.trim_section`):
// the mode, and the strip and the trim section as IRAF sections, or "header" (the frame's
// BIASSEC / TRIMSEC card; none when the card is absent) or "none". A frame without a strip
// gets no correction, whatever the mode; the trim mask does not depend on the mode.
struct OverscanConfig {
  OverscanMode mode = OverscanMode::kLevel;
  std::string bias_section = "header";
  std::string trim_section = "header";
};

// Pixels [x0, x1) x [y0, y1), 0-based.
struct PixelBox {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
  bool empty() const { return x1 <= x0 || y1 <= y0; }
  bool contains(int x, int y) const { return x >= x0 && x < x1 && y >= y0 && y < y1; }
  bool operator==(const PixelBox&) const = default;
};

// Parses an IRAF section (surrounding blanks and quotes tolerated) for a width x height
// frame. Throws std::invalid_argument with the reason (malformed text, a range outside
// 1..width or 1..height) and the text.
PixelBox parse_section(std::string_view text, int width, int height);

// A raw frame's strip and trim section under `cfg` (empty boxes: none; a trim section
// covering the whole frame counts as none). Throws std::invalid_argument naming the card
// or key and the problem.
struct RawSections {
  PixelBox bias, trim;
};
RawSections raw_sections(const HeaderFacts& header, int width, int height,
                         const OverscanConfig& cfg);

// Checks the syntax only (no frame size yet: config validation); returns "" or the reason.
std::string section_syntax_error(std::string_view text);

// The bias level of every line of a frame.
struct OverscanLevels {
  bool per_row = true;       // level[y] for row y; false: level[x] for column x
  std::vector<float> level;  // ADU; frame height (per_row) or width entries
  double median_adu = 0;     // the strip's median (kLevel: every entry)
  std::size_t n_pixels = 0;  // finite strip pixels used
  // The level subtracted at pixel (x, y).
  float at(int x, int y) const { return level[static_cast<std::size_t>(per_row ? y : x)]; }
};

// Measures the levels from `strip`, the pixels of box `bias` of a frame_width x
// frame_height frame (strip.width() == bias.width(), strip.height() == bias.height()).
// A strip spanning every row of the frame gives levels per row, one spanning every column
// levels per column; otherwise a strip narrower than tall is read per row, else per column.
// Throws std::invalid_argument when mode is kNone, the strip's shape differs from the box,
// the box is not inside the frame, or the strip has no finite pixel.
OverscanLevels measure_overscan(ImageView<const float> strip, const PixelBox& bias, int frame_width,
                                int frame_height, OverscanMode mode);

// The pixels of `box` (inside a frame frame_width pixels wide) from a frame read in blocks
// of whole rows: `rows(y0, n)` returns a pointer to rows [y0, y0 + n) of the frame, stored
// one after the other, frame_width floats each (n <= block_rows; the pointer is used only
// until the next call). The strip to give measure_overscan, from a raw FITS frame read a
// block at a time or from a master dark's rows. Throws std::invalid_argument when
// block_rows < 1 (rows would never advance).
template <typename Rows>
Image<float> cut_box(const PixelBox& box, int frame_width, int block_rows, Rows&& rows) {
  if (block_rows < 1)
    throw std::invalid_argument("cut_box: block_rows must be >= 1, got " +
                                std::to_string(block_rows));
  Image<float> strip(box.width(), box.height());
  for (int y0 = box.y0; y0 < box.y1; y0 += block_rows) {
    const int n = std::min(block_rows, box.y1 - y0);
    const float* block = rows(y0, n);
    for (int j = 0; j < n; ++j)
      std::copy_n(
          block + static_cast<std::size_t>(j) * static_cast<std::size_t>(frame_width) + box.x0,
          box.width(), strip.view().row(y0 - box.y0 + j));
  }
  return strip;
}

// rows holds n rows of a frame, from row y0, each width wide: subtracts the levels.
void subtract_overscan_rows(float* rows, int width, int y0, int n, const OverscanLevels& lv);

// Sets `bit` in every pixel of mask outside `keep` (none when keep covers the frame, or is
// empty: an empty box means "no trim section", as in RawSections).
void mask_outside(ImageView<MaskBits> mask, const PixelBox& keep, MaskBits bit);

}  // namespace psfphot
