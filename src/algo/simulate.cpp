// The sky half of the simulator (algo/simulate.hpp): the field's stars and galaxies, each
// frame's conditions, and science exposures with their truth.
#include "psfphot/algo/simulate.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "sim_internal.hpp"

namespace psfphot {

using sim_detail::Rng;
using sim_detail::StreamKind;

namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;

// Projection of (x, y) on direction angle, scaled to [-1, 1] over the frame.
double frame_projection(const SimConfig& c, double angle, double x, double y) {
  const double cx = 0.5 * (c.width - 1), cy = 0.5 * (c.height - 1);
  const double ca = std::cos(angle), sa = std::sin(angle);
  const double half = std::abs(cx * ca) + std::abs(cy * sa);
  return half > 0 ? ((x - cx) * ca + (y - cy) * sa) / half : 0.0;
}

// Inverse CDF of N(>F) ~ F^-a truncated to [lo, hi].
double power_law(Rng& rng, double a, double lo, double hi) {
  const double l = std::pow(lo, -a), h = std::pow(hi, -a);
  return std::pow(l - rng.uniform() * (l - h), -1.0 / a);
}

// Sersic-like galaxy: exp(-b_n ((r/r_e)^(1/n) - 1)) on elliptical radii, softened by the seeing
// (r -> sqrt(r^2 + sigma^2)) instead of a full convolution; 3x3 sub-samples near the centre.
// The stamp is normalised to the galaxy's flux.
Stamp render_galaxy(const Galaxy& g, double xf, double yf, double sigma_px) {
  const double n = g.sersic_n;
  const double bn = 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n);
  const int r = static_cast<int>(std::ceil(8.0 * g.r_e_px));
  Stamp s;
  s.x0 = static_cast<int>(std::lround(xf)) - r;
  s.y0 = static_cast<int>(std::lround(yf)) - r;
  s.pixels = Image<float>(2 * r + 1, 2 * r + 1);
  const double ca = std::cos(g.angle_rad), sa = std::sin(g.angle_rad);
  auto profile = [&](double dx, double dy) {
    const double u = dx * ca + dy * sa, v = (-dx * sa + dy * ca) / g.axis_ratio;
    const double rr = std::sqrt(u * u + v * v + sigma_px * sigma_px);
    return std::exp(-bn * (std::pow(rr / g.r_e_px, 1.0 / n) - 1.0));
  };
  double total = 0.0;
  for (int j = 0; j < s.pixels.height(); ++j)
    for (int i = 0; i < s.pixels.width(); ++i) {
      const double dx = s.x0 + i - xf, dy = s.y0 + j - yf;
      double v = 0.0;
      if (dx * dx + dy * dy < 9.0) {
        for (int q = -1; q <= 1; ++q)
          for (int p = -1; p <= 1; ++p) v += profile(dx + p / 3.0, dy + q / 3.0) / 9.0;
      } else {
        v = profile(dx, dy);
      }
      s.pixels(i, j) = static_cast<float>(v);
      total += v;
    }
  const double k = total > 0 ? g.flux_adu / total : 0.0;
  for (int j = 0; j < s.pixels.height(); ++j)
    for (int i = 0; i < s.pixels.width(); ++i)
      s.pixels(i, j) = static_cast<float>(s.pixels(i, j) * k);
  return s;
}

}  // namespace

FrameConditions frame_conditions(const SimConfig& c, int frame) {
  Rng rng(c.seed, StreamKind::kConditions, frame, 0);
  FrameConditions fc;
  fc.frame = frame;
  fc.dx_px = rng.uniform(-c.dither_px, c.dither_px);
  fc.dy_px = rng.uniform(-c.dither_px, c.dither_px);
  fc.sigma_px = std::clamp(c.psf_sigma_px * std::exp(c.seeing_rms * rng.normal()),
                           0.6 * c.psf_sigma_px, 1.8 * c.psf_sigma_px);
  fc.sigma_tilt = rng.uniform(-c.seeing_tilt_max, c.seeing_tilt_max);
  fc.tilt_angle_rad = rng.uniform(0.0, kTwoPi);
  fc.sky_e = c.sky_e * std::exp(c.sky_level_rms * rng.normal());
  fc.sky_gradient =
      std::max(0.0, c.sky_gradient + rng.uniform(-c.sky_gradient_jitter, c.sky_gradient_jitter));
  fc.sky_angle_rad = rng.uniform(0.0, kTwoPi);
  return fc;
}

double sky_e_at(const SimConfig& c, const FrameConditions& fc, double x, double y) {
  return fc.sky_e * (1.0 + 0.5 * fc.sky_gradient * frame_projection(c, fc.sky_angle_rad, x, y));
}

