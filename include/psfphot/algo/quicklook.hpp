#pragma once
// The pictures of `psfphot quicklook` (docs/quicklook.md), composed from a frame's images
// and its catalogue stars with algo/raster.hpp. Pure functions; PNG files are written by
// the command (io/png.hpp).
//
// Orientation: every picture is shown as DS9 shows a frame, frame row 0 at the BOTTOM:
// frame pixel (x, y) is picture pixel (x, H - 1 - y) in frame_picture, background and RMS
// maps (frame_to_picture_y). Colours are the colour:: constants: green circle = star
// without flags, red circle = flagged star, cyan = outline of masked pixels, magenta
// square = peak pixel, yellow cross-hair = centroid.
// Thread-safety: functions touch only their arguments.
#include <cstdint>
#include <string>
#include <vector>

#include "psfphot/algo/raster.hpp"
#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"
#include "psfphot/core/star.hpp"

namespace psfphot {

enum class DisplayStretch { kZscale, kAsinh };

struct FramePictureConfig {
  DisplayStretch stretch = DisplayStretch::kZscale;
  // asinh: limits are zscale's lower limit and the 99.9th percentile, softening below.
  double asinh_softening = 0.02;
  double circle_radius_px = 0;                  // 0 = max(4, 3 * psf_sigma_px)
  int circle_thickness = 0;                     // px; 0 = 1 + width / 1500
  MaskBits outline_bits = mask::kNoBackground;  // outlined masked pixels
};

// Frame row y as a picture row (pictures are flipped: row 0 at the bottom).
inline int frame_to_picture_y(int y, int height) {
  return height - 1 - y;
}

// The calibrated frame stretched, each star circled at its centroid (peak pixel when
// the centroid is NaN), masked regions outlined. Same size as `calibrated`; `mask` may
// be empty. Circle radius as in the config.
RgbImage frame_picture(ImageView<const float> calibrated, ImageView<const MaskBits> mask,
                       const std::vector<Star>& stars, double psf_sigma_px,
                       const FramePictureConfig& cfg = {}, StretchLimits* limits_used = nullptr);

struct CutoutConfig {
  int count = 25;     // stars shown (a 5 x 5 grid), spread over the brightness ranks
  int half_px = 8;    // stamp is (2 half + 1) px square around the peak
  int zoom = 8;       // each frame pixel becomes zoom x zoom picture pixels
  int label_px = 12;  // text strip under each stamp
};
// The indices into `stars` of the cut-outs: stars with a finite centroid ordered by
// psf_flux (brightest first, NaN last), `count` of them evenly spaced in that order.
std::vector<std::size_t> pick_cutout_stars(const std::vector<Star>& stars, int count);
// A grid of cut-outs (sqrt(count) columns) of calibrated - background, each stretched
// linearly over its own range, with the peak pixel outlined (magenta) and a centroid
// cross-hair (yellow), labelled "star_id snr". Black where a stamp leaves the frame.
RgbImage cutout_grid(ImageView<const float> calibrated, ImageView<const float> background,
                     const std::vector<Star>& stars, const CutoutConfig& cfg = {});

// A map (background, RMS) stretched linearly over its 0.5..99.5 percentiles, with a
// 24 px title strip above the flipped map: "<title> min .. max".
RgbImage map_picture(ImageView<const float> map, const std::string& title);

// Per-frame values across the night, one panel per series (title, values) stacked
// vertically, x = frame id; the frame `highlight_id` (if present) is marked with a red
// vertical line in each panel.
struct NightSeries {
  std::string title;
  std::vector<double> values;
};
RgbImage night_plots(const std::vector<double>& frame_ids, const std::vector<NightSeries>& series,
                     double highlight_id, int width = 800, int panel_height = 200);

}  // namespace psfphot
