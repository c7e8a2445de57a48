#include "psfphot/algo/hotpix.hpp"

#include <cmath>

namespace psfphot {

bool passes_hot_pixel_test(ImageView<const float> image, int x, int y, const HotPixelConfig& cfg) {
  if (!cfg.enabled) return true;
  const float v = image(x, y);
  if (!std::isfinite(v)) return false;
  const double limit = cfg.fraction * v;
  int n = 0;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      if ((dx || dy) && image.contains(x + dx, y + dy) && image(x + dx, y + dy) > limit) ++n;
    }
  return n >= cfg.min_neighbours;
}

std::vector<Peak> reject_hot_pixels(ImageView<const float> image, const std::vector<Peak>& peaks,
                                    const HotPixelConfig& cfg) {
  std::vector<Peak> out;
  out.reserve(peaks.size());
  for (const Peak& p : peaks)
    if (passes_hot_pixel_test(image, p.x, p.y, cfg)) out.push_back(p);
  return out;
}

bool too_sharp_for_a_star(double width_x_px, double width_y_px, double snr, double psf_sigma_px,
                          const HotPixelConfig& cfg) {
  if (!(cfg.min_width_sigma > 0) || !(snr >= cfg.min_width_snr)) return false;
  if (!std::isfinite(width_x_px) || !std::isfinite(width_y_px) || !(psf_sigma_px > 0)) return false;
  const double limit = cfg.min_width_sigma * psf_sigma_px;
  return width_x_px < limit && width_y_px < limit;
}

}  // namespace psfphot