double sigma_px_at(const SimConfig& c, const FrameConditions& fc, double x, double y) {
  const double cx = 0.5 * (c.width - 1), cy = 0.5 * (c.height - 1);
  const double rho2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (cx * cx + cy * cy);
  const double f = 1.0 + c.seeing_field_variation * rho2 +
                   fc.sigma_tilt * frame_projection(c, fc.tilt_angle_rad, x, y);
  return std::max(0.3, fc.sigma_px * f);
}

SimField make_field(const SimConfig& c) {
  validate(c);
  Rng rng(c.seed, StreamKind::kField, 0, 0);
  SimField field;
  const double gain = c.gain_e_per_adu, t = c.exptime_s;
  // Nominal noise at the centre of a median frame (flat ~ 1 there).
  const double dark_e = c.dark_current_e_per_s * t;
  const double b0 = (c.sky_e + dark_e + c.read_noise_e * c.read_noise_e) / (gain * gain);
  const double sigma = c.psf_sigma_px;
  field.flux_min_adu = c.snr_min * std::sqrt(4.0 * std::numbers::pi * sigma * sigma * b0);
  const double peak = psf_central_pixel_fraction({c.psf, sigma, c.moffat_beta});
  const double headroom = c.saturation_adu - c.bias_adu - (c.sky_e + dark_e) / gain;
  field.flux_sat_adu = std::max(headroom / peak, 2.0 * field.flux_min_adu);
  // The field is larger than a frame so that dithers move stars across the edges.
  const double m = std::ceil(c.dither_px) + 8.0;
  const double fw = c.width + 2 * m, fh = c.height + 2 * m;
  const auto n = static_cast<std::size_t>(
      std::llround(c.n_stars * fw * fh / (static_cast<double>(c.width) * c.height)));
  field.stars.resize(n);
  for (FieldStar& s : field.stars) {
    s.x = rng.uniform(-0.5 - m, c.width - 0.5 + m);
    s.y = rng.uniform(-0.5 - m, c.height - 0.5 + m);
    const bool bright = rng.uniform() < c.saturated_fraction;
    s.flux_adu = bright ? power_law(rng, c.flux_slope, field.flux_sat_adu,
                                    c.bright_range * field.flux_sat_adu)
                        : power_law(rng, c.flux_slope, field.flux_min_adu, field.flux_sat_adu);
  }
  field.galaxies.resize(static_cast<std::size_t>(c.n_galaxies));
  for (Galaxy& g : field.galaxies) {
    g.x = rng.uniform(0.15, 0.85) * c.width;
    g.y = rng.uniform(0.15, 0.85) * c.height;
    g.flux_adu = rng.log_uniform(c.galaxy_flux_min_adu, c.galaxy_flux_max_adu);
    g.r_e_px = rng.uniform(c.galaxy_re_min_px, c.galaxy_re_max_px);
    g.sersic_n = rng.uniform(0.8, 4.0);
    g.axis_ratio = rng.uniform(0.4, 1.0);
    g.angle_rad = rng.uniform(0.0, std::numbers::pi);
  }
  return field;
}

