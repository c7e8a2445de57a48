#include "psfphot/algo/hotpix.hpp"

#include <cmath>

namespace psfphot {

bool passes_hot_pixel_test(ImageView<const float> image, int x, int y, const HotPixelConfig& cfg,
                           double noise_adu) {
  if (!cfg.enabled) return true;
  const float v = image(x, y);
  if (!std::isfinite(v)) return false;
  // The allowance is the neighbours' noise, not a fraction of the peak, and it is given to
  // faint peaks only (below kAllowancePeakSigma RMS), where the peak pixel's own noise swings
  // the literal threshold by half of it. Above, a star's neighbours clear the threshold by
  // >= 5 sigma anyway, while a bright cosmic-ray track's can sit within a sigma of it: on
  // the scorecard frames one at 54 sigma passed with the allowance and became a detection.
  constexpr double kAllowancePeakSigma = 20.0;
  const bool faint =
      std::isfinite(noise_adu) && noise_adu > 0 && v < kAllowancePeakSigma * noise_adu;
  const double allowance = faint ? cfg.noise_sigma * noise_adu : 0.0;
  const double limit = cfg.fraction * v - allowance;
  int n = 0;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      if ((dx || dy) && image.contains(x + dx, y + dy) && image(x + dx, y + dy) > limit) ++n;
    }
  return n >= cfg.min_neighbours;
}

std::vector<Peak> reject_hot_pixels(ImageView<const float> image, const FloatPlane& rms,
                                    const std::vector<Peak>& peaks, const HotPixelConfig& cfg) {
  std::vector<Peak> out;
  out.reserve(peaks.size());
  for (const Peak& p : peaks) {
    const double noise = rms.empty() ? 0.0 : rms(p.x, p.y);
    if (passes_hot_pixel_test(image, p.x, p.y, cfg, noise)) out.push_back(p);
  }
  return out;
}

bool too_sharp_for_a_star(const MinorMoment& minor, double snr, const HotPixelConfig& cfg) {
  if (!(cfg.min_width_sigma > 0) || !(snr >= cfg.min_width_snr)) return false;
  if (!std::isfinite(minor.lambda_px2) || !std::isfinite(minor.err_px2) || !(minor.star_px2 > 0))
    return false;
  // Sharper than the limit by 3 errors: a compact star's noisy moment may dip below the
  // limit, a cosmic-ray track's lies far below it.
  const double limit = cfg.min_width_sigma * cfg.min_width_sigma * minor.star_px2;
  return minor.lambda_px2 + 3.0 * minor.err_px2 < limit;
}

}  // namespace psfphot
