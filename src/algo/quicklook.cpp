#include "psfphot/algo/quicklook.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace psfphot {

namespace {

std::pair<double, double> star_position(const Star& s) {
  if (std::isfinite(s.centroid_x) && std::isfinite(s.centroid_y))
    return {s.centroid_x, s.centroid_y};
  return {static_cast<double>(s.peak_x), static_cast<double>(s.peak_y)};
}

}  // namespace

RgbImage frame_picture(ImageView<const float> calibrated, ImageView<const MaskBits> mask,
                       const std::vector<Star>& stars, double psf_sigma_px,
                       const FramePictureConfig& cfg, StretchLimits* limits_used) {
  StretchLimits lim = zscale_limits(calibrated);
  Stretch st = Stretch::kLinear;
  if (cfg.stretch == DisplayStretch::kAsinh) {
    lim.hi = std::max(percentile_limits(calibrated, 0, 99.9).hi, lim.lo + 1e-6);
    st = Stretch::kAsinh;
  }
  if (limits_used) *limits_used = lim;
  RgbImage img = render_grey(calibrated, lim, st, cfg.asinh_softening);
  if (!mask.empty() && mask.width() == img.width() && mask.height() == img.height())
    outline_mask(img, mask, cfg.outline_bits, colour::kCyan);
  const double r = cfg.circle_radius_px > 0
                       ? cfg.circle_radius_px
                       : std::max(4.0, 3.0 * (std::isfinite(psf_sigma_px) ? psf_sigma_px : 1.5));
  const int thick = cfg.circle_thickness > 0 ? cfg.circle_thickness : 1 + img.width() / 1500;
  // Flagged stars first, so a clean star's circle stays visible where two overlap.
  for (int pass = 0; pass < 2; ++pass)
    for (const Star& s : stars) {
      if ((pass == 0) != (s.flags != 0)) continue;
      const auto [x, y] = star_position(s);
      draw_circle(img, x, y, r, s.flags ? colour::kRed : colour::kGreen, thick);
    }
  flip_rows(img);
  return img;
}

std::vector<std::size_t> pick_cutout_stars(const std::vector<Star>& stars, int count) {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < stars.size(); ++i)
    if (std::isfinite(stars[i].centroid_x) && std::isfinite(stars[i].centroid_y)) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const double fa = stars[a].psf_flux, fb = stars[b].psf_flux;
    if (std::isnan(fa) != std::isnan(fb)) return std::isnan(fb);
    return fa > fb;
  });
  if (count <= 0) return {};
  if (static_cast<int>(idx.size()) <= count) return idx;
  std::vector<std::size_t> out;
  const double n = static_cast<double>(idx.size() - 1);
  for (int k = 0; k < count; ++k)
    out.push_back(idx[static_cast<std::size_t>(std::lround(k * n / (count - 1)))]);
  return out;
}