SimFrame render_science_frame(const SimConfig& c, const SimInstrument& inst, const SimField& field,
                              int frame) {
  const int w = c.width, h = c.height;
  SimFrame out;
  const FrameConditions fc = frame_conditions(c, frame);
  out.conditions = fc;
  const double gain = c.gain_e_per_adu;

  // What to render: galaxies, then stars in star_id order (fixes the order of the sums).
  struct Job {
    int star = -1;  // -1 for a galaxy
    int galaxy = -1;
    double x = 0, y = 0, sigma = 0;
    int radius = 0;
  };
  std::vector<Job> jobs;
  for (std::size_t i = 0; i < field.galaxies.size(); ++i) {
    const Galaxy& g = field.galaxies[i];
    const double x = g.x + fc.dx_px, y = g.y + fc.dy_px;
    jobs.push_back({-1, static_cast<int>(i), x, y, sigma_px_at(c, fc, x, y), 0});
  }
  for (std::size_t i = 0; i < field.stars.size(); ++i) {
    const FieldStar& s = field.stars[i];
    const double x = s.x + fc.dx_px, y = s.y + fc.dy_px;
    const double sigma = sigma_px_at(c, fc, x, y);
    const int r = stamp_radius_px({c.psf, sigma, c.moffat_beta}, s.flux_adu, c.stamp_edge_adu,
                                  c.stamp_max_outside, static_cast<int>(std::ceil(3.0 * sigma)) + 1,
                                  c.max_stamp_radius_px);
    const long cxp = std::lround(x), cyp = std::lround(y);
    if (cxp + r < 0 || cyp + r < 0 || cxp - r >= w || cyp - r >= h) continue;
    jobs.push_back({static_cast<int>(i), -1, x, y, sigma, r});
  }
  std::vector<Stamp> stamps(jobs.size());
#pragma omp parallel for schedule(dynamic, 8)
  for (std::size_t k = 0; k < jobs.size(); ++k) {
    const Job& j = jobs[k];
    stamps[k] =
        j.star >= 0
            ? render_psf_stamp({c.psf, j.sigma, c.moffat_beta}, j.x, j.y,
                               field.stars[static_cast<std::size_t>(j.star)].flux_adu, j.radius)
            : render_galaxy(field.galaxies[static_cast<std::size_t>(j.galaxy)], j.x, j.y, j.sigma);
  }
  // Rows -> stamps covering them, in job order (compressed sparse rows).
  std::vector<std::size_t> row_start(static_cast<std::size_t>(h) + 1, 0);
  auto rows_of = [&](const Stamp& s) {
    return std::pair<int, int>(std::max(0, s.y0), std::min(h, s.y0 + s.pixels.height()));
  };
  for (const Stamp& s : stamps) {
    auto [ya, yb] = rows_of(s);
    for (int y = ya; y < yb; ++y) ++row_start[static_cast<std::size_t>(y) + 1];
  }
  for (int y = 0; y < h; ++y) row_start[y + 1] += row_start[y];
  std::vector<std::size_t> entries(row_start.back()),
      cursor(row_start.begin(), row_start.end() - 1);
  for (std::size_t k = 0; k < stamps.size(); ++k) {
    auto [ya, yb] = rows_of(stamps[k]);
    for (int y = ya; y < yb; ++y) entries[cursor[y]++] = k;
  }

  const double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
  const double sky0 = sky_e_at(c, fc, cx, cy) / gain;
  const double sky_dx = (sky_e_at(c, fc, cx + 1, cy) - sky_e_at(c, fc, cx, cy)) / gain;
  auto signal_row = [&](int y, float* buf) {
    const double row0 = sky_e_at(c, fc, 0.0, y) / gain;
    for (int x = 0; x < w; ++x) buf[x] = static_cast<float>(row0 + sky_dx * x);
    for (std::size_t e = row_start[y]; e < row_start[y + 1]; ++e) {
      const Stamp& s = stamps[entries[e]];
      const float* sr = s.pixels.view().row(y - s.y0);
      const int xa = std::max(0, s.x0), xb = std::min(w, s.x0 + s.pixels.width());
      for (int x = xa; x < xb; ++x) buf[x] += sr[x - s.x0];
    }
  };
  out.raw_adu = sim_detail::expose(c, inst, StreamKind::kScience, frame, signal_row);
  out.sky_median_adu = sky0;

  Rng rng = sim_detail::artefact_rng(c, StreamKind::kScience, frame);
  out.cosmic_rays = sim_detail::add_cosmic_rays(c, out.raw_adu.view(), rng);
  for (const HotPixel& p : inst.unstable) {
    if (rng.uniform() >= c.unstable_on_probability) continue;
    out.raw_adu(p.x, p.y) += static_cast<float>(rng.poisson(p.rate_e_per_s * c.exptime_s) / gain);
    out.lit_unstable.push_back(p);
  }

  // Truth: stars whose centre lies on the frame.
  const ImageView<const float> raw = out.raw_adu.view();
  const ImageView<const float> flat = inst.flat.view();
  const double rn2 = c.read_noise_e * c.read_noise_e;
  for (const Job& j : jobs) {
    if (j.star < 0 || !(j.x >= -0.5 && j.x < w - 0.5 && j.y >= -0.5 && j.y < h - 0.5)) continue;
    TruthStar t;
    t.star_id = j.star;
    t.x = j.x;
    t.y = j.y;
    t.flux_adu = field.stars[static_cast<std::size_t>(j.star)].flux_adu;
    t.psf_sigma_px = j.sigma;
    const int px = static_cast<int>(std::lround(j.x)), py = static_cast<int>(std::lround(j.y));
    const double f = flat(std::clamp(px, 0, w - 1), std::clamp(py, 0, h - 1));
    const double b_e = sky_e_at(c, fc, j.x, j.y) * f +
                       sim_detail::smooth_dark_rate(c, j.x, j.y) * c.exptime_s + rn2;
    t.sky_var_adu2 = b_e / (gain * gain * f * f);
    t.flat_response = f;
    t.snr = t.flux_adu / std::sqrt(4.0 * std::numbers::pi * j.sigma * j.sigma * t.sky_var_adu2);
    float peak = -1e30f;
    for (int yy = py - 1; yy <= py + 1; ++yy)
      for (int xx = px - 1; xx <= px + 1; ++xx)
        if (raw.contains(xx, yy)) peak = std::max(peak, raw(xx, yy));
    t.saturated = peak >= c.saturation_adu;
    out.truth.push_back(t);
  }
  return out;
}

}  // namespace psfphot
