#pragma once
// Pictures for people (psfphot quicklook): display stretches of an image, and drawing of
// circles, crosses, rectangles, lines, mask outlines, small text and per-frame plots on
// an RGB raster. Pure functions on in-memory images; PNG encoding is io/png.hpp.
//
// Coordinates: raster pixel (x, y) is column x, row y with row 0 at the TOP (as PNG
// stores it). Quicklook draws in frame coordinates (0-based, pixel centres at integers,
// the same numbers as the catalogue) and flips the raster at the end so that frame row 0
// is at the bottom, as DS9 and matplotlib's origin="lower" show a frame.
// Everything drawn is clipped to the raster; nothing throws except where documented.
// Thread-safety: functions touch only their arguments.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};
using RgbImage = Image<Rgb>;

namespace colour {
inline constexpr Rgb kBlack{0, 0, 0};
inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kGreen{0, 255, 0};      // stars without flags
inline constexpr Rgb kRed{255, 0, 0};        // flagged stars
inline constexpr Rgb kCyan{0, 255, 255};     // masked regions
inline constexpr Rgb kYellow{255, 255, 0};   // centroid cross-hair
inline constexpr Rgb kMagenta{255, 0, 255};  // peak pixel
inline constexpr Rgb kBlue{64, 128, 255};    // plot lines
inline constexpr Rgb kGrey{128, 128, 128};
}  // namespace colour

// Display limits [lo, hi] in ADU: values <= lo are black, >= hi white.
struct StretchLimits {
  double lo = 0, hi = 1;
};

struct ZscaleConfig {
  int max_samples = 10000;    // pixels sampled on a regular grid
  double contrast = 0.25;     // IRAF's default: slope divided by this
  double reject_kappa = 2.5;  // sigma of the line-fit rejection
  int max_iter = 5;           // rejection iterations
  double min_fraction = 0.5;  // keep the full range when fewer samples survive
};

// IRAF's zscale: a line fitted to the sorted sample values (with rejection) around the
// median; z1, z2 = median -/+ (n/2) slope / contrast, clipped to the data range. Finite
// pixels only; an image without finite pixels gives {0, 1}.
StretchLimits zscale_limits(ImageView<const float> img, const ZscaleConfig& cfg = {});
// The `lo_pct` and `hi_pct` percentiles (0..100) of the finite pixels (sampled as above).
StretchLimits percentile_limits(ImageView<const float> img, double lo_pct, double hi_pct,
                                int max_samples = 100000);

enum class Stretch { kLinear, kAsinh };
// Grey raster of `img`: t = (v - lo) / (hi - lo) clipped to [0, 1]; linear, or
// asinh(t / a) / asinh(1 / a) with softening a (small a = strong stretch). NaN pixels
// are dark blue (0, 0, 96) so they do not look like sky. Same size as img, row y = img row y.
RgbImage render_grey(ImageView<const float> img, StretchLimits lim, Stretch stretch,
                     double asinh_softening = 0.1);

// Reverse the row order (frame orientation -> picture orientation).
void flip_rows(RgbImage& img);

void set_pixel(RgbImage& img, int x, int y, Rgb c);  // clipped
// Circle of radius r (px) centred on (cx, cy), `thickness` px wide inward.
void draw_circle(RgbImage& img, double cx, double cy, double r, Rgb c, int thickness = 1);
// Cross-hair: horizontal and vertical segments of half-length `half` px through the
// pixel nearest (cx, cy), leaving a gap of `gap` px around the centre.
void draw_cross(RgbImage& img, double cx, double cy, int half, Rgb c, int gap = 0);
// Outline of the inclusive rectangle [x0, x1] x [y0, y1].
void draw_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c);
void fill_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c);
void draw_line(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c);  // Bresenham
// Marks the boundary of the masked regions: pixels with any of `bits` that have a
// 4-neighbour without them (or lie on the frame edge). Mask and raster share coordinates.
void outline_mask(RgbImage& img, ImageView<const MaskBits> mask, MaskBits bits, Rgb c);

// Text in a 3x5 pixel font scaled by `scale` (letters are drawn upper-case; digits,
// A-Z and . , - + = : / ( ) _ % are known, anything else is a blank). (x, y) is the
// top-left corner. Returns the width drawn, px.
int draw_text(RgbImage& img, int x, int y, std::string_view text, Rgb c, int scale = 1);
int text_width(std::string_view text, int scale = 1);

// Nearest-neighbour enlargement by an integer factor.
RgbImage upscale(const RgbImage& img, int factor);
// Copies `src` into `dst` with its top-left corner at (x, y), clipped.
void blit(RgbImage& dst, const RgbImage& src, int x, int y);

// A plot of y against x (points joined by lines, NaN points skipped) with axes, ticks
// labelled with the min / max of each axis and a title, on a white w x h raster.
// The data area is [left, w - 10) x [20, h - 24); x and y ranges are the data's
// (a constant series is centred). Throws std::invalid_argument when x and y differ in
// size or the raster is smaller than 80 x 60.
struct PlotLayout {
  int left = 0, right = 0, top = 0, bottom = 0;  // data area, inclusive px
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;         // data range mapped onto it
};
RgbImage plot_series(const std::vector<double>& x, const std::vector<double>& y, int w, int h,
                     std::string_view title, Rgb c = colour::kBlue, PlotLayout* layout = nullptr);

}  // namespace psfphot
