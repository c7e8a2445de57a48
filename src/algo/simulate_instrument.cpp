// The camera half of the simulator (algo/simulate.hpp): config checks, flat and dark
// models, raw calibration exposures, cosmic rays and 16-bit quantisation.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "psfphot/algo/simulate.hpp"
#include "sim_internal.hpp"

namespace psfphot {

using sim_detail::Rng;
using sim_detail::StreamKind;

void validate(const SimConfig& c) {
  std::string problems;
  auto need = [&](bool ok, const char* what) {
    if (!ok) problems += std::string(problems.empty() ? "" : "; ") + what;
  };
  need(c.width >= 8 && c.height >= 8, "width and height must be >= 8 px");
  need(c.width <= 65536 && c.height <= 65536, "width and height must be <= 65536 px");
  need(c.exptime_s > 0, "exptime_s must be > 0");
  need(c.gain_e_per_adu > 0, "gain_e_per_adu must be > 0");
  need(c.read_noise_e >= 0, "read_noise_e must be >= 0");
  need(c.saturation_adu > c.bias_adu && c.saturation_adu <= 65535,
       "saturation_adu must lie between bias_adu and 65535");
  need(c.dark_current_e_per_s >= 0 && c.glow_e_per_s >= 0 && c.glow_scale_px > 0,
       "dark current and glow must be >= 0, glow_scale_px > 0");
  need(c.hot_pixel_fraction >= 0 && c.hot_pixel_fraction < 0.1 && c.unstable_hot_fraction >= 0 &&
           c.unstable_hot_fraction < 0.1,
       "hot-pixel fractions must lie in [0, 0.1)");
  need(c.hot_rate_min_e_per_s > 0 && c.hot_rate_max_e_per_s >= c.hot_rate_min_e_per_s,
       "hot-pixel rates need 0 < min <= max");
  need(c.vignetting_corner > 0 && c.vignetting_corner <= 1, "vignetting_corner must be in (0, 1]");
  need(c.prnu >= 0 && c.prnu < 0.2, "prnu must lie in [0, 0.2)");
  need(c.n_dust >= 0 && c.dust_radius_min_px > 0 && c.dust_radius_max_px >= c.dust_radius_min_px,
       "dust needs n_dust >= 0 and 0 < radius min <= max");
  need(c.dust_depth_min >= 0 && c.dust_depth_max >= c.dust_depth_min && c.dust_depth_max < 1,
       "dust depth needs 0 <= min <= max < 1");
  need(c.flat_level_adu > 0, "flat_level_adu must be > 0");
  need(c.sky_e >= 0 && c.sky_level_rms >= 0, "sky_e and sky_level_rms must be >= 0");
  need(c.sky_gradient >= 0 && c.sky_gradient_jitter >= 0 &&
           c.sky_gradient + c.sky_gradient_jitter < 2,
       "sky_gradient (+ jitter) must lie in [0, 2)");
  need(c.n_stars >= 0, "n_stars must be >= 0");
  need(c.psf_sigma_px >= 0.3 && c.psf_sigma_px <= 50, "psf_sigma_px must lie in [0.3, 50]");
  need(c.moffat_beta > 1.05, "moffat_beta must be > 1.05");
  need(c.seeing_rms >= 0 && c.seeing_field_variation > -0.5 && c.seeing_tilt_max >= 0 &&
           c.seeing_tilt_max < 0.5,
       "seeing variations out of range");
  need(c.snr_min > 0 && c.flux_slope > 0, "snr_min and flux_slope must be > 0");
  need(c.saturated_fraction >= 0 && c.saturated_fraction <= 1 && c.bright_range >= 1,
       "saturated_fraction must lie in [0, 1] and bright_range >= 1");
  need(c.dither_px >= 0 && c.dither_px <= 1000, "dither_px must lie in [0, 1000]");
  need(c.stamp_edge_adu > 0 && c.stamp_max_outside >= 0 && c.max_stamp_radius_px >= 1,
       "stamp_edge_adu must be > 0, stamp_max_outside >= 0 and max_stamp_radius_px >= 1");
  need(c.cosmic_rays_per_mpix >= 0 && c.n_galaxies >= 0, "artefact counts must be >= 0");
  need(c.galaxy_flux_min_adu > 0 && c.galaxy_flux_max_adu >= c.galaxy_flux_min_adu &&
           c.galaxy_re_min_px > 0 && c.galaxy_re_max_px >= c.galaxy_re_min_px,
       "galaxy ranges need 0 < min <= max");
  if (!problems.empty()) throw std::invalid_argument("invalid simulator config: " + problems);
}

namespace {

struct Dust {
  double x, y, r_out, r_in, depth;
};

// Dimming of one out-of-focus dust shadow: full depth on the ring [r_in, r_out], a third of
// it inside (the donut's hole is brighter), cosine-tapered edges 2 px wide.
double dust_dimming(const Dust& d, double r) {
  constexpr double kTaper = 2.0;
  if (r >= d.r_out + kTaper) return 0.0;
  auto ramp = [](double u) {
    return 0.5 - 0.5 * std::cos(std::numbers::pi * std::clamp(u, 0., 1.));
  };
  const double outer = ramp((d.r_out + kTaper - r) / kTaper);
  const double inner = 1.0 / 3.0 + (2.0 / 3.0) * ramp((r - d.r_in + kTaper) / kTaper);
  return d.depth * outer * inner;
}

// Row maxima then their maximum: exact in any order, written serially all the same.
float image_max(const Image<float>& img) {
  std::vector<float> row_max(static_cast<std::size_t>(img.height()));
  const ImageView<const float> v = img.view();
#pragma omp parallel for schedule(static)
  for (int y = 0; y < v.height(); ++y)
    row_max[y] = *std::max_element(v.row(y), v.row(y) + v.width());
  return *std::max_element(row_max.begin(), row_max.end());
}

std::vector<HotPixel> draw_hot_pixels(const SimConfig& c, double fraction, int purpose) {
  Rng rng(c.seed, StreamKind::kInstrument, purpose, 0);
  const auto n = static_cast<long>(std::llround(fraction * c.width * c.height));
  std::vector<HotPixel> out(static_cast<std::size_t>(std::max(0L, n)));
  for (auto& p : out) {
    p.x = static_cast<int>(rng.index(c.width));
    p.y = static_cast<int>(rng.index(c.height));
    p.rate_e_per_s = rng.log_uniform(c.hot_rate_min_e_per_s, c.hot_rate_max_e_per_s);
  }
  return out;
}

}  // namespace

SimInstrument make_instrument(const SimConfig& c) {
  validate(c);
  const int w = c.width, h = c.height;
  SimInstrument inst;
  {
    Rng rng(c.seed, StreamKind::kInstrument, 0, 0);
    inst.bias_adu.resize(static_cast<std::size_t>(w));
    for (auto& b : inst.bias_adu)
      b = static_cast<float>(c.bias_adu + c.bias_column_rms_adu * rng.normal());
  }
  std::vector<Dust> dust(static_cast<std::size_t>(c.n_dust));
  {
    Rng rng(c.seed, StreamKind::kInstrument, 3, 0);
    for (auto& d : dust) {
      d.x = rng.uniform(0.1, 0.9) * w;
      d.y = rng.uniform(0.1, 0.9) * h;
      d.r_out = rng.uniform(c.dust_radius_min_px, c.dust_radius_max_px);
      d.r_in = 0.5 * d.r_out;
      d.depth = rng.uniform(c.dust_depth_min, c.dust_depth_max);
    }
  }
  // Small-scale response first (PRNU x dust); vignetting is applied after, in two passes,
  // so that the corners sit at vignetting_corner relative to the final maximum.
  Image<float> fine(w, h);
  {
    const ImageView<float> v = fine.view();
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; ++y) {
      Rng rng(c.seed, StreamKind::kInstrument, 1, y);
      float* row = v.row(y);
      for (int x = 0; x < w; ++x) {
        double f = 1.0 + c.prnu * rng.normal();
        for (const Dust& d : dust) {
          if (std::abs(x - d.x) < d.r_out + 3 && std::abs(y - d.y) < d.r_out + 3)
            f *= 1.0 - dust_dimming(d, std::hypot(x - d.x, y - d.y));
        }
        row[x] = static_cast<float>(f);
      }
    }
  }
  const double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
  const double inv_rc2 = 1.0 / (cx * cx + cy * cy);
  auto vignetted = [&](double corner) {
    Image<float> out(w, h);
    const ImageView<float> o = out.view();
    const ImageView<const float> f = fine.view();
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const double rho2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) * inv_rc2;
        o(x, y) = static_cast<float>((1.0 - (1.0 - corner) * rho2) * f(x, y));
      }
    }
    return out;
  };
  const double m1 = image_max(vignetted(c.vignetting_corner));
  inst.flat = vignetted(std::min(1.0, c.vignetting_corner * m1));
  const float m2 = image_max(inst.flat);
  {
    const ImageView<float> o = inst.flat.view();
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) o(x, y) = o(x, y) == m2 ? 1.0f : o(x, y) / m2;
  }
  // Dark rate: dark current + glow from the corner (width-1, 0) + stable hot pixels.
  inst.dark_rate_e_per_s = Image<float>(w, h);
  {
    const ImageView<float> o = inst.dark_rate_e_per_s.view();
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        o(x, y) = static_cast<float>(sim_detail::smooth_dark_rate(c, x, y));
  }
  for (const HotPixel& p : draw_hot_pixels(c, c.hot_pixel_fraction, 2))
    inst.dark_rate_e_per_s(p.x, p.y) += static_cast<float>(p.rate_e_per_s);
  inst.unstable = draw_hot_pixels(c, c.unstable_hot_fraction, 4);
  return inst;
}

