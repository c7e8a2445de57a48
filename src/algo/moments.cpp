#include "psfphot/algo/moments.hpp"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "psfphot/algo/gaussian_psf.hpp"
#include "psfphot/core/star.hpp"
#include "window.hpp"

namespace psfphot {

namespace {

// The window's centre pixel for a finite centre (xc, yc); centres this far out are off any
// frame, and rounding them to int would wrap into it: (-1, -1) for them, never inside.
std::pair<long, long> window_centre(double xc, double yc) {
  if (!(std::abs(xc) < 1e9 && std::abs(yc) < 1e9)) return {-1, -1};
  return {std::lround(xc), std::lround(yc)};
}

}  // namespace

Widths second_moments(ImageView<const float> image, ImageView<const MaskBits> mask, double xc,
                      double yc, const MomentsConfig& cfg) {
  Widths wd;
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  if (!std::isfinite(xc) || !std::isfinite(yc)) {
    wd.sigma_x = wd.sigma_y = nan;
    wd.flags |= star_flag::kMomentsInvalid;
    return wd;
  }
  const int half = cfg.window_px / 2;
  const auto [lx, ly] = window_centre(xc, yc);
  if (!detail::window_inside(image, lx, ly, half)) {
    wd.sigma_x = wd.sigma_y = nan;
    wd.flags |= star_flag::kEdge;
    return wd;
  }
  const int cx = static_cast<int>(lx), cy = static_cast<int>(ly);  // inside: fits
  double s = 0, sxx = 0, syy = 0;
  for (int y = cy - half; y <= cy + half; ++y)
    for (int x = cx - half; x <= cx + half; ++x) {
      const float v = image(x, y);
      if (!std::isfinite(v) || (!mask.empty() && (mask(x, y) & cfg.exclude_bits))) continue;
      s += v;
      sxx += v * (x - xc) * (x - xc);
      syy += v * (y - yc) * (y - yc);
    }
  if (!(s > 0) || !(sxx > 0) || !(syy > 0)) {
    wd.sigma_x = wd.sigma_y = nan;
    wd.flags |= star_flag::kMomentsInvalid;
    return wd;
  }
  wd.sigma_x = std::sqrt(sxx / s);
  wd.sigma_y = std::sqrt(syy / s);
  return wd;
}

namespace {

// Smaller eigenvalue of the symmetric matrix [[a, c], [c, b]] and its unit eigenvector.
double minor_eigen(double a, double b, double c, double* ex, double* ey) {
  // Mean of the diagonal minus the radius; (M - lambda) e = 0 from the first row.
  const double lambda = 0.5 * (a + b) - std::sqrt(0.25 * (a - b) * (a - b) + c * c);
  double x = c, y = lambda - a;
  if (std::abs(x) + std::abs(y) < 1e-12 * (std::abs(a) + std::abs(b) + 1e-300)) {
    x = a <= b ? 1.0 : 0.0;  // diagonal matrix: the axis with the smaller moment
    y = a <= b ? 0.0 : 1.0;
  }
  const double norm = std::hypot(x, y);
  *ex = x / norm;
  *ey = y / norm;
  return lambda;
}

}  // namespace

MinorMoment minor_axis_moment(ImageView<const float> image, ImageView<const MaskBits> mask,
                              double xc, double yc, double rms_adu, double weight_sigma_px,
                              const MomentsConfig& cfg, double psf_sigma_px) {
  MinorMoment m;
  if (!std::isfinite(xc) || !std::isfinite(yc)) return m;
  const int half = cfg.window_px / 2, n = 2 * half + 1;
  const auto [lx, ly] = window_centre(xc, yc);
  if (!detail::window_inside(image, lx, ly, half)) return m;
  const int cx = static_cast<int>(lx), cy = static_cast<int>(ly);  // inside: fits
  auto used = [&](int x, int y) {
    return std::isfinite(image(x, y)) && (mask.empty() || !(mask(x, y) & cfg.exclude_bits));
  };
  const double q = weight_sigma_px > 0 ? 0.5 / (weight_sigma_px * weight_sigma_px) : 0.0;
  auto weight = [&](double dx, double dy) {
    return q > 0 ? std::exp(-q * (dx * dx + dy * dy)) : 1.0;
  };
  // The star of the reference: a pixel-integrated Gaussian at the same centre (separable).
  const bool star = psf_sigma_px > 0 && std::isfinite(psf_sigma_px);
  // Per thread, kept between calls: the pipeline calls this for every bright star, and the
  // profiles' storage would otherwise be allocated and freed each time.
  thread_local Profile1D px, py;
  // Each pixel's weight, kept for the error's pass (the same exp call's value, not made twice).
  thread_local std::vector<double> wts;
  wts.resize(static_cast<std::size_t>(n) * n);
  if (star) {
    integrated_profile(xc, psf_sigma_px, cx - half, n, false, px);
    integrated_profile(yc, psf_sigma_px, cy - half, n, false, py);
  }
  double s = 0, sxx = 0, syy = 0, sxy = 0, w_used = 0, w_all = 0;
  double t = 0, txx = 0, tyy = 0, txy = 0;
  for (int y = cy - half; y <= cy + half; ++y)
    for (int x = cx - half; x <= cx + half; ++x) {
      const double dx = x - xc, dy = y - yc, w = weight(dx, dy);
      wts[static_cast<std::size_t>(y - (cy - half)) * n + (x - (cx - half))] = w;
      w_all += w;
      if (!used(x, y)) continue;
      w_used += w;
      const double v = w * image(x, y);
      s += v;
      sxx += v * dx * dx;
      syy += v * dy * dy;
      sxy += v * dx * dy;
      if (star) {
        const double p = w * px.value[static_cast<std::size_t>(x - (cx - half))] *
                         py.value[static_cast<std::size_t>(y - (cy - half))];
        t += p;
        txx += p * dx * dx;
        tyy += p * dy * dy;
        txy += p * dx * dy;
      }
    }
  // Most of the window's weight masked: what is left may be a line through the centre,
  // with no width across it whatever the source; not judged.
  if (!(s > 0) || !(w_used >= 0.5 * w_all)) return m;
  double ex = 1, ey = 0;
  m.lambda_px2 = minor_eigen(sxx / s, syy / s, sxy / s, &ex, &ey);
  if (star && t > 0) {
    double tx = 1, ty = 0;
    m.star_px2 = minor_eigen(txx / t, tyy / t, txy / t, &tx, &ty);
  }
  if (!(std::isfinite(rms_adu) && rms_adu >= 0)) return m;  // error unknown: NaN
  double v2 = 0;
  for (int y = cy - half; y <= cy + half; ++y)
    for (int x = cx - half; x <= cx + half; ++x) {
      if (!used(x, y)) continue;
      const double u = (x - xc) * ex + (y - yc) * ey,
                   d = wts[static_cast<std::size_t>(y - (cy - half)) * n + (x - (cx - half))] *
                       (u * u - m.lambda_px2);
      v2 += d * d;
    }
  m.err_px2 = rms_adu * std::sqrt(v2) / s;
  return m;
}

double point_source_minor_moment(double psf_sigma_px, double weight_sigma_px) {
  // The product of the star's and the weight's Gaussians is a Gaussian of variance
  // s^2 w^2 / (s^2 + w^2); pixel integration adds the box's 1/12 px^2.
  const double s2 = psf_sigma_px * psf_sigma_px + 1.0 / 12.0;
  if (!(weight_sigma_px > 0)) return s2;
  const double w2 = weight_sigma_px * weight_sigma_px;
  return s2 * w2 / (s2 + w2);
}

void measure_moments(ImageView<const float> image, ImageView<const MaskBits> mask, const double* xc,
                     const double* yc, std::size_t n, const MomentsConfig& cfg, Widths* out) {
  const int half = cfg.window_px / 2;
  // The window second_moments will read, requested in advance (prefetches change no value).
  auto prefetch = [&](std::size_t i) {
    if (i >= n || !std::isfinite(xc[i]) || !std::isfinite(yc[i])) return;
    const auto [cx, cy] = window_centre(xc[i], yc[i]);
    detail::prefetch_window(image, mask, cx, cy, half);
  };
  constexpr std::size_t kAhead = 8;
  for (std::size_t i = 0; i < kAhead; ++i) prefetch(i);
  for (std::size_t i = 0; i < n; ++i) {
    prefetch(i + kAhead);
    out[i] = second_moments(image, mask, xc[i], yc[i], cfg);
  }
}

double truncated_moment_sigma(double sigma_px, int window_px) {
  const int half = window_px / 2;
  Profile1D p;
  integrated_profile(0.0, sigma_px, -half, 2 * half + 1, false, p);
  // Separable: the x moment of the 2-D box is the 1-D moment of the x profile.
  double s = 0, sxx = 0;
  for (int i = 0; i < 2 * half + 1; ++i) {
    const double x = p.first + i;
    s += p.value[i];
    sxx += p.value[i] * x * x;
  }
  return std::sqrt(sxx / s);
}

}  // namespace psfphot