RgbImage cutout_grid(ImageView<const float> calibrated, ImageView<const float> background,
                     const std::vector<Star>& stars, const CutoutConfig& cfg) {
  const std::vector<std::size_t> pick = pick_cutout_stars(stars, cfg.count);
  const int cols = std::max(1, static_cast<int>(std::ceil(std::sqrt(std::max(1, cfg.count)))));
  const int rows = std::max(1, (cfg.count + cols - 1) / cols);
  const int side = 2 * cfg.half_px + 1, z = std::max(1, cfg.zoom);
  const int tile_w = side * z, tile_h = side * z + cfg.label_px, gap = 4;
  RgbImage grid(cols * (tile_w + gap) + gap, rows * (tile_h + gap) + gap, colour::kGrey);
  for (std::size_t k = 0; k < pick.size(); ++k) {
    const Star& s = stars[pick[k]];
    const int ox = gap + static_cast<int>(k % cols) * (tile_w + gap);
    const int oy = gap + static_cast<int>(k / cols) * (tile_h + gap);
    const int x0 = s.peak_x - cfg.half_px, y0 = s.peak_y - cfg.half_px;
    // Stamp values (calibrated - background), NaN outside the frame.
    Image<float> stamp(side, side, std::nanf(""));
    const bool have_bg =
        background.width() == calibrated.width() && background.height() == calibrated.height();
    for (int j = 0; j < side; ++j)
      for (int i = 0; i < side; ++i) {
        const int fx = x0 + i, fy = y0 + j;
        if (!calibrated.contains(fx, fy)) continue;
        stamp(i, j) = calibrated(fx, fy) - (have_bg ? background(fx, fy) : 0.0f);
      }
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < side; ++j)
      for (int i = 0; i < side; ++i)
        if (std::isfinite(stamp(i, j))) {
          lo = std::min(lo, stamp(i, j));
          hi = std::max(hi, stamp(i, j));
        }
    if (!(hi > lo)) lo = 0, hi = 1;
    RgbImage tile = render_grey(stamp.cview(), {lo, hi}, Stretch::kLinear);
    for (int j = 0; j < side; ++j)
      for (int i = 0; i < side; ++i)
        if (!std::isfinite(stamp(i, j))) tile(i, j) = colour::kBlack;
    flip_rows(tile);
    RgbImage big = upscale(tile, z);
    // Frame coordinate -> tile pixel (the stamp is flipped: frame y up).
    auto tx = [&](double fx) { return (fx - x0 + 0.5) * z - 0.5; };
    auto ty = [&](double fy) { return (y0 + side - 1 - fy + 0.5) * z - 0.5; };
    const int px = (s.peak_x - x0) * z, py = (y0 + side - 1 - s.peak_y) * z;
    draw_rect(big, px, py, px + z - 1, py + z - 1, colour::kMagenta);
    draw_cross(big, tx(s.centroid_x), ty(s.centroid_y), 2 * z, colour::kYellow, z / 2);
    blit(grid, big, ox, oy);
    fill_rect(grid, ox, oy + side * z, ox + tile_w - 1, oy + tile_h - 1, colour::kBlack);
    char label[64];
    std::snprintf(label, sizeof label, "%d SNR %.0f", s.star_id, s.snr);
    draw_text(grid, ox + 2, oy + side * z + 3, label, colour::kWhite, 1);
  }
  return grid;
}

RgbImage map_picture(ImageView<const float> map, const std::string& title) {
  const StretchLimits lim = percentile_limits(map, 0.5, 99.5);
  RgbImage body = render_grey(map, lim, Stretch::kLinear);
  flip_rows(body);
  const int strip = 24;
  RgbImage out(std::max(body.width(), 200), body.height() + strip, colour::kBlack);
  blit(out, body, 0, strip);
  char text[160];
  std::snprintf(text, sizeof text, "%s  %.5g .. %.5g", title.c_str(), lim.lo, lim.hi);
  draw_text(out, 4, 6, text, colour::kWhite, 2);
  return out;
}

RgbImage night_plots(const std::vector<double>& frame_ids, const std::vector<NightSeries>& series,
                     double highlight_id, int width, int panel_height) {
  RgbImage out(width, std::max<int>(1, static_cast<int>(series.size())) * panel_height,
               colour::kWhite);
  for (std::size_t k = 0; k < series.size(); ++k) {
    PlotLayout L;
    RgbImage p = plot_series(frame_ids, series[k].values, width, panel_height, series[k].title,
                             colour::kBlue, &L);
    if (std::isfinite(highlight_id) && highlight_id >= L.x0 && highlight_id <= L.x1) {
      const int x =
          L.left +
          static_cast<int>(std::lround((highlight_id - L.x0) / (L.x1 - L.x0) * (L.right - L.left)));
      draw_line(p, x, L.top, x, L.bottom, colour::kRed);
    }
    blit(out, p, 0, static_cast<int>(k) * panel_height);
  }
  return out;
}

}  // namespace psfphot