Image<float> render_master_dark(const SimConfig& c, const SimInstrument& inst) {
  Image<float> out(c.width, c.height);
  const ImageView<float> o = out.view();
  const ImageView<const float> rate = inst.dark_rate_e_per_s.view();
  const double k = c.exptime_s / c.gain_e_per_adu;
#pragma omp parallel for schedule(static)
  for (int y = 0; y < c.height; ++y)
    for (int x = 0; x < c.width; ++x)
      o(x, y) = static_cast<float>(inst.bias_adu[x] + rate(x, y) * k);
  return out;
}

namespace sim_detail {

std::vector<CosmicRay> add_cosmic_rays(const SimConfig& c, ImageView<float> raw, Rng& rng) {
  std::vector<CosmicRay> out;
  const double expected = c.cosmic_rays_per_mpix * c.width * 1e-6 * c.height;
  const auto n = std::max(0L, std::lround(rng.poisson(expected)));
  for (long i = 0; i < n; ++i) {
    CosmicRay cr;
    cr.x = rng.uniform(-0.5, c.width - 0.5);
    cr.y = rng.uniform(-0.5, c.height - 0.5);
    // Mostly short hits, some grazing tracks; 0.25 px steps spread the deposit along it.
    cr.length_px = rng.uniform() < 0.5 ? rng.uniform(0.0, 2.0) : rng.uniform(2.0, 15.0);
    cr.angle_rad = rng.uniform(0.0, std::numbers::pi);
    cr.energy_e = rng.log_uniform(800.0, 20000.0);
    const int steps = 1 + static_cast<int>(cr.length_px * 4);
    const double e_adu = cr.energy_e / steps / c.gain_e_per_adu;
    for (int s = 0; s < steps; ++s) {
      const double f = steps > 1 ? static_cast<double>(s) / (steps - 1) : 0.0;
      const auto px = std::lround(cr.x + f * cr.length_px * std::cos(cr.angle_rad));
      const auto py = std::lround(cr.y + f * cr.length_px * std::sin(cr.angle_rad));
      if (raw.contains(static_cast<int>(px), static_cast<int>(py)))
        raw(static_cast<int>(px), static_cast<int>(py)) += static_cast<float>(e_adu);
    }
    out.push_back(cr);
  }
  return out;
}

}  // namespace sim_detail

Image<float> render_raw_dark(const SimConfig& c, const SimInstrument& inst, int index) {
  Image<float> raw =
      sim_detail::expose(c, inst, StreamKind::kDark, index,
                         [w = c.width](int, float* buf) { std::fill(buf, buf + w, 0.f); });
  Rng rng = sim_detail::artefact_rng(c, StreamKind::kDark, index);
  sim_detail::add_cosmic_rays(c, raw.view(), rng);
  return raw;
}

Image<float> render_raw_flat(const SimConfig& c, const SimInstrument& inst, int index) {
  const auto level = static_cast<float>(c.flat_level_adu);
  Image<float> raw =
      sim_detail::expose(c, inst, StreamKind::kFlat, index,
                         [w = c.width, level](int, float* buf) { std::fill(buf, buf + w, level); });
  Rng rng = sim_detail::artefact_rng(c, StreamKind::kFlat, index);
  sim_detail::add_cosmic_rays(c, raw.view(), rng);
  return raw;
}

void quantise_camera(ImageView<float> raw, double saturation_adu) {
  const float hi = static_cast<float>(std::min(saturation_adu, 65535.0));
#pragma omp parallel for schedule(static)
  for (int y = 0; y < raw.height(); ++y) {
    float* r = raw.row(y);
    for (int x = 0; x < raw.width(); ++x) {
      const float v = std::isnan(r[x]) ? 0.f : std::clamp(r[x], 0.f, hi);
      r[x] = std::round(v);
    }
  }
}

}  // namespace psfphot
